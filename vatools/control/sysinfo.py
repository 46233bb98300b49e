"""What the dashboard shows about the machine, read from /proc, os and dpkg's status.

Cheap reads only (the dashboard is the most visited page); the appliance's package record
and service states are cached for a few seconds.

>>> human_bytes(1536), human_bytes(3 * 1024**3)
('1.5 KiB', '3.0 GiB')
>>> human_duration(93784)
'1 day, 2 h 3 min'
"""

from __future__ import annotations

import fcntl
import os
import platform
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vatools.run import run

SIOCGIFADDR = 0x8915


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # not reached


def human_duration(seconds: float) -> str:
    minutes = int(seconds) // 60
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    parts = ([f"{days} day{'s' if days != 1 else ''},"] if days else []) + [f"{hours} h {mins} min"]
    return " ".join(parts)


class Cached:
    """A value recomputed at most every `seconds`."""

    def __init__(self, seconds: float, compute: Callable[[], Any]) -> None:
        self.seconds, self.compute = seconds, compute
        self._value: Any = None
        self._at = -1e9
        self._lock = threading.Lock()

    def get(self) -> Any:
        with self._lock:
            if time.monotonic() - self._at > self.seconds:
                self._value, self._at = self.compute(), time.monotonic()
            return self._value


@dataclass(frozen=True)
class Appliance:
    name: str
    version: str
    description: str
    services: tuple[str, ...]
    error: str = ""


def appliance() -> Appliance:
    from vatools import appliance as declared
    from vatools.errors import VatoolsError
    from vatools.run import HOST

    try:
        found = declared.installed(HOST)
        return Appliance(found.name, found.version, found.description, found.services)
    except VatoolsError as e:
        return Appliance("(none)", "", "", (), e.message)


def service_state(unit: str) -> str:
    """systemctl's word for the unit ("active", "failed"...), or why there is none."""
    if not os.path.isdir("/run/systemd/system"):
        return "unknown (systemd is not running)"
    result = run(["systemctl", "is-active", unit], check=False)
    return result.stdout.strip() or f"unknown (exit {result.returncode})"


def os_release() -> str:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith("PRETTY_NAME="):
                    return line.partition("=")[2].strip().strip('"')
        except OSError:
            continue
    return "unknown"


def debian_version() -> str:
    try:
        return Path("/etc/debian_version").read_text().strip()
    except OSError:
        return "unknown"


def uptime() -> str:
    try:
        return human_duration(float(Path("/proc/uptime").read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return "unknown"


def memory() -> dict[str, str]:
    values: dict[str, int] = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return {"total": "unknown", "available": "unknown"}
    return {"total": human_bytes(values.get("MemTotal", 0)),
            "available": human_bytes(values.get("MemAvailable", 0))}


def disk(path: str = "/") -> dict[str, str]:
    st = os.statvfs(path)
    total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
    return {"total": human_bytes(total), "free": human_bytes(free),
            "used_percent": f"{100 * (total - free) / total:.0f}%" if total else "?"}


def addresses() -> list[str]:
    """IPv4 addresses of the interfaces (ioctl) and global IPv6 ones (/proc)."""
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _index, name in socket.if_nameindex():
            if name == "lo":
                continue
            try:
                packed = fcntl.ioctl(sock.fileno(), SIOCGIFADDR,
                                     struct.pack("256s", name.encode()[:15]))
                found.append(f"{socket.inet_ntoa(packed[20:24])} ({name})")
            except OSError:
                continue
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            hexaddr, _, _, scope, _, name = line.split()
            if scope == "00" and name != "lo":
                address = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(hexaddr))
                found.append(f"{address} ({name})")
    except (OSError, ValueError):
        pass
    return found


def machine() -> dict[str, Any]:
    try:
        load = "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = "unknown"
    return {
        "hostname": socket.gethostname(),
        "release": f"{os_release()} ({debian_version()})",
        "kernel": f"{platform.system()} {platform.release()}",
        "uptime": uptime(),
        "load": load,
        "memory": memory(),
        "disk": disk(),
        "addresses": addresses(),
    }
