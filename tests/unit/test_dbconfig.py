"""Questions dbconfig-common registers at run time, found from real Debian files."""

from __future__ import annotations

from pathlib import Path

from vatools.seed.check import check_against_templates
from vatools.seed.dbconfig import Registration, registered_templates, registration
from vatools.seed.file import parse_seed
from vatools.seed.templates import parse_templates

DATA = Path(__file__).resolve().parents[1] / "data" / "dbconfig"
DBCONFIG = parse_templates((DATA / "dbconfig-common.templates").read_text(), "dbconfig-common")


def roundcube() -> Registration:
    found = registration((DATA / "roundcube-core.config").read_text())
    assert found is not None
    return found


def test_roundcube_registers_under_the_name_it_gives_dbc_go() -> None:
    assert roundcube() == Registration("roundcube", ("mysql", "pgsql", "sqlite3"))


def test_registered_questions_take_dbconfig_commons_types_and_the_packages_ownership() -> None:
    templates = registered_templates(roundcube(), DBCONFIG, "roundcube-core")
    assert templates["roundcube/database-type"].type == "select"
    assert templates["roundcube/database-type"].choices == ("mysql", "pgsql", "sqlite3")
    assert templates["roundcube/dbconfig-install"].type == "boolean"
    assert templates["roundcube/mysql/method"].choices == ("Unix socket", "TCP/IP")
    assert templates["roundcube/mysql/app-pass"].type == "password"
    assert templates["roundcube/db/basepath"].type == "string"
    assert {t.owner for t in templates.values()} == {"roundcube-core"}
    assert "roundcube/db/dbname" in templates and "roundcube/pgsql/authmethod-user" in templates


def test_a_fixed_type_registers_only_that_types_questions() -> None:
    found = registration('. /usr/share/dbconfig-common/dpkg/config.sqlite3\ndbc_go app "$@"\n')
    assert found == Registration("app", ("sqlite3",))
    names = set(registered_templates(found, DBCONFIG, "app"))
    assert "app/db/basepath" in names
    assert not any("/mysql/" in n or "/pgsql/" in n for n in names)


def test_without_dbconfig_commons_templates_nothing_is_invented() -> None:
    assert registered_templates(roundcube(), {}, "roundcube-core") == {}


def test_a_seed_for_registered_questions_checks_like_any_other() -> None:
    templates = registered_templates(roundcube(), DBCONFIG, "roundcube-core")
    good = parse_seed("roundcube-core roundcube/database-type select sqlite3\n"
                      "roundcube-core roundcube/dbconfig-install boolean true\n"
                      "roundcube-core roundcube/db/basepath string /var/lib/dbconfig-common/sqlite3/roundcube\n",
                      "good.seed")
    assert [p for p in check_against_templates(good, templates, {"roundcube-core"}) if p.is_error] == []
    bad = parse_seed("roundcube-core roundcube/database-type select oracle\n", "bad.seed")
    errors = [p for p in check_against_templates(bad, templates, {"roundcube-core"}) if p.is_error]
    assert errors and "oracle" in errors[0].message
