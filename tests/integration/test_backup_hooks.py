"""Hooks and migration steps run inside a real chroot; a failing step rolls everything back.

The appliance is a synthetic dpkg status paragraph in a minbase chroot of each suite (as in
test_backup_kill.py); its hooks are shell scripts run by vatools with chroot.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_backup_kill import APPLIANCE, HOOKS, fill, state

from tests.support.backups import backup_cli
from tests.support.chroot import Chroot

pytestmark = pytest.mark.integration

LOG = "var/lib/wiki-hooks.log"  # outside the roots, so restores do not replace it


def hook(root: Path, name: str, body: str) -> None:
    path = root / HOOKS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nset -e\n" + body)
    path.chmod(0o755)


def set_version(root: Path, version: str) -> None:
    status = root / "var/lib/dpkg/status"
    text = status.read_text()
    head, sep, para = text.rpartition("Package: wiki-appliance\n")
    lines = [f"Version: {version}" if line.startswith("Version:") else line
             for line in para.splitlines()]
    status.write_text(head + sep + "\n".join(lines) + "\n")


@pytest.fixture
def wiki_root(pristine_root: Chroot) -> Path:
    root = pristine_root.root
    with open(root / "var/lib/dpkg/status", "a") as status:
        status.write(APPLIANCE)
    log = f"/{LOG}"
    hook(root, "backup-pre", f'echo "backup-pre $VATOOLS_APPLIANCE" >> {log}\n'
                             "echo dump > /var/lib/wiki/dump.sql\n")
    hook(root, "backup-post", f"echo backup-post >> {log}\nrm /var/lib/wiki/dump.sql\n")
    hook(root, "restore-post", f"echo restore-post >> {log}\n")
    for step in ("1.0", "1.5", "3.0"):
        hook(root, f"migrate/{step}",
             f'echo "migrate {step} from $VATOOLS_BACKUP_VERSION to $VATOOLS_INSTALLED_VERSION"'
             f" >> {log}\necho {step} >> /var/lib/wiki/migrated\n")
    return root


def test_hooks_and_migrations_of_an_older_backup(wiki_root: Path, tmp_path: Path) -> None:
    root = wiki_root
    fill(root, "V1", files=20)
    abf = tmp_path / "v1.abf"
    backup_cli("create", "--root", str(root), "-o", str(abf))
    assert (root / LOG).read_text() == "backup-pre wiki-appliance\nbackup-post\n"
    assert not (root / "var/lib/wiki/dump.sql").exists()
    listing = backup_cli("inspect", "--json", str(abf)).stdout
    assert '"appliance_version": "1.0"' in listing
    set_version(root, "2.0")  # the appliance was upgraded since
    (root / LOG).unlink()
    plan = backup_cli("restore", "--dry-run", "--root", str(root), str(abf)).stdout
    assert "migrate/1.0" in plan and "migrate/1.5" in plan and "migrate/3.0" not in plan
    backup_cli("restore", "--root", str(root), str(abf))
    assert (root / LOG).read_text() == ("migrate 1.0 from 1.0 to 2.0\nmigrate 1.5 from 1.0 to 2.0\n"
                                        "restore-post\n")
    assert (root / "var/lib/wiki/migrated").read_text() == "1.0\n1.5\n"
    assert (root / "var/lib/wiki/dump.sql").read_text() == "dump\n"  # made by backup-pre


def test_a_failing_migration_puts_the_previous_content_back(wiki_root: Path,
                                                            tmp_path: Path) -> None:
    root = wiki_root
    fill(root, "V1", files=20)
    abf = tmp_path / "v1.abf"
    backup_cli("create", "--root", str(root), "-o", str(abf))
    set_version(root, "2.0")
    fill(root, "CURRENT", files=20)
    current = state(root)
    hook(root, "migrate/1.5", "echo half-done >> /var/lib/wiki/migrated\nexit 7\n")
    result = backup_cli("restore", "--root", str(root), str(abf), check=False)
    assert result.returncode == 4, result.stderr
    assert "the restore failed" in result.stderr and "the previous content is back" in result.stderr
    assert "exited with status 7" in result.stderr
    assert state(root) == current
    assert [p.name for p in (root / "var/lib").iterdir() if ".abf-" in p.name] == []


def test_a_backup_from_a_newer_version_is_refused(wiki_root: Path, tmp_path: Path) -> None:
    root = wiki_root
    fill(root, "V1", files=5)
    set_version(root, "2.0")
    abf = tmp_path / "v2.abf"
    backup_cli("create", "--root", str(root), "-o", str(abf))
    set_version(root, "1.0")  # downgraded
    before = state(root)
    result = backup_cli("restore", "--root", str(root), str(abf), check=False)
    assert result.returncode == 3
    assert "newer than the installed 1.0" in result.stderr
    assert state(root) == before
