"""kill -9 of a restore at many points: afterwards (and after `vatools backup recover`) the
appliance's directories hold exactly the previous content or exactly the backup, never a mix.

The target is a real minbase chroot of each suite (hooks run in it with chroot; services go
through invoke-rc.d and policy-rc.d) with a synthetic appliance paragraph in dpkg's status:
no package is installed, and vatools runs on the host with --root, as an administrator would.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.backups import backup_cli, journal_phase, restore_killed
from tests.support.chroot import Chroot

pytestmark = pytest.mark.integration

ROOTS = ("etc/wiki", "var/lib/wiki")
APPLIANCE = """
Package: wiki-appliance
Status: install ok installed
Priority: optional
Section: misc
Architecture: all
Version: 1.0
Provides: virtual-appliance
Depends: base-files
Vatools-Services: apache2
Vatools-Backup-Config: /etc/wiki
Vatools-Backup-Data: /var/lib/wiki
Description: synthetic appliance for the kill test
"""
HOOKS = "usr/share/vatools/appliances/wiki-appliance"


def fill(root: Path, flavour: str, files: int = 800) -> None:
    """Content that differs in every file between flavours."""
    for rel in ROOTS:
        shutil.rmtree(root / rel, ignore_errors=True)
    (root / "etc/wiki").mkdir(parents=True)
    (root / "etc/wiki/local.php").write_text(f"<?php $conf['title'] = '{flavour}';\n")
    for i in range(files):
        page = root / f"var/lib/wiki/data/pages/ns{i % 30}/page{i}.txt"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(f"{flavour} page {i}\n" * (200 + i % 400))
    (root / "var/lib/wiki/big.bin").write_bytes(flavour.encode() * (8 << 20 // len(flavour)))


def state(root: Path) -> dict[str, bytes | str]:
    found: dict[str, bytes | str] = {}
    for rel in ROOTS:
        for dirpath, dirnames, filenames in os.walk(root / rel):
            for name in dirnames:
                found[os.path.relpath(os.path.join(dirpath, name), root)] = "dir"
            for name in filenames:
                path = os.path.join(dirpath, name)
                with open(path, "rb") as handle:
                    found[os.path.relpath(path, root)] = handle.read()
    return found




@pytest.fixture
def wiki_root(pristine_root: Chroot) -> Path:
    root = pristine_root.root
    with open(root / "var/lib/dpkg/status", "a") as status:
        status.write(APPLIANCE)
    hook = root / HOOKS / "restore-post"
    hook.parent.mkdir(parents=True)
    # a slow post hook widens the window between "services started" and "committed"
    hook.write_text("#!/bin/sh\nsleep 1\necho restore-post ran >> /var/lib/wiki-hook.log\n")
    hook.chmod(0o755)
    return root


# (phase to wait for, then seconds; or None: seconds after the start)
KILL_POINTS = [(None, 0.05), (None, 0.3), ("staging", 0.0), ("staging", 0.2), ("swapping", 0.0),
               ("swapping", 0.01), ("swapping", 0.5), ("committed", 0.0), ("committed", 0.02)]


def test_kill_minus_9_at_any_point_leaves_old_or_new_never_a_mix(wiki_root: Path,
                                                                  tmp_path: Path) -> None:
    root = wiki_root
    fill(root, "NEW")
    new_abf = tmp_path / "new.abf"
    backup_cli("create", "--root", str(root), "-o", str(new_abf))
    new = state(root)
    fill(root, "OLD")
    old_abf = tmp_path / "old.abf"
    backup_cli("create", "--root", str(root), "-o", str(old_abf))
    old = state(root)
    outcomes = []
    for phase, delay in KILL_POINTS:
        seen = restore_killed(root, new_abf, phase, delay)
        result = backup_cli("recover", "--root", str(root))
        now = state(root)
        assert now in (old, new), f"mixed content after a kill at {phase}+{delay}s"
        outcome = "new" if now == new else "old"
        outcomes.append((phase, delay, seen, outcome, result.stdout.strip()))
        assert journal_phase(root) is None
        leftovers = [p.name for p in (root / "var/lib").iterdir() if ".abf-" in p.name]
        assert leftovers == []
        if seen == "committed":
            assert outcome == "new"
        if seen == "staging" or seen is None and outcome == "old":
            assert outcome == "old"
        backup_cli("restore", "--root", str(root), str(old_abf))  # back to the start
        assert state(root) == old
    print("\n".join(map(str, outcomes)))
    seen_phases = {o[2] for o in outcomes}
    assert {"staging", "swapping", "committed"} <= seen_phases
    assert {"old", "new"} == {o[3] for o in outcomes}
    # and a restore that is not killed runs the hook once per restore
    backup_cli("restore", "--root", str(root), str(new_abf))
    assert state(root) == new
    assert "restore-post ran" in (root / "var/lib/wiki-hook.log").read_text()


def test_next_restore_repairs_a_killed_one_first(wiki_root: Path, tmp_path: Path) -> None:
    root = wiki_root
    fill(root, "NEW", files=300)
    abf = tmp_path / "new.abf"
    backup_cli("create", "--root", str(root), "-o", str(abf))
    new = state(root)
    fill(root, "OLD", files=300)
    assert restore_killed(root, abf, "swapping", 0.3) == "swapping"
    result = backup_cli("restore", "--root", str(root), str(abf))
    assert "undid the interrupted restore" in result.stderr
    assert state(root) == new
