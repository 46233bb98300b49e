"""apt-get install, followed on its status fd, with a watchdog.

apt-get runs in its own process group with its output in a log file; its status-fd lines drive
a progress bar.  No progress for too long (a debconf config script asking the same question
forever looks like this) stops apt-get and everything it started.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Sequence

from vatools.errors import VatoolsError
from vatools.progress import ProgressBar, parse_status_line
from vatools.run import Target, start

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none"}


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
    read_fd, write_fd = os.pipe()
    argv = [
        "apt-get", "install", "--yes", "-o", f"APT::Status-Fd={write_fd}",
        "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
        *([] if allow_removals else ["--no-remove"]),
        *packages,
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = start(argv, target=target, env=APT_ENV | reproducible_env(), stdout=log,
                     pass_fds=(write_fd,))
        os.close(write_fd)
        errors = _follow_status(proc, read_fd, bar, stall_timeout, explain_stall)
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text("utf-8", "replace").splitlines()[-12:])
        detail = "; ".join(errors) if errors else f"apt-get exited with status {proc.returncode}"
        raise VatoolsError(f"the installation failed: {detail}\n{tail}")


class Stalled(VatoolsError):
    """apt made no progress for too long (a config script asking the same question forever)."""


def _follow_status(
    proc: subprocess.Popen[bytes],
    read_fd: int,
    bar: ProgressBar,
    stall_timeout: float,
    explain_stall: Callable[[str], str],
) -> list[str]:
    """Show apt's progress until it exits; returns dpkg's error lines.

    A daemon started by a maintainer script may inherit the pipe and keep it open, so the
    loop ends when apt-get exits, not at end of file.  No status line for `stall_timeout`
    seconds stops apt-get and everything it started.
    """
    errors: list[str] = []
    buffer = b""
    last_progress = time.monotonic()
    doing = "preconfiguring packages"
    try:
        while proc.poll() is None or select.select([read_fd], [], [], 0)[0]:
            ready, _, _ = select.select([read_fd], [], [], 0.5)
            if not ready:
                if time.monotonic() - last_progress > stall_timeout:
                    raise Stalled(_stall_message(proc, doing, stall_timeout, explain_stall))
                continue
            chunk = os.read(read_fd, 65536)
            if not chunk:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)  # the pipe is closed but apt-get still runs
                continue
            last_progress = time.monotonic()
            *lines, buffer = (buffer + chunk).split(b"\n")
            for raw in lines:
                status = parse_status_line(raw.decode("utf-8", "replace"))
                if status is None:
                    continue
                if status.kind == "pmerror":
                    errors.append(f"{status.package}: {status.text}")
                elif status.kind == "pmstatus":  # downloads were done while planning
                    doing = status.text
                    bar.update(status.percent, status.text)
    except BaseException:
        # Stalled or interrupted: stop apt-get and everything it started; rollback follows.
        _stop(proc)
        raise
    finally:
        os.close(read_fd)
    proc.wait()
    return errors


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
