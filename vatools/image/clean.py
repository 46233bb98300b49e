"""Cleaning a tree for distribution: no per-build or per-machine state stays in the image.

Every copy of an image must differ only where it should (machine-id, host keys: made at
first boot) and two builds of the same inputs must give the same files (no logs, caches,
indexes, random seeds, backups of dpkg's and debconf's databases).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Removed when present (globs, relative to the tree).
REMOVE = (
    "var/lib/apt/lists/*",
    "var/cache/apt/*.bin",
    "var/cache/apt/archives/*.deb",
    "var/cache/apt/archives/partial/*",
    "var/cache/debconf/*-old",
    "var/lib/dpkg/*-old",
    "var/cache/ldconfig/aux-cache",
    "var/cache/man/*",
    "var/cache/fontconfig/*",
    # ssl-cert's self-signed pair: a private key must never be shared by every copy
    "etc/ssl/certs/ssl-cert-snakeoil.pem",
    "etc/ssl/private/ssl-cert-snakeoil.key",
    "var/lib/systemd/random-seed",
    "var/lib/systemd/credential.secret",
    "var/lib/dbus/machine-id",
    "etc/ssh/ssh_host_*",
    "etc/*-",  # passwd-, shadow-, group-, gshadow-: backups made by useradd
    "root/.bash_history",
    "tmp/*",
    "var/tmp/*",
    "var/log/journal/*",
    "var/lib/vatools/snapshots/*",
    # Per-machine secrets made at install time: appliance-control's cookie-signing key (its
    # web service makes a new one at first start), the backup key, the apt hook's copy of
    # debconf's database (passwords included).
    "var/lib/appliance-control/session-key",
    "var/lib/vatools/backup-key",
    "var/lib/vatools/apt-hook/*",
)
# Truncated, not removed: empty means "make one at first boot" to systemd.
EMPTY = ("etc/machine-id",)


def clean(tree: Path) -> list[str]:
    """Remove per-build state; returns what was removed (relative paths), sorted."""
    removed: list[str] = []
    for pattern in REMOVE:
        for path in sorted(tree.glob(pattern)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(str(path.relative_to(tree)))
    for inside in EMPTY:
        path = tree / inside
        if path.exists():
            path.write_text("")
    _empty_logs(tree / "var/log")
    _drop_pycache(tree)
    return sorted(removed)


def _empty_logs(log_dir: Path) -> None:
    """Log files are emptied (their directories stay: daemons expect them); rotated ones go."""
    for dirpath, _dirs, files in os.walk(log_dir):
        for name in files:
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            if name.endswith((".gz", ".1", ".old")):
                path.unlink()
            else:
                path.write_bytes(b"")


def _drop_pycache(tree: Path) -> None:
    """Byte-code compiled during the build (maintainer scripts' py3compile) is rebuilt on use;
    removing it keeps two builds identical whatever the compiler embedded."""
    for top in ("usr/lib/python3", "usr/lib/python3/dist-packages", "usr/share"):
        base = tree / top
        if base.is_dir():
            for cache in sorted(base.rglob("__pycache__")):
                if cache.is_dir() and not cache.is_symlink():
                    shutil.rmtree(cache)
