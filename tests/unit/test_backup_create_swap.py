"""Backup creation follows no swapped symlink (issue #17, item 1b).

The owner of a data root (www-data) can replace an entry between root's lstat and its open.
A symlink put there to a root-only file must not bring that file into the backup, which the
web user can read."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from test_backup_helpers import make_target, write

from vatools.backup import create
from vatools.backup.create import create_backup
from vatools.errors import VatoolsError
from vatools.run import Target

SECRET = b"root-only: the shadow password of the machine\n"


def archive_bytes(path: Path) -> bytes:
    """Everything the archive holds, gunzipped: the secret would show here."""
    import gzip

    with zipfile.ZipFile(path) as zf:
        return b"".join(gzip.decompress(zf.read(n)) if n.endswith(".gz") else zf.read(n)
                        for n in zf.namelist())


@pytest.mark.parametrize("victim", ["var/lib/wiki/data/pages/ns/deep page.txt", "var/lib/wiki/users.txt"],
                         ids=["below a root", "a root that is a file"])
def test_a_file_swapped_for_a_symlink_between_lstat_and_open_is_refused(
        tmp_path: Path, monkeypatch, victim: str) -> None:
    target = make_target(tmp_path / "target")
    secret = write(tmp_path / "shadow", SECRET.decode(), 0o600)
    swapped = []

    def swap(opening: Path) -> None:  # what www-data does at the worst moment
        path = target / victim
        if opening == path and not swapped:
            os.unlink(path)
            os.symlink(secret, path)
            swapped.append(path)

    monkeypatch.setattr(create, "_between_lstat_and_open", swap)
    output = tmp_path / "wiki.abf"
    try:
        create_backup(Target(target), output)
    except VatoolsError as e:
        assert "changed while it was backed up" in e.message
        assert not output.exists() and not output.with_name("wiki.abf.partial").exists()
    else:
        assert b"root-only" not in archive_bytes(output)
    assert swapped, "the seam was never reached"


def test_a_directory_swapped_for_a_symlink_is_not_descended(tmp_path: Path, monkeypatch) -> None:
    target = make_target(tmp_path / "target")
    elsewhere = tmp_path / "root-only"
    write(elsewhere / "key.txt", SECRET.decode(), 0o600)
    swapped = []

    def swap(opening: Path) -> None:
        path = target / "var/lib/wiki/data/pages/ns"
        if opening == path and not swapped:
            for child in path.iterdir():
                child.unlink()
            path.rmdir()
            os.symlink(elsewhere, path)
            swapped.append(path)

    monkeypatch.setattr(create, "_between_lstat_and_open", swap)
    output = tmp_path / "wiki.abf"
    with pytest.raises(VatoolsError, match="changed while it was backed up"):
        create_backup(Target(target), output)
    assert not output.exists()
    assert swapped
