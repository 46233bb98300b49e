"""The vatools demo on a fresh machine, end to end, with nothing installed on the host.

    sudo /usr/bin/python3 -m tests.support.demo [--suite bookworm] [--appliance NAME] [--keep]

1. builds every deb of this tree and publishes the signed apt repository;
2. serves it on http://127.0.0.1:PORT;
3. makes a fresh Debian tree with mmdebstrap: "the server";
4. installs vatools there from the signed repository (apt checks the signature);
5. runs `vainstall --yes APPLIANCE` inside (moinmoin-appliance if the repository has it,
   else dokuwiki-appliance), then `valist`;
6. starts the server's Apache on a free 127.0.0.1 port and fetches the wiki's front page;
7. prints its URL and title, the admin user and where the generated password is kept;
then stops Apache, unmounts everything and removes the tree (--keep leaves it, stopped).

If a step fails the demo says which one and why, and still cleans up. VATOOLS_TEST_CACHE=DIR
reuses mmdebstrap trees kept there (as the tests do).
"""

from __future__ import annotations

import argparse
import contextlib
import html
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from tests.support.apache import serve_apache
from tests.support.chroot import Chroot, copy_tree
from tests.support.net import free_port, http_fetch, serve_directory
from tests.support.pristine import pristine_tree, require_tools
from tests.support.repo import Repo, build_repo, make_server_tree
from tests.support.timing import TIMINGS

STEPS = (
    "check this machine (root, tools)",
    "build every deb and publish the signed {suite} repository",
    "serve the repository on 127.0.0.1",
    "make a fresh {suite} tree with mmdebstrap: the server",
    "install vatools on the server from the signed repository",
    "vainstall --yes {appliance}",
    "valist",
    "start Apache inside on 127.0.0.1 and fetch the wiki's front page",
)
PREFERRED_APPLIANCES = ("moinmoin-appliance", "dokuwiki-appliance")
# Questions of a seed that name the wiki's administrator.
ADMIN_QUESTION = re.compile(r"/(superuser|admin|admin-?name|admin-?user)$")


class DemoStopped(Exception):
    """A step could not be done; the message says why."""


class Steps:
    """Prints "[3/8] ..." as the demo goes, and remembers where it is for the failure report."""

    def __init__(self, **names: str) -> None:
        self.names = names
        self.current = 0

    def start(self, number: int, **names: str) -> None:
        self.names.update(names)
        self.current = number
        print(f"\n[{number}/{len(STEPS)}] {self.title(number)}", flush=True)

    def title(self, number: int) -> str:
        return STEPS[number - 1].format_map(_Missing(self.names))


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "APPLIANCE" if key == "appliance" else key


def choose_appliance(repo: Repo, suite: str, wanted: str | None) -> str:
    available = repo.packages(suite)
    if wanted:
        if wanted not in available:
            raise DemoStopped(
                f"{wanted} is not in the {suite} repository"
                f" (it has: {', '.join(sorted(available))})"
            )
        return wanted
    for name in PREFERRED_APPLIANCES:
        if name in available:
            return name
    raise DemoStopped(f"the {suite} repository has none of {', '.join(PREFERRED_APPLIANCES)}")


