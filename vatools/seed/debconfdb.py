"""A target's debconf database: snapshot it, apply a seed to it, read it back, restore it.

debconf keeps its database in three files under /var/cache/debconf.  A snapshot of all three
is small (tens to hundreds of kB) and restoring it byte for byte is the surest undo of a seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from debian.deb822 import Deb822

from vatools.errors import VatoolsError
from vatools.run import Target, run
from vatools.seed.file import Seed

DB_DIR = "/var/cache/debconf"
DB_FILES = ("config.dat", "passwords.dat", "templates.dat")


@dataclass(frozen=True)
class DebconfSnapshot:
    """The bytes and modes of debconf's database files (None: the file did not exist)."""

    files: tuple[tuple[str, bytes | None, int], ...]


def snapshot(target: Target) -> DebconfSnapshot:
    files: list[tuple[str, bytes | None, int]] = []
    for name in DB_FILES:
        path = target.path(f"{DB_DIR}/{name}")
        try:
            files.append((name, path.read_bytes(), path.stat().st_mode & 0o7777))
        except FileNotFoundError:
            files.append((name, None, 0o600))
    return DebconfSnapshot(tuple(files))


def restore(target: Target, snap: DebconfSnapshot) -> None:
    """Put the database files back exactly as they were, each replaced atomically."""
    for name, data, mode in snap.files:
        path = target.path(f"{DB_DIR}/{name}")
        if data is None:
            path.unlink(missing_ok=True)
            continue
        _write_atomically(path, data, mode)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".vatools-restore")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def apply(target: Target, seed: Seed) -> None:
    """Load a validated seed with debconf-set-selections (the seed travels on stdin)."""
    result = run(["debconf-set-selections"], target=target, input=seed.render(), check=False)
    # debconf-set-selections exits 0 after mere warnings (it skips such lines): treat any
    # output as failure, since a validated seed must load silently.
    if result.returncode != 0 or result.stdout.strip():
        raise VatoolsError(
            "debconf-set-selections did not accept the seed:\n" + result.stdout.strip()[-2000:],
        )


def values(target: Target, *, passwords: bool = True) -> dict[str, str]:
    """Current answers of every question (passwords included unless `passwords` is False),
    as debconf stores them."""
    answers: dict[str, str] = {}
    for name in ("config.dat", "passwords.dat") if passwords else ("config.dat",):
        path = target.path(f"{DB_DIR}/{name}")
        if not path.exists():
            continue
        for para in Deb822.iter_paragraphs(path.read_text("utf-8", "replace").splitlines(True)):
            if "Name" in para and "Value" in para:
                answers[para["Name"]] = para["Value"]
    return answers
