"""apt-get, followed on its status fd, with a watchdog.

`follow` reads apt-get's status-fd lines, for vainstall (`install`) and for appliance-control's
helper alike.  For an install, apt-get runs in its own process group with its output in a log
file; its status-fd lines drive a progress bar.  No progress for too long (a debconf config
script asking the same question forever looks like this) stops apt-get and everything it
started.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from vatools.errors import VatoolsError
from vatools.progress import ProgressBar, StatusLine, parse_status_line
from vatools.run import Target, start

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none"}
# vainstall seeds its own runs: vatools' apt hook (vatools.apthook) leaves them alone.
SEEDED_BY_VAINSTALL = ("-o", "Vatools::Apt-Hook=vainstall")


def reproducible_env() -> dict[str, str]:
    """SOURCE_DATE_EPOCH reaches the maintainer scripts (an image build asks for the same
    files from the same inputs)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return {"SOURCE_DATE_EPOCH": epoch} if epoch else {}


def install(
    target: Target,
    packages: Sequence[str],
    *,
    allow_removals: bool,
    log_path: Path,
    bar: ProgressBar,
    stall_timeout: float,
    explain_stall: Callable[[str], str],
) -> None:
    """apt-get install PACKAGES (NAME- removes NAME); raises VatoolsError when it fails.

    `explain_stall(package)` adds the caller's suspicion to the message of a stall.
    """

    def on_status(status: StatusLine) -> None:
        if status.kind == "pmstatus":  # downloads were done while planning
            bar.update(status.percent, status.text)

    read_fd, write_fd = os.pipe()
    argv = [
        "apt-get", "install", "--yes", "-o", f"APT::Status-Fd={write_fd}", *SEEDED_BY_VAINSTALL,
        "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
        *([] if allow_removals else ["--no-remove"]),
        *packages,
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = start(argv, target=target, env=APT_ENV | reproducible_env(), stdout=log,
                     pass_fds=(write_fd,))
        os.close(write_fd)
        errors = follow(proc, read_fd, on_status, stall_timeout=stall_timeout,
                        explain_stall=explain_stall).errors
    output = log_path.read_text("utf-8", "replace")
    if proc.returncode != 0:
        tail = "\n".join(output.splitlines()[-12:])
        detail = "; ".join(errors) if errors else f"apt-get exited with status {proc.returncode}"
        raise VatoolsError(f"the installation failed: {detail}\n{tail}")
    failed = dbconfig_failures(output)
    if failed:
        # Under noninteractive, dbconfig-common ignores its own errors and apt succeeds.
        raise VatoolsError(
            f"the installation failed: dbconfig-common could not set up the database of"
            f" {', '.join(failed)} (it printed \"noninteractive fail\"; apt's output: {log_path})",
            hint=f"check the seed's database answers ({', '.join(f'{p}/...' for p in failed)})",
        )


_DBCONFIG_FAIL = re.compile(r"^dbconfig-common: (\S+) \S+: noninteractive fail\.", re.M)


def dbconfig_failures(output: str) -> list[str]:
    """Packages whose database set-up dbconfig-common gave up on without a terminal.

    >>> dbconfig_failures("Setting up x\\ndbconfig-common: roundcube configure: noninteractive fail.\\n")
    ['roundcube']
    """
    return list(dict.fromkeys(_DBCONFIG_FAIL.findall(output)))


class Stalled(VatoolsError):
    """apt made no progress for too long (a config script asking the same question forever)."""


@dataclass
class Followed:
    """What `follow` collected: dpkg's error lines, and the output read from `output_fd`."""

    errors: list[str]
    output: bytes


def follow(
    proc: subprocess.Popen[bytes],
    status_fd: int,
    on_status: Callable[[StatusLine], None],
    *,
    output_fd: int | None = None,
    stall_timeout: float | None = None,
    explain_stall: Callable[[str], str] = lambda package: "",
) -> Followed:
    """Pass each line of apt-get's status fd to `on_status` until apt-get exits; closes
    `status_fd` and waits for apt-get.

    `output_fd` (apt-get's stdout, if a pipe) is read too, so it never fills.  A daemon started
    by a maintainer script may inherit the pipes and keep them open, so the loop ends when
    apt-get exits and what it wrote is read, not at end of file.  With `stall_timeout`, no
    status line for that many seconds raises Stalled; any exception stops apt-get and
    everything it started.
    """
    fds = [status_fd] + ([] if output_fd is None else [output_fd])
    errors: list[str] = []
    output, buffer = b"", b""
    last_progress = time.monotonic()
    doing = "preconfiguring packages"
    try:
        # Once apt-get has exited, what it wrote is already in the pipes: read that, then stop.
        while proc.poll() is None or select.select(fds, [], [], 0)[0]:
            # With every pipe closed, apt-get is about to exit: look again soon.
            ready, _, _ = select.select(fds, [], [], 0.5 if fds else 0.05)
            for fd in ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    fds.remove(fd)  # closed, though apt-get may still run
                elif fd == output_fd:
                    output += chunk
                else:
                    last_progress = time.monotonic()
                    *lines, buffer = (buffer + chunk).split(b"\n")
                    for raw in lines:
                        status = parse_status_line(raw.decode("utf-8", "replace"))
                        if status is None:
                            continue
                        if status.kind == "pmerror":
                            errors.append(f"{status.package}: {status.text}")
                        elif status.kind == "pmstatus":
                            doing = status.text
                        on_status(status)
            # An apt-get that has exited did not stall, however long it was silent.
            if (stall_timeout is not None and proc.poll() is None
                    and time.monotonic() - last_progress > stall_timeout):
                raise Stalled(_stall_message(proc, doing, stall_timeout, explain_stall))
    except BaseException:
        # Stalled or interrupted: stop apt-get and everything it started; rollback follows.
        _stop(proc)
        raise
    finally:
        os.close(status_fd)
    proc.wait()
    return Followed(errors, output)


def _stall_message(
    proc: subprocess.Popen[bytes], doing: str, seconds: float, explain: Callable[[str], str]
) -> str:
    """Say where apt stalled, what still runs, and what the caller suspects."""
    message = f"apt made no progress for {seconds:.0f} s while {doing!r}"
    scripts = _maintainer_scripts_running(proc.pid)
    if scripts:
        message += f"; still running: {', '.join(scripts)}"
    words = doing.split()  # "Configuring PACKAGE (arch)"; nothing named while preconfiguring
    return message + explain(words[1] if len(words) > 1 else "")


def _maintainer_scripts_running(group: int) -> list[str]:
    """Maintainer scripts (/var/lib/dpkg/info/PKG.config ...) running in apt-get's group."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if os.getpgid(int(entry.name)) != group:
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ProcessLookupError):
            continue
        for arg in argv:
            if b"/var/lib/dpkg/info/" in arg:
                found.append(arg.decode(errors="replace").rsplit("/", 1)[-1])
    return sorted(set(found))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
