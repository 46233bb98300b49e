"""Boot a disk image under qemu (TCG: KVM guests hang on these hosts), headless, for tests.

`boot_vm(...)` is a context manager: qemu runs with user networking that forwards
127.0.0.1 ports to the guest's port 80 (the appliance) and 8080 (appliance-control), the serial console goes to a log file, QMP to a
unix socket. On leaving, the guest is powered off through QMP (system_powerdown, bounded),
then QMP quit, and qemu is always killed by its PID if it is still there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tests.support.net import LOOPBACK, free_port, http_fetch

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")


@dataclass
class Vm:
    process: subprocess.Popen[bytes]
    port: int  # forwarded to the guest's port 80
    control_port: int  # forwarded to the guest's port 8080 (appliance-control)
    console: Path
    qmp_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def control_url(self) -> str:
        return f"http://{LOOPBACK}:{self.control_port}"

    def qmp(self, command: str, timeout: float = 5) -> dict | None:
        """Send one QMP command; None when qemu is no longer listening."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(str(self.qmp_path))
                stream = sock.makefile("rwb")
                stream.readline()  # greeting
                for message in ({"execute": "qmp_capabilities"}, {"execute": command}):
                    stream.write(json.dumps(message).encode() + b"\n")
                    stream.flush()
                    while True:
                        reply = json.loads(stream.readline() or b"{}")
                        if "event" not in reply:
                            break
                return reply
        except (OSError, ValueError):
            return None

    def wait_for_page(self, path: str, text: str, timeout: float, base_url: str = "") -> float:
        """Seconds until GET path (of base_url, default the guest's port 80) answers 200 with
        `text` in it; TimeoutError with the console's tail."""
        base_url = base_url or self.base_url
        started = time.monotonic()
        last = "no answer"
        # A request that timed out still runs in the guest: a slow first page (a WSGI app
        # loading itself) would drown in retries. Each time out doubles the wait, up to 60 s.
        per_request = 5.0
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"qemu exited ({self.process.returncode}):\n{self.console_tail()}")
            try:
                status, url, body = http_fetch(base_url + path, timeout=per_request)
                if status == 200 and text in body:
                    return time.monotonic() - started
                last = f"{status} from {url}"
            except TimeoutError as error:
                last = f"{error} (after {per_request:.0f} s)"
                per_request = min(per_request * 2, 60.0)
            except OSError as error:
                last = str(error)
            time.sleep(1)
        raise TimeoutError(
            f"{base_url}{path}: no 200 with {text!r} in {timeout:.0f} s (last: {last});"
            f" console:\n{self.console_tail()}"
        )

    def wait_for_console(self, text: str, timeout: float) -> None:
        """Return once `text` is in the console log; TimeoutError with its tail otherwise."""
        deadline = time.monotonic() + timeout
        while text not in self.console.read_text("utf-8", "replace"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not on the console after {timeout:.0f} s:\n{self.console_tail()}")
            time.sleep(1)

    def console_tail(self, lines: int = 40) -> str:
        try:
            text = self.console.read_text("utf-8", "replace")
        except OSError:
            return "(no console log)"
        return "\n".join(text.splitlines()[-lines:])

    def power_off(self, timeout: float = 60) -> str:
        """How the guest stopped: "powerdown", "quit" or "kill"."""
        if self.process.poll() is not None:
            return "exited"
        self.qmp("system_powerdown")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)
            return "powerdown"
        self.qmp("quit")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
            return "quit"
        self.kill()
        return "kill"

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # the group we started, and only it
            self.process.wait(10)


@contextlib.contextmanager
def boot_vm(disk: Path, workdir: Path, console: Path, firmware: str = "uefi") -> Iterator[Vm]:
    """Boot `disk` (never changed: -snapshot) with UEFI (OVMF) or BIOS (SeaBIOS)."""
    missing = [t for t in ("qemu-system-x86_64",) if shutil.which(t) is None]
    if missing or (firmware == "uefi" and not OVMF_CODE.exists()):
        raise RuntimeError("install qemu-system-x86 and ovmf (make setup)")
    workdir.mkdir(parents=True, exist_ok=True)
    console.parent.mkdir(parents=True, exist_ok=True)
    port, control_port = free_port(), free_port()
    qmp_path = workdir / "qmp.sock"
    # One vCPU: with two, multi-threaded TCG once let trixie's kernel hit a stale int3 while it
    # patched its own code at boot ("Oops: int3" in sched_clock_cpu, 2.7 s in; CI, 2026-11-24).
    argv = [
        "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "1024", "-smp", "1",
        "-display", "none", "-monitor", "none", "-snapshot",
        "-serial", f"file:{console}",
        "-qmp", f"unix:{qmp_path},server=on,wait=off",
        "-drive", f"file={disk},format=qcow2,if=virtio",
        "-nic", f"user,model=virtio-net-pci,hostfwd=tcp:{LOOPBACK}:{port}-:80"
                f",hostfwd=tcp:{LOOPBACK}:{control_port}-:8080",
    ]
    if firmware == "uefi":
        vars_copy = workdir / "OVMF_VARS.fd"
        shutil.copyfile(OVMF_VARS, vars_copy)
        argv += [
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}",
        ]
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    vm = Vm(process, port, control_port, console, qmp_path)
    try:
        yield vm
    finally:
        try:
            vm.power_off()
        finally:
            vm.kill()
