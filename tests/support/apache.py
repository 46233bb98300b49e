"""Run the Apache of a chroot on a loopback port for the length of a `with` block.

No systemd in a chroot: `apache2ctl start` runs httpd directly (policy-rc.d stops only
invoke-rc.d). Listen and the port-80 virtual hosts are rewritten to 127.0.0.1:PORT, so
nothing listens beyond loopback, and put back afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from pathlib import Path
from typing import Iterator

from tests.support.chroot import Chroot
from tests.support.net import LOOPBACK, wait_for_port

PORTS_CONF = "/etc/apache2/ports.conf"
SITES_ENABLED = "/etc/apache2/sites-enabled"
# APACHE_PID_FILE of /etc/apache2/envvars, without its /var/run symlink.
PID_FILE = "/run/apache2/apache2.pid"
VHOST_ON_80 = re.compile(r"<VirtualHost\s+[^>]*:80\s*>")
# apache2ctl hands over to systemctl when PID 1 is systemd; in a chroot we run httpd ourselves.
APACHECTL_ENV = {"APACHE_STARTED_BY_SYSTEMD": "true"}


class ApacheFailed(Exception):
    """Apache did not start or stop in the chroot."""


def _loopback_config(chroot: Chroot, port: int) -> dict[Path, str]:
    """Rewrite Listen and port-80 vhosts to 127.0.0.1:port; returns the original texts."""
    originals: dict[Path, str] = {}
    ports = chroot.resolve(PORTS_CONF)
    originals[ports] = ports.read_text()
    ports.write_text(f"# vatools test harness: loopback only\nListen {LOOPBACK}:{port}\n")
    sites = chroot.resolve(SITES_ENABLED)
    for link in sorted(sites.glob("*.conf")):
        site = chroot.resolve(f"{SITES_ENABLED}/{link.name}")
        text = site.read_text()
        rewritten = VHOST_ON_80.sub(f"<VirtualHost {LOOPBACK}:{port}>", text)
        if rewritten != text:
            originals[site] = text
            site.write_text(rewritten)
    return originals


def _running_in(chroot: Chroot, pid: int) -> bool:
    """Is `pid` alive and rooted in this chroot (so a reused PID is never killed)?"""
    try:
        return Path(os.readlink(f"/proc/{pid}/root")) == Path(os.path.realpath(chroot.root))
    except OSError:
        return False


def _stop(chroot: Chroot, pid: int | None) -> None:
    chroot.run(["apache2ctl", "stop"], check=False, env=APACHECTL_ENV, timeout=60)
    if pid is None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        deadline = time.monotonic() + 10
        while _running_in(chroot, pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not _running_in(chroot, pid):
            return
        os.kill(pid, sig)  # only the PID from the chroot's own pidfile
    raise ApacheFailed(f"apache2 (PID {pid}) in {chroot.root} survived SIGKILL")


@contextlib.contextmanager
def serve_apache(chroot: Chroot, port: int) -> Iterator[str]:
    """Start the chroot's Apache on 127.0.0.1:port, yield its base URL; stop it, unmount after."""
    if not chroot.resolve("/usr/sbin/apache2ctl").exists():
        raise ApacheFailed(f"apache2 is not installed in {chroot.root}")
    originals = _loopback_config(chroot, port)
    try:
        with chroot.mount_proc():
            pid = None
            try:
                started = chroot.run(
                    ["apache2ctl", "start"], check=False, env=APACHECTL_ENV, timeout=60
                )
                if started.returncode != 0:
                    raise ApacheFailed(
                        f"apache2ctl start failed:\n{started.stdout}{started.stderr}"
                        + _error_log(chroot)
                    )
                try:
                    wait_for_port(port, timeout=30)
                except TimeoutError as error:
                    raise ApacheFailed(f"{error}{_error_log(chroot)}") from None
                pid = _wait_for_pid(chroot)
                yield f"http://{LOOPBACK}:{port}"
            finally:
                _stop(chroot, pid if pid is not None else _pid_or_none(chroot))
    finally:
        for path, text in originals.items():
            path.write_text(text)


def _wait_for_pid(chroot: Chroot) -> int:
    """httpd writes its pidfile just after it starts listening."""
    deadline = time.monotonic() + 10
    while (pid := _pid_or_none(chroot)) is None:
        if time.monotonic() > deadline:
            raise ApacheFailed(f"apache2 wrote no {PID_FILE} in {chroot.root}")
        time.sleep(0.1)
    return pid


def _pid_or_none(chroot: Chroot) -> int | None:
    try:
        return int(chroot.read_text(PID_FILE).strip())
    except (OSError, ValueError):
        return None


def _error_log(chroot: Chroot) -> str:
    try:
        tail = chroot.read_text("/var/log/apache2/error.log").splitlines()[-15:]
    except OSError:
        return ""
    return "\n--- /var/log/apache2/error.log (tail) ---\n" + "\n".join(tail)
