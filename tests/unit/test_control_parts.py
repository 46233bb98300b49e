"""appliance-control's parts on their own: plugins found through real entry points (a broken
one is reported, not fatal), the postfix relayhost edited with augeas, the config file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vatools.control import settings
from vatools.control.config import Config
from vatools.control.plugins import load_plugins
from vatools.errors import VatoolsError

GOOD = '''
from vatools.control.plugins import Plugin, Widget
def plugin():
    return Plugin(name="good", title="Good", widgets=lambda: [Widget("Items", "3")])
def not_a_plugin():
    return "a string"
'''


def _dist(site: Path, name: str, entry: str) -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[vatools.control.plugins]\n{entry}\n")


def test_plugins_from_entry_points_broken_ones_reported(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "good_plugin.py").write_text(GOOD)
    (tmp_path / "raising_plugin.py").write_text("raise RuntimeError('half-installed')\n")
    _dist(tmp_path, "good-plugin", "good = good_plugin:plugin")
    _dist(tmp_path, "missing-plugin", "missing = no_such_module:plugin")
    _dist(tmp_path, "raising-plugin", "raising = raising_plugin:plugin")
    _dist(tmp_path, "wrong-plugin", "wrong = good_plugin:not_a_plugin")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    plugins, broken = load_plugins("vatools.control.plugins")
    assert [p.name for p in plugins] == ["good"]
    errors = {b.name: b.error for b in broken}
    assert errors["missing"].startswith("ModuleNotFoundError: No module named 'no_such_module'")
    assert errors["raising"] == "RuntimeError: half-installed"
    assert errors["wrong"] == "TypeError: good_plugin:not_a_plugin returned str, not a Plugin"


MAIN_CF = """# See /usr/share/postfix/main.cf.dist for a commented, more complete version
smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
relayhost = old.example.org
# the relay above is the company's
inet_interfaces = loopback-only
"""


def test_relayhost_is_changed_with_augeas_and_nothing_else(tmp_path: Path) -> None:
    main_cf = tmp_path / "etc/postfix/main.cf"
    main_cf.parent.mkdir(parents=True)
    main_cf.write_text(MAIN_CF)
    assert settings.get_relayhost(str(tmp_path)) == "old.example.org"
    settings.set_relayhost("[smtp.example.org]:587", str(tmp_path))
    assert main_cf.read_text() == MAIN_CF.replace("old.example.org", "[smtp.example.org]:587")
    settings.set_relayhost("", str(tmp_path))
    assert "relayhost" not in main_cf.read_text().replace("# the relay above", "")


def test_no_postfix_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(VatoolsError, match="postfix is not installed on this appliance"):
        settings.get_relayhost(str(tmp_path))


@pytest.mark.parametrize("text, message", [
    ("[web]\nlisten = 8080\n", "x.conf: listen = '8080' is not ADDRESS:PORT"),
    ("[web]\nsecure_cookies = maybe\n", "x.conf: secure_cookies = 'maybe' is not yes or no"),
    ("[web\n", "x.conf: File contains no section headers"),
])
def test_bad_config_names_the_file_and_value(text: str, message: str) -> None:
    with pytest.raises(VatoolsError) as error:
        Config.parse(text, "x.conf")
    assert error.value.message.startswith(message)


def test_installed_password_questions_are_known_to_vainstall(tmp_path: Path) -> None:
    """debconf keeps password questions in passwords.dat, not config.dat: an installed
    package's password question (appliance-control's, when one appliance replaces another)
    must still be found with its owner."""
    from vatools.target import Target
    from vatools.seed.templates import from_debconf_db

    db = tmp_path / "var/cache/debconf"
    db.mkdir(parents=True)
    (db / "templates.dat").write_text(
        "Name: appliance-control/admin-password\nType: password\nDescription: Password:\n\n"
        "Name: tzdata/Areas\nType: select\nChoices: Europe\nDescription: Area:\n\n")
    (db / "config.dat").write_text(
        "Name: tzdata/Areas\nTemplate: tzdata/Areas\nValue: Europe\nOwners: tzdata\n\n")
    (db / "passwords.dat").write_text(
        "Name: appliance-control/admin-password\nTemplate: appliance-control/admin-password\n"
        "Owners: appliance-control\n\n")
    packages, templates = from_debconf_db(Target(tmp_path))
    assert packages == {"tzdata", "appliance-control"}
    assert templates["appliance-control/admin-password"].owner == "appliance-control"
    assert templates["appliance-control/admin-password"].type == "password"


def test_jobs_and_login_failures_are_shared_by_the_worker_processes(tmp_path: Path) -> None:
    """Two Jobs (two gunicorn workers) over one directory see the same jobs; a job whose worker
    is gone shows as interrupted. Two RateLimits over one file count the same failures."""
    import json
    import time

    from vatools.control.auth import RateLimit
    from vatools.control.client import HelperClient
    from vatools.control.jobs import Jobs

    client = HelperClient(tmp_path / "no-helper.sock")
    first, second = Jobs(client, tmp_path / "jobs"), Jobs(client, tmp_path / "jobs")
    job = first.start("updates", "apt-update", "Updating")
    deadline = time.monotonic() + 10
    while (seen := second.get(job.id)) is not None and seen.state == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert seen is not None and seen.state == "failed"
    assert seen.error.startswith("the root helper is not reachable at ")
    assert second.latest("updates") == seen

    dead = json.loads((tmp_path / "jobs" / f"{job.id}.json").read_text())
    dead.update(id="9999999999999-abcdef", state="running", pid=2**22 + 1)  # above pid_max
    (tmp_path / "jobs" / "9999999999999-abcdef.json").write_text(json.dumps(dead))
    interrupted = second.latest("updates")
    assert interrupted is not None and interrupted.id == "9999999999999-abcdef"
    assert interrupted.state == "failed" and interrupted.error.startswith("interrupted")
    assert second.get("../../etc/passwd") is None

    one, two = (RateLimit(attempts=3, path=tmp_path / "failures") for _ in range(2))
    one.fail("10.0.0.1")
    two.fail("10.0.0.1")
    one.fail("10.0.0.1")
    assert two.wait("10.0.0.1") > 0 and two.wait("10.0.0.2") == 0
    one.succeed("10.0.0.1")
    assert two.wait("10.0.0.1") == 0
