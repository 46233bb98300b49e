"""Which migration steps a restore runs (pure selection logic over the hook directory)."""

from __future__ import annotations

from pathlib import Path

from vatools.backup.actions import migrations
from vatools.backup.manifest import BackupManifest
from vatools.run import Target


def manifest(version: str) -> BackupManifest:
    return BackupManifest.from_control({"Vatools-Backup-Data": "/var/lib/wiki"}, "wiki", version)


def steps(tmp_path: Path, backup_version: str, installed: str) -> list[str]:
    directory = tmp_path / "usr/share/vatools/appliances/wiki/migrate"
    if not directory.exists():
        directory.mkdir(parents=True)
        for name in ("1.0", "1.10", "1.2", "2.0~rc1", "2.0"):
            (directory / name).write_text("#!/bin/sh\n")
            (directory / name).chmod(0o755)
        (directory / "README").write_text("not executable: ignored\n")
    return [m.from_version for m in migrations(Target(tmp_path), manifest(installed),
                                               backup_version)]


def test_steps_from_the_backup_version_up_to_the_installed_one_in_version_order(tmp_path) -> None:
    assert steps(tmp_path, "1.0", "2.1") == ["1.0", "1.2", "1.10", "2.0~rc1", "2.0"]
    assert steps(tmp_path, "1.1", "2.0") == ["1.2", "1.10", "2.0~rc1"]
    assert steps(tmp_path, "2.0", "2.0") == []
    assert steps(tmp_path, "", "1.5") == ["1.0", "1.2"]  # format 1: no version, all older steps


def test_no_migrate_directory(tmp_path: Path) -> None:
    assert migrations(Target(tmp_path), manifest("2.0"), "1.0") == ()
