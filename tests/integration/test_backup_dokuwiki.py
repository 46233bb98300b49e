"""Backups of a real dokuwiki-appliance, installed by vainstall in a chroot of each suite.

Pages are created, backed up, deleted, the config changed; the restore brings both back
(checked on disk and through Apache serving the wiki on 127.0.0.1). The same backup is then
restored onto a second, freshly installed server (moving to a new machine), and restores
of it are killed with -9 at several points. vatools runs on the host with --root.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.apache import serve_apache
from tests.support.backups import backup_cli, journal_phase, restore_killed, snapshot
from tests.support.chroot import Chroot
from tests.support.net import free_port, http_get

pytestmark = pytest.mark.integration

ROOTS = ("etc/dokuwiki", "var/lib/dokuwiki")
PAGES = "/var/lib/dokuwiki/data/pages"
CONFIG = "/etc/dokuwiki/local.php"


def install(chroot: Chroot) -> None:
    result = chroot.run(["vainstall", "--yes", "dokuwiki-appliance"], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def page(chroot: Chroot, wiki_id: str) -> tuple[int, str]:
    with serve_apache(chroot, free_port()) as url:
        return http_get(f"{url}/dokuwiki/doku.php?id={wiki_id}&do=export_raw")


def test_backup_delete_restore_and_move_to_a_new_server(server: object, suite: str,
                                                         tmp_path: Path) -> None:
    chroot = server(suite)  # type: ignore[operator]
    install(chroot)
    chroot.write_text(f"{PAGES}/team/plan.txt", "====== Plan ======\nBack up often.\n")
    chroot.write_text(f"{PAGES}/start.txt", "Welcome to the restored wiki\n")
    chroot.run(["chown", "-R", "www-data:www-data", PAGES])
    abf = tmp_path / "wiki.abf"
    created = backup_cli("create", "--root", str(chroot.root), "-o", str(abf))
    assert "dokuwiki-appliance" in created.stdout
    assert "OK (format 2" in backup_cli("verify", str(abf)).stdout
    before = snapshot(chroot.root, ROOTS)

    # the disaster: pages deleted, config changed
    chroot.run(["rm", "-r", f"{PAGES}/team", f"{PAGES}/start.txt"])
    chroot.write_text(CONFIG, "<?php\n$conf['title'] = 'Vandalised';\n")
    assert snapshot(chroot.root, ROOTS) != before

    dry = backup_cli("restore", "--dry-run", "--root", str(chroot.root), str(abf))
    assert "replace: /var/lib/dokuwiki" in dry.stdout and "dry run: nothing changed" in dry.stdout
    backup_cli("restore", "--root", str(chroot.root), str(abf))
    assert snapshot(chroot.root, ROOTS) == before
    assert "Back up often." in chroot.read_text(f"{PAGES}/team/plan.txt")
    assert "Vandalised" not in chroot.read_text(CONFIG)
    status, body = page(chroot, "team:plan")
    assert status == 200 and "Back up often." in body, body[:500]

    # a second server, installed from scratch: the backup moves the wiki there. Made by the
    # first server, it is foreign here (not authenticated by this server's key): --foreign
    fresh = server(suite)  # type: ignore[operator]
    install(fresh)
    assert not fresh.path(f"{PAGES}/team/plan.txt").exists()
    backup_cli("restore", "--foreign", "--root", str(fresh.root), str(abf))
    assert snapshot(fresh.root, ROOTS) == before
    status, body = page(fresh, "team:plan")
    assert status == 200 and "Back up often." in body, body[:500]

    # kill -9 during restores onto the first server: old or new, never mixed
    chroot.write_text(CONFIG, "<?php\n$conf['title'] = 'Old';\n")
    chroot.run(["rm", "-r", f"{PAGES}/team"])
    old_abf = tmp_path / "old.abf"
    backup_cli("create", "--root", str(chroot.root), "-o", str(old_abf))
    old = snapshot(chroot.root, ROOTS)
    seen = []
    for phase, delay in (("staging", 0.0), ("swapping", 0.0), ("swapping", 0.005),
                         ("committed", 0.0)):
        seen.append(restore_killed(chroot.root, abf, phase, delay))
        backup_cli("recover", "--root", str(chroot.root))
        now = snapshot(chroot.root, ROOTS)
        assert now in (old, before), f"mixed content after a kill at {phase}+{delay}s"
        assert journal_phase(chroot.root) is None
        backup_cli("restore", "--root", str(chroot.root), str(old_abf))
        assert snapshot(chroot.root, ROOTS) == old
    assert "staging" in seen
