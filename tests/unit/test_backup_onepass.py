"""A restore reads the archive once: it checks while it stages, and nothing live changes
before everything passed; a refusal found at the very end leaves the target as it was."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from test_backup_helpers import build_abf, make_target, snapshot

from vatools.backup.archive import BackupFile
from vatools.backup.create import create_backup
from vatools.cli.main import main
from vatools.run import Target


def test_restore_reads_each_tar_member_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    target = make_target(tmp_path / "t")
    abf = create_backup(Target(target), tmp_path / "a.abf").path
    walked: list[str] = []
    real_walk = BackupFile.walk

    def counting_walk(self: BackupFile, archive: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        walked.append(archive)
        return real_walk(self, archive, *args, **kwargs)

    monkeypatch.setattr(BackupFile, "walk", counting_walk)
    (target / "etc/wiki/local.php").write_text("changed\n")
    assert main(["backup", "restore", "--root", str(target), str(abf)]) == 0
    assert walked == ["sysconfig.tar.gz", "appdata.tar.gz"]
    assert (target / "etc/wiki/local.php").read_text() == "<?php $conf['title'] = 'Before';\n"
    out = capsys.readouterr().out
    assert "replace: /etc/wiki" in out  # the plan, completed by the staging pass
    assert out.rstrip().endswith(f"restored {abf} on {target}")


def wrong_last_sum(members: dict[str, bytes]) -> None:
    """Sums right for every member but appdata.tar.gz, the last one read."""
    members["sha256sums"] = "".join(
        f"{hashlib.sha256(blob + (b'!' if name == 'appdata.tar.gz' else b'')).hexdigest()}"
        f"  {name}\n" for name, blob in members.items()).encode()


def test_a_checksum_mismatch_found_after_everything_was_staged_leaves_no_trace(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every member of both tars is valid and gets staged; only the sum of the last one,
    compared at the end of its stream, is wrong."""
    abf = build_abf(tmp_path / "late.abf", tamper=wrong_last_sum)
    target = make_target(tmp_path / "t")
    whole = snapshot(target)
    assert main(["backup", "restore", "--foreign", "--root", str(target), str(abf)]) == 3
    assert "checksum mismatch for appdata.tar.gz" in capsys.readouterr().err
    assert snapshot(target) == whole  # the staging trees gone, the parents' times back
    assert not (target / "var/lib/vatools").exists()  # nor the lock and journal


def test_a_root_absent_in_the_backup_is_named_once_staging_knows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = make_target(tmp_path / "t")
    os.unlink(target / "var/lib/wiki/users.txt")
    abf = create_backup(Target(target), tmp_path / "a.abf").path
    (target / "var/lib/wiki/users.txt").write_text("made later\n")
    assert main(["backup", "restore", "--root", str(target), str(abf)]) == 0
    assert "remove (absent in the backup): /var/lib/wiki/users.txt" in capsys.readouterr().out
    assert not (target / "var/lib/wiki/users.txt").exists()


def test_a_restore_after_a_refused_one_takes_the_lock_again(tmp_path: Path) -> None:
    """The refused restore removed its lock file (and directory); the next one makes them
    again, and an existing lock directory stays after a refusal."""
    target = make_target(tmp_path / "t")
    late = build_abf(tmp_path / "late.abf", tamper=wrong_last_sum)
    assert main(["backup", "restore", "--foreign", "--root", str(target), str(late)]) == 3
    good = build_abf(tmp_path / "ok.abf")
    assert main(["backup", "restore", "--foreign", "--root", str(target), str(good)]) == 0
    assert (target / "var/lib/wiki/data/pages/start.txt").read_text() == "restored page\n"
    assert main(["backup", "restore", "--foreign", "--root", str(target), str(late)]) == 3
    assert (target / "var/lib/vatools/backup/lock").exists()  # not made by the refused one


def test_owners_are_exact_below_a_setgid_parent(tmp_path: Path) -> None:
    """Files owned by the restoring user get no chown; a setgid parent of a root must not
    pass its group on to them."""
    target = make_target(tmp_path / "t")
    os.chown(target / "var/lib/wiki", 0, 33)
    os.chmod(target / "var/lib/wiki", 0o2775)
    abf = create_backup(Target(target), tmp_path / "a.abf").path
    before = snapshot(target / "var/lib/wiki")
    (target / "var/lib/wiki/data/pages/start.txt").write_text("changed\n")
    assert main(["backup", "restore", "--root", str(target), str(abf)]) == 0
    after = snapshot(target / "var/lib/wiki")
    assert after == before
    assert (target / "var/lib/wiki/data/pages/ns/deep page.txt").stat().st_gid == 0
