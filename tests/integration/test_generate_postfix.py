"""`vatools new` end to end, with postfix: generate on a fresh server, fill the skeleton, build,
lintian, publish signed, vainstall, and find the answers in postfix's own configuration.

Per suite: the skeleton is made against the server tree itself (nothing in it may change), so
it lists the questions of that release's postfix.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.chroot import Chroot
from tests.support.net import serve_directory
from tests.support.repo import TOP, Repo, sources_entry
from vatools.packaging.build import build_package, copy_source
from vatools.packaging.repo import ensure_signing_key, publish

pytestmark = pytest.mark.integration

NAME = "postfix-appliance"
JANE = "Jane Doe <jane@example.org>"

# The answers a packager fills in, and where postfix puts each one.
ANSWERS = {
    "postfix/main_mailer_type": "Internet with smarthost",
    "postfix/mailname": "mail.example.org",
    "postfix/relayhost": "[smtp.example.org]:587",
    "postfix/mynetworks": "127.0.0.0/8 [::1]/128 192.168.7.0/24",
    "postfix/protocols": "ipv4",
    "postfix/mailbox_limit": "51200000",
    "postfix/recipient_delim": "-",
}
MAIN_CF = {
    "relayhost": "[smtp.example.org]:587",
    "mynetworks": "127.0.0.0/8 [::1]/128 192.168.7.0/24",
    "inet_protocols": "ipv4",
    "mailbox_size_limit": "51200000",
    "recipient_delimiter": "-",
}


def vatools(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The `vatools` command of this tree, in its own process (apt_pkg is configured once per
    process, for one target)."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": str(TOP)}
    return subprocess.run(["/usr/bin/python3", "-m", "vatools.cli.main", *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def fill_in(skeleton: str, answers: dict[str, str]) -> str:
    """Uncomment each answered question's seed line and set its value, as a packager would."""
    for question, value in answers.items():
        pattern = re.compile(rf"^#(postfix {re.escape(question)} \S+)(?: .*)?$", re.MULTILINE)
        assert len(pattern.findall(skeleton)) == 1, f"{question} is not in the skeleton once"
        skeleton = pattern.sub(lambda m: f"{m.group(1)} {value}", skeleton)
    return skeleton


def seed_lines(seed: str) -> list[str]:
    """The commented-out seed lines of a skeleton."""
    return [line for line in seed.splitlines() if re.match(r"#\S+ \S+/\S+ \S+", line)]


def lintian_clean(appliance_dir: Path, work: Path) -> str:
    """Build source and binary with dpkg-buildpackage; lintian must report no error or warning."""
    tree = work / NAME
    copy_source(appliance_dir, tree)  # symlinks dereferenced, like every vatools build
    build = subprocess.run(["dpkg-buildpackage", "-us", "-uc"], cwd=tree, capture_output=True,
                           text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    changes = next(work.glob("*.changes"))
    lint = subprocess.run(["lintian", "--fail-on", "error,warning", str(changes)],
                          capture_output=True, text=True)
    tags = [line for line in lint.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert lint.returncode == 0 and tags == [], lint.stdout + lint.stderr
    return lint.stdout


def test_new_postfix_appliance_from_skeleton_to_installed_server(
    server: "callable", suite: str, repo: Repo, tmp_path: Path  # type: ignore[valid-type]
) -> None:
    chroot: Chroot = server(suite)
    top = tmp_path / "tree"

    # 1. Generate against the fresh server itself: nothing there changes.
    before = chroot.state_digest()
    made = vatools("new", NAME, "--depends", "postfix", "--services", "postfix",
                   "--description", "mail server relaying through a smarthost",
                   "--maintainer", JANE, "--output", top, "--root", chroot.root, cwd=tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    assert chroot.state_digest() == before
    seed_file = top / "seeds" / f"{NAME}.seed"
    assert os.readlink(top / "appliances" / NAME / f"{NAME}.seed") == f"../../seeds/{NAME}.seed"
    skeleton = seed_file.read_text()
    prose = " ".join(line.lstrip("# ") for line in skeleton.splitlines())
    assert f"asks on Debian {suite} ({chroot.root.resolve()})" in prose
    assert "# ==== postfix ====" in skeleton

    # 2. Refused a second time, unchanged.
    again = vatools("new", NAME, "--depends", "postfix", "--maintainer", JANE,
                    "--output", top, "--root", chroot.root, cwd=tmp_path)
    assert again.returncode == 3 and "exists already" in again.stderr
    assert seed_file.read_text() == skeleton

    # The packaged vatools on the server (its templates installed as package data, its
    # release's Python) writes the same questions.
    inside = chroot.run(["vatools", "new", NAME, "--depends", "postfix", "--maintainer", JANE,
                         "--output", "/tmp/generated"], check=False)
    assert inside.returncode == 0, inside.stdout + inside.stderr
    assert seed_lines(chroot.read_text(f"/tmp/generated/seeds/{NAME}.seed")) == seed_lines(skeleton)

    # 3. Fill in the skeleton; `vatools seed check` against postfix's real templates agrees.
    seed_file.write_text(fill_in(skeleton, ANSWERS))
    checked = vatools("seed", "check", seed_file, "--against", "postfix", "--root", chroot.root,
                      cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 error(s), 0 warning(s)" in checked.stdout

    # 4. dpkg-buildpackage + lintian: no error, no warning.
    lintian_clean(top / "appliances" / NAME, tmp_path / "lint")

    # 5. Build with vatools and publish signed with the session's key (the server trusts it).
    debs = build_package(top / "appliances" / NAME, tmp_path / "debs", progress=lambda _: None)
    published = publish(tmp_path / "repo", suite, debs, ensure_signing_key(repo.key_dir))
    assert (published / f"{NAME}_1.0_all.seed").read_text() == seed_file.read_text()

    # 6. vainstall on the server, with the published seed.
    with serve_directory(tmp_path / "repo") as url:
        chroot.write_text("/etc/apt/sources.list.d/generated.sources", sources_entry(f"{url}/{suite}/"))
        chroot.run(["apt-get", "update"])
        installed = chroot.run(["vainstall", "--yes", NAME], check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "Seed:       repository" in installed.stdout

    # 7. The answers, in postfix's own files.
    assert chroot.read_text("/etc/mailname").strip() == "mail.example.org"
    for key, value in MAIN_CF.items():
        got = chroot.run(["postconf", "-h", key]).stdout.strip()
        assert got == value, f"main.cf {key} = {got!r}, seeded {value!r}"

    # 8. The appliance's own autopkgtest passes on the installed server.
    test_script = (top / "appliances" / NAME / "debian/tests/installed").read_text()
    chroot.write_text("/tmp/installed-test", test_script, mode=0o755)
    autopkgtest = chroot.run(["/tmp/installed-test"], check=False)
    assert autopkgtest.returncode == 0, autopkgtest.stdout + autopkgtest.stderr
    assert f"{NAME} is installed and listed by valist" in autopkgtest.stdout
    shutil.rmtree(tmp_path / "lint")
