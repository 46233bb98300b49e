"""Backups of a real moinmoin-appliance, installed by vainstall in a chroot of each suite.

A page is written through the wiki (logged in over HTTP), backed up; then the wiki's data is
wiped and its config changed; the restore brings both back, checked on disk and through
Apache. The same backup then moves the wiki to a second, freshly installed server, and
restores killed with -9 at several points leave the old or the new content, never a mix.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_moinmoin import APPLIANCE, NEW_PAGE_QUERY, Browser, log_in, save

from tests.support.apache import serve_apache
from tests.support.backups import backup_cli, journal_phase, restore_killed, snapshot
from tests.support.chroot import Chroot
from tests.support.commands import secrets_of, vainstall
from tests.support.net import free_port

pytestmark = pytest.mark.integration

ROOTS = ("etc/moinmoin-appliance", "var/lib/moinmoin-appliance")
CONFIG = "/etc/moinmoin-appliance/wikiconfig.py"
PAGE = "BackupPlan"
TEXT = "Back up the wiki every night."


def install(chroot: Chroot) -> str:
    """vainstall the appliance; returns the generated admin password."""
    result = vainstall(chroot, "--yes", APPLIANCE)
    assert result.returncode == 0, result.stdout + result.stderr
    return secrets_of(chroot, APPLIANCE)[f"{APPLIANCE}/admin-password"]


def page_text(chroot: Chroot) -> tuple[int, str]:
    with serve_apache(chroot, free_port()) as url:
        answer = Browser(url).get(f"/{PAGE}")
        return answer.status, answer.body


def test_moinmoin_backup_wipe_restore_move_and_kill(server: object, suite: str,
                                                    tmp_path: Path) -> None:
    chroot = server(suite)  # type: ignore[operator]
    password = install(chroot)
    with serve_apache(chroot, free_port()) as url:
        admin = Browser(url)
        log_in(admin, password)
        saved = save(admin, f"/+modify/{PAGE}?{NEW_PAGE_QUERY}", TEXT + "\n", "backup test")
        assert saved.status == 200, saved.body[:2000]
    abf = tmp_path / "moin.abf"
    created = backup_cli("create", "--root", str(chroot.root), "-o", str(abf))
    assert APPLIANCE in created.stdout
    assert "OK (format 2" in backup_cli("verify", str(abf)).stdout
    before = snapshot(chroot.root, ROOTS)
    config = chroot.read_text(CONFIG)

    # the disaster: every item gone, the config vandalised
    chroot.run(["sh", "-c", "rm -rf /var/lib/moinmoin-appliance/*"])
    chroot.write_text(CONFIG, "raise SystemExit('vandalised')\n")
    assert snapshot(chroot.root, ROOTS) != before

    backup_cli("restore", "--root", str(chroot.root), str(abf))
    assert snapshot(chroot.root, ROOTS) == before
    assert chroot.read_text(CONFIG) == config
    status, body = page_text(chroot)
    assert status == 200 and TEXT in body, body[:2000]

    # a second server, installed from scratch: the backup moves the wiki there. Made by the
    # first server, it is foreign here (not authenticated by this server's key): --foreign
    fresh = server(suite)  # type: ignore[operator]
    install(fresh)
    assert page_text(fresh)[0] == 404
    backup_cli("restore", "--foreign", "--root", str(fresh.root), str(abf))
    assert snapshot(fresh.root, ROOTS) == before
    status, body = page_text(fresh)
    assert status == 200 and TEXT in body, body[:2000]

    # kill -9 during restores of the first server's backup onto the second: never a mix
    fresh.run(["sh", "-c", "rm -rf /var/lib/moinmoin-appliance/*"])
    old = snapshot(fresh.root, ROOTS)
    for phase, delay in (("staging", 0.0), ("swapping", 0.0), ("committed", 0.0)):
        restore_killed(fresh.root, abf, phase, delay, foreign=True)
        backup_cli("recover", "--root", str(fresh.root))
        now = snapshot(fresh.root, ROOTS)
        assert now in (old, before), f"mixed content after a kill at {phase}+{delay}s"
        assert journal_phase(fresh.root) is None
    backup_cli("restore", "--foreign", "--root", str(fresh.root), str(abf))
    assert snapshot(fresh.root, ROOTS) == before
