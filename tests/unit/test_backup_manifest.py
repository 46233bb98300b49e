"""The backup manifest, read from an appliance's control fields and dpkg status."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_backup_helpers import APPLIANCE, make_target

from vatools.backup.manifest import BackupManifest, ManifestError, installed_appliance
from vatools.errors import VatoolsError
from vatools.run import Target


def test_from_control_names_roots_and_services() -> None:
    m = BackupManifest.from_control({"Vatools-Backup-Config": "/etc/dokuwiki",
                                     "Vatools-Backup-Data": "/var/lib/dokuwiki/data  /srv/x/y",
                                     "Vatools-Services": "apache2 cron.service"}, "d", "1")
    assert [(r.name, r.path, r.kind, r.archive) for r in m.roots] == [
        ("etc-dokuwiki", "/etc/dokuwiki", "config", "sysconfig.tar.gz"),
        ("var-lib-dokuwiki-data", "/var/lib/dokuwiki/data", "data", "appdata.tar.gz"),
        ("srv-x-y", "/srv/x/y", "data", "appdata.tar.gz")]
    assert m.services == ("apache2", "cron.service")
    assert m.hooks_dir == "/usr/share/vatools/appliances/d"
    again = BackupManifest.from_control(m.control_fields(), "d", "1")
    assert again == m


@pytest.mark.parametrize("fields, message", [
    ({"Vatools-Backup-Data": "var/lib/x"}, "'var/lib/x' is not an absolute path"),
    ({"Vatools-Backup-Data": "/var/lib/x/"}, "is not in normal form"),
    ({"Vatools-Backup-Data": "/var/lib/../x"}, "is not in normal form"),
    ({"Vatools-Backup-Data": "/etc"}, "is a top-level directory"),
    ({"Vatools-Backup-Data": "/var/lib/x /var/lib/x/y"}, "overlap"),
    ({"Vatools-Backup-Config": "/etc/a-b", "Vatools-Backup-Data": "/etc/a/b"}, "same stored name"),
    ({}, "declares nothing to back up"),
    ({"Vatools-Backup-Data": "/var/lib/x", "Vatools-Services": "apache2 $(reboot)"},
     "is not a unit name"),
])
def test_from_control_refuses_bad_declarations(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ManifestError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("$", r"\$")):
        BackupManifest.from_control(fields, "x-appliance", "1.0")


def test_installed_appliance_from_dpkg_status(tmp_path: Path) -> None:
    make_target(tmp_path, version="1.2-1")
    found = installed_appliance(Target(tmp_path))
    assert (found.name, found.version) == (APPLIANCE, "1.2-1")
    assert found.dependencies == ("wikiengine", "apache2")
    assert [r.path for r in found.manifest().roots] == [
        "/etc/wiki", "/var/lib/wiki/data", "/var/lib/wiki/users.txt"]


def test_no_appliance_installed(tmp_path: Path) -> None:
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(
        "Package: other-appliance\nStatus: deinstall ok config-files\nVersion: 1\n"
        "Provides: virtual-appliance\n")
    with pytest.raises(VatoolsError, match="no appliance is installed") as e:
        installed_appliance(Target(tmp_path))
    assert "vainstall" in (e.value.hint or "")
