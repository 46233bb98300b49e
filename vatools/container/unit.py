"""The systemd unit that runs a deployment, when systemd runs; otherwise podman runs it detached.

>>> print(unit_text("wiki", ["podman", "run", "--name", "vatools-wiki", "img"], "vatools-wiki"))
... # doctest: +ELLIPSIS
[Unit]
Description=vatools container wiki
...
ExecStart=podman run --name vatools-wiki img
ExecStop=podman stop -t 20 vatools-wiki
...
"""

from __future__ import annotations

import shlex
from pathlib import Path

UNIT_DIR = Path("/etc/systemd/system")


def systemd_running() -> bool:
    """sd_booted(3): systemd is PID 1 when this directory exists."""
    return Path("/run/systemd/system").is_dir()


def unit_name(name: str) -> str:
    return f"vatools-container-{name}.service"


def unit_text(name: str, argv: list[str], container: str) -> str:
    return f"""[Unit]
Description=vatools container {name}
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
NotifyAccess=all
Environment=PODMAN_SYSTEMD_UNIT=%n
ExecStart={shlex.join(argv)}
ExecStop=podman stop -t 20 {container}
ExecStopPost=-podman rm -f --ignore {container}
Restart=on-failure
TimeoutStartSec=300
TimeoutStopSec=60

[Install]
WantedBy=multi-user.target
"""