def run_visible(chroot: Chroot, argv: Sequence[str], timeout: float = 1800) -> int:
    """Run inside the chroot with its output going straight to our terminal (apt takes a while)."""
    print(f"  $ {' '.join(argv)}", flush=True)
    proc = subprocess.Popen(chroot.argv(argv), stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        os.killpg(proc.pid, 9)  # the process group we started, and only it
        proc.wait()
        raise


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(
            "    " + line for line in path.read_text(errors="replace").splitlines()[-lines:]
        )
    except OSError as error:
        return f"    ({error})"


def page_title(body: str) -> str:
    found = re.search(r"<title[^>]*>(.*?)</title>", body, re.S | re.I)
    return " ".join(html.unescape(found.group(1)).split()) if found else "(no <title>)"


def admin_user(chroot: Chroot, appliance: str) -> str:
    """The admin user as debconf holds it, found through the appliance's own seed."""
    seed = chroot.resolve(f"/usr/share/vatools/seeds/{appliance}.seed")
    if not seed.exists():
        return f"(no seed at /usr/share/vatools/seeds/{appliance}.seed)"
    for line in seed.read_text().splitlines():
        fields = line.split(None, 3)
        if len(fields) >= 3 and not fields[0].startswith("#") and ADMIN_QUESTION.search(fields[1]):
            owner, question = fields[0], fields[1]
            shown = chroot.run(["debconf-show", owner], check=False).stdout
            for shown_line in shown.splitlines():
                name, _, value = shown_line.lstrip("* ").partition(":")
                if name.strip() == question:
                    return f"{value.strip()} (debconf {question})"
            return f"{fields[3] if len(fields) > 3 else ''} (seed {question})"
    return "(the seed names no admin question)"


def demo(args: argparse.Namespace, workdir: Path, steps: Steps) -> None:
    """The demo's steps, in order; the `with` stops what they started."""
    with contextlib.ExitStack() as stack:
        steps.start(1)
        if os.geteuid() != 0:
            raise DemoStopped("run it as root: mmdebstrap --mode=root, chroot and mount need it")
        require_tools(
            "mmdebstrap", "chroot", "mount", "umount", "gpg", "dpkg-buildpackage", "apt-ftparchive"
        )

        steps.start(2, suite=args.suite)
        repo = build_repo(workdir, suites=(args.suite,), with_tests=False)  # what users see

        steps.start(3)
        base_url = stack.enter_context(serve_directory(repo.directory))
        print(
            f"  {base_url}/{args.suite}/ (signed with {repo.directory}/vatools-archive-keyring.gpg)"
        )

        steps.start(4, suite=args.suite)
        cache_env = os.environ.get("VATOOLS_TEST_CACHE")
        tree = pristine_tree(Path(cache_env) if cache_env else workdir / "cache", args.suite)
        server = copy_tree(tree, workdir / "server")
        print(f"  the server: {server.root}")

        steps.start(5)
        make_server_tree(server, repo, base_url, args.suite)
        print("  " + server.run(["dpkg-query", "-W", "vatools"]).stdout.strip())

        appliance = choose_appliance(repo, args.suite, args.appliance)
        steps.start(6, appliance=appliance)
        if server.run(["sh", "-c", "command -v vainstall"], check=False).returncode != 0:
            raise DemoStopped("the vatools package has no vainstall command yet")
        with TIMINGS.measure(f"vainstall --yes {appliance}"):
            status = run_visible(server, ["vainstall", "--yes", appliance])
        if status != 0:
            raise DemoStopped(
                f"vainstall exited with status {status}; the end of its apt log:\n"
                + _tail(server.resolve("/var/log/vatools/vainstall.log"))
            )

        steps.start(7)
        status = run_visible(server, ["valist"])
        if status != 0:
            raise DemoStopped(f"valist exited with status {status}")

        steps.start(8)
        with TIMINGS.measure("Apache start + GET /"):
            url = stack.enter_context(serve_apache(server, free_port()))
            code, final_url, body = http_fetch(url + "/")
        if code != 200:
            raise DemoStopped(f"GET {url}/ answered {code} (at {final_url})")
        secret = f"/var/lib/vatools/secrets/{appliance}"
        kept = "present" if server.resolve(secret).exists() else "MISSING"
        print(
            f"""
  The {appliance} answers:
    URL:       {final_url}
    title:     {page_title(body)}
    admin:     {admin_user(server, appliance)}
    password:  generated by vainstall, kept in {secret} inside the server
               ({server.path(secret)} from here; {kept})"""
        )
        print("\n  stopping Apache, unmounting /proc ...")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m tests.support.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--suite", default="bookworm", choices=("bookworm", "trixie"))
    parser.add_argument("--appliance", help="install this appliance instead of the preferred one")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the work dir and the server tree (stopped, nothing mounted)",
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="vatools-demo-", dir="/var/tmp"))
    steps = Steps(suite=args.suite)
    failed = True
    try:
        demo(args, workdir, steps)
        failed = False
    except KeyboardInterrupt:
        print(
            f"\nDEMO INTERRUPTED at step {steps.current}/{len(STEPS)}: {steps.title(steps.current)}"
        )
    except Exception as error:  # noqa: BLE001 - every failure is reported as the step that stopped
        print(
            f"\nDEMO STOPPED at step {steps.current}/{len(STEPS)}: {steps.title(steps.current)}\n"
            f"  {type(error).__name__}: {error}"
        )
        if steps.current > 1:
            print(f"  steps 1-{steps.current - 1} worked.")
    finally:
        if args.keep:
            print(f"\nkept (stopped, nothing mounted): {workdir}")
        else:
            print(f"\ncleaning up: removing {workdir} (after checking nothing is mounted below it)")
            Chroot(workdir).remove()
    print("\nTimes:\n" + "\n".join(TIMINGS.report()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
