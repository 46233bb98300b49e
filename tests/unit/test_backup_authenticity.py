"""Backups root restores are trusted for a reason (issue #17, item 2): the key file, the HMAC,
and `vatools backup restore --foreign`."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest
from test_backup_helpers import build_abf, make_target, snapshot

from vatools.backup import authenticity
from vatools.backup.archive import BackupFile
from vatools.backup.authenticity import COMMENT_PREFIX, KEY_PATH, ForeignBackup, backup_key
from vatools.backup.create import create_backup
from vatools.backup.restore import plan_restore
from vatools.cli.main import main
from vatools.errors import VatoolsError
from vatools.run import Target


# -- the key file ---------------------------------------------------------------------------------
def test_the_key_is_made_once_root_only_and_kept(tmp_path: Path) -> None:
    target = Target(tmp_path)
    assert backup_key(target) is None
    assert not (tmp_path / "var").exists()  # looking makes nothing
    key = backup_key(target, create=True)
    path = tmp_path / KEY_PATH.lstrip("/")
    st = path.lstat()
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.geteuid()
    assert key is not None and len(key) == 32
    assert backup_key(target, create=True) == key == backup_key(target)


def test_a_symlinked_key_is_refused_and_not_followed(tmp_path: Path) -> None:
    (tmp_path / "var/lib/vatools").mkdir(parents=True)
    planted = tmp_path / "planted"
    planted.write_text("00" * 32 + "\n")
    os.chmod(planted, 0o600)
    os.symlink(planted, tmp_path / KEY_PATH.lstrip("/"))
    for create in (False, True):
        with pytest.raises(VatoolsError, match="backup-key cannot be opened"):
            backup_key(Target(tmp_path), create=create)
    assert planted.read_text() == "00" * 32 + "\n"  # nor written through


def test_a_symlinked_key_directory_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "var/lib").mkdir(parents=True)
    os.symlink(elsewhere, tmp_path / "var/lib/vatools")
    with pytest.raises(VatoolsError, match="vatools is not a plain directory"):
        backup_key(Target(tmp_path), create=True)
    assert list(elsewhere.iterdir()) == []


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    backup_key(Target(tmp_path), create=True)
    os.chmod(tmp_path / KEY_PATH.lstrip("/"), 0o644)
    with pytest.raises(VatoolsError, match="readable by root alone"):
        backup_key(Target(tmp_path))


def test_a_key_made_meanwhile_is_used_not_replaced(tmp_path: Path, monkeypatch) -> None:
    """O_EXCL: two first backups at once end with one key."""
    target = Target(tmp_path)
    real_read = authenticity._read_key
    calls = []

    def racing(directory: int, where: str) -> bytes | None:
        calls.append(where)
        if len(calls) == 1:  # another backup makes the key just after this one looked
            assert real_read(directory, where) is None
            fd = os.open("backup-key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600,
                         dir_fd=directory)
            os.write(fd, b"ab" * 32 + b"\n")
            os.close(fd)
            return None
        return real_read(directory, where)

    monkeypatch.setattr(authenticity, "_read_key", racing)
    assert backup_key(target, create=True) == bytes.fromhex("ab" * 32)


# -- the code ------------------------------------------------------------------------------------
def made_here(tmp_path: Path) -> tuple[Path, Path]:
    target = make_target(tmp_path / "t")
    return target, create_backup(Target(target), tmp_path / "wiki.abf").path


def test_a_backup_made_here_is_authenticated_here_only(tmp_path: Path) -> None:
    target, abf = made_here(tmp_path)
    with zipfile.ZipFile(abf) as zf:
        assert zf.comment.startswith(COMMENT_PREFIX)
    with BackupFile.open(abf) as backup:
        assert backup.authenticity(Target(target)).authenticated
        other = make_target(tmp_path / "other")
        assert not backup.authenticity(Target(other)).authenticated  # no key there
        backup_key(Target(other), create=True)
        verdict = backup.authenticity(Target(other))  # another key
        assert not verdict.authenticated and "another system" in verdict.reason


def rewrite(abf: Path, out: Path, change: dict[str, bytes], comment: bytes | None = None) -> Path:
    """A copy of `abf` with members replaced and the zip comment kept (or replaced)."""
    with zipfile.ZipFile(abf) as zf, zipfile.ZipFile(out, "w") as new:
        for info in zf.infolist():
            new.writestr(info, change.get(info.filename, zf.read(info.filename)))
        new.comment = zf.comment if comment is None else comment
    return out


def test_a_tampered_backup_is_foreign(tmp_path: Path) -> None:
    """Changing a member means changing its sum, which the code covers."""
    import hashlib

    target, abf = made_here(tmp_path)
    with zipfile.ZipFile(abf) as zf:
        sums = zf.read("sha256sums")
        info = zf.read("info.yaml")
    evil = info.replace(b"hostname:", b"hostname: x\nold_hostname:")
    new_sums = sums.replace(hashlib.sha256(info).hexdigest().encode(),
                            hashlib.sha256(evil).hexdigest().encode())
    tampered = rewrite(abf, tmp_path / "tampered.abf", {"info.yaml": evil, "sha256sums": new_sums})
    with BackupFile.open(tampered) as backup:
        assert not backup.authenticity(Target(target)).authenticated
    with pytest.raises(ForeignBackup, match="does not match this system's key"):
        plan_restore(tampered, Target(target))
    stripped = rewrite(abf, tmp_path / "stripped.abf", {}, comment=b"")
    with pytest.raises(ForeignBackup, match="no authentication code"):
        plan_restore(stripped, Target(target))


def test_a_format_1_or_hand_made_backup_is_foreign(tmp_path: Path) -> None:
    target = make_target(tmp_path / "t")
    backup_key(Target(target), create=True)
    abf = build_abf(tmp_path / "hand.abf")
    with BackupFile.open(abf) as backup:
        assert not backup.authenticity(Target(target)).authenticated


# -- the command line ----------------------------------------------------------------------------
def test_restore_says_authenticated_and_restores(tmp_path: Path, capsys) -> None:
    target, abf = made_here(tmp_path)
    (target / "etc/wiki/local.php").write_text("changed\n")
    assert main(["backup", "restore", "--root", str(target), str(abf)]) == 0
    assert "authenticated: yes" in capsys.readouterr().out
    assert "Before" in (target / "etc/wiki/local.php").read_text()


def test_a_foreign_backup_needs_foreign(tmp_path: Path, capsys) -> None:
    _, abf = made_here(tmp_path)
    other = make_target(tmp_path / "other")
    (other / "etc/wiki/local.php").write_text("other's\n")
    whole = snapshot(other)
    assert main(["backup", "restore", "--root", str(other), str(abf)]) == 3
    err = capsys.readouterr().err
    assert "is a foreign backup" in err and "of root" in err and "--foreign" in err
    assert snapshot(other) == whole
    assert main(["backup", "restore", "--dry-run", "--root", str(other), str(abf)]) == 3
    assert main(["backup", "restore", "--dry-run", "--foreign", "--root", str(other),
                 str(abf)]) == 0
    assert "authenticated: no, foreign" in capsys.readouterr().out
    assert main(["backup", "restore", "--foreign", "--root", str(other), str(abf)]) == 0
    assert "Before" in (other / "etc/wiki/local.php").read_text()


def test_a_foreign_backup_writes_nowhere_but_the_declared_paths(tmp_path: Path, capsys) -> None:
    """Trusting a foreign backup lifts no other check: a root the installed appliance does
    not declare is refused."""
    target = make_target(tmp_path / "t")
    abf = build_abf(tmp_path / "wide.abf", info={
        "sysconf": {"roots": {"etc-wiki": "/etc/wiki", "etc-cron.d": "/etc/cron.d"}}})
    whole = snapshot(target)
    assert main(["backup", "restore", "--foreign", "--root", str(target), str(abf)]) == 3
    assert "restores /etc/cron.d, which wiki-appliance 1.0 does not declare" in capsys.readouterr().err
    assert snapshot(target) == whole
