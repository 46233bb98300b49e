"""appliance-control served from a chroot, as systemd would run it, on 127.0.0.1.

A chroot runs no systemd, so the processes the units would start are started here, with the
command lines read from the installed unit files themselves (ExecStart=, User=, Group=): the
units stay the one place where those command lines are written. The helper runs as root, the
web process as the unit's user; both are stopped by PID afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tests.support.chroot import Chroot
from tests.support.net import LOOPBACK, wait_for_port

UNITS = "/lib/systemd/system"
CONFIG = "/etc/appliance-control/appliance-control.conf"


@dataclass(frozen=True)
class Unit:
    exec_start: list[str]
    user: str | None
    group: str | None


def read_unit(chroot: Chroot, name: str) -> Unit:
    fields: dict[str, str] = {}
    for line in chroot.read_text(f"{UNITS}/{name}").splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            fields.setdefault(key.strip(), value.strip())
    return Unit(shlex.split(fields["ExecStart"]), fields.get("User"), fields.get("Group"))


def _ids(chroot: Chroot, user: str, group: str) -> tuple[int, int]:
    uid = next(int(line.split(":")[2]) for line in chroot.read_text("/etc/passwd").splitlines()
               if line.split(":")[0] == user)
    gid = next(int(line.split(":")[2]) for line in chroot.read_text("/etc/group").splitlines()
               if line.split(":")[0] == group)
    return uid, gid


def _start(chroot: Chroot, unit: Unit, log: Path) -> subprocess.Popen[bytes]:
    argv = chroot.argv(unit.exec_start)
    if unit.user:
        uid, gid = _ids(chroot, unit.user, unit.group or unit.user)
        at = argv.index("chroot")
        argv[at + 1:at + 1] = [f"--userspec={uid}:{gid}", f"--groups={gid}"]
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def processes_in(chroot: Chroot, word: str) -> dict[int, int]:
    """PID -> real uid of the processes rooted in this chroot whose command line has `word`."""
    root = Path(os.path.realpath(chroot.root))
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "root")) != root:
                continue
            if word.encode() not in (entry / "cmdline").read_bytes():
                continue
            status = (entry / "status").read_text()
        except OSError:
            continue
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        found[int(entry.name)] = int(uid_line.split()[1])
    return found


def _stop(chroot: Chroot, proc: subprocess.Popen[bytes], word: str) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the group we started, and only it
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # gunicorn's worker may outlive its master by moments: wait for it by its PID.
    deadline = time.monotonic() + 10
    while processes_in(chroot, word) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in processes_in(chroot, word):
        os.kill(pid, signal.SIGKILL)  # ours: rooted in our chroot, running our command


@contextlib.contextmanager
def serve_control(chroot: Chroot, port: int, logs: Path) -> Iterator[str]:
    """Start the helper and the web interface in the chroot; yield the interface's base URL."""
    config = chroot.read_text(CONFIG)
    chroot.write_text(CONFIG, config.replace("listen = 0.0.0.0:8080", f"listen = {LOOPBACK}:{port}"))
    logs.mkdir(parents=True, exist_ok=True)
    with chroot.mount_proc():
        helper = _start(chroot, read_unit(chroot, "appliance-control-helper.service"),
                        logs / "helper.log")
        try:
            web = _start(chroot, read_unit(chroot, "appliance-control.service"), logs / "web.log")
            try:
                try:
                    wait_for_port(port, timeout=60)
                except TimeoutError as e:
                    raise AssertionError(f"{e}\n{(logs / 'web.log').read_text()}") from None
                yield f"http://{LOOPBACK}:{port}"
            finally:
                _stop(chroot, web, "gunicorn")
        finally:
            _stop(chroot, helper, "appliance-control-helper")
            chroot.write_text(CONFIG, config)
