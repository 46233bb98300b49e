"""Questions that dbconfig-common registers for a package while it configures.

Debian's web applications with a database hand their database set-up to dbconfig-common.
The application's config script sources /usr/share/dbconfig-common/dpkg/config (or
config.mysql, config.pgsql, config.sqlite3, which fix the database type) and calls
`dbc_go NAME "$@"`; dbconfig-common then registers its own templates under NAME's prefix
(`db_register dbconfig-common/db/dbname NAME/db/dbname`).  Those questions are in no templates
file of the application, so they are found here the way dbconfig-common finds them: the NAME
given to dbc_go, the database types the script names, and dbconfig-common's template lists for
each type (dpkg/common, dbconfig-common 2.0.24 in bookworm and 2.0.25 in trixie).

>>> script = '''. /usr/share/debconf/confmodule
... dbc_dbtypes="mysql, sqlite3"
... . /usr/share/dbconfig-common/dpkg/config
... dbc_go roundcube "$@"'''
>>> found = registration(script)
>>> found
Registration(prefix='roundcube', dbtypes=('mysql', 'sqlite3'))
>>> "roundcube/db/basepath" in found.questions() and "roundcube/pgsql/method" not in found.questions()
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:  # templates imports this module
    from vatools.seed.templates import Template

OWNER = "dbconfig-common"  # the package whose templates are registered

# dbconfig-common's dpkg/common: the templates registered for every type, then per type.
STANDARD = (
    "database-type dbconfig-install dbconfig-upgrade dbconfig-remove dbconfig-reinstall "
    "password-confirm app-password-confirm purge upgrade-backup passwords-do-not-match "
    "install-error upgrade-error remove-error internal/reconfiguring internal/skip-preseed "
    "missing-db-package-error"
).split()
PER_TYPE = {
    "mysql": ("mysql/authplugin mysql/method remote/host remote/newhost mysql/app-pass "
              "mysql/admin-user mysql/admin-pass remote/port db/dbname db/app-user").split(),
    "pgsql": ("pgsql/method remote/host remote/newhost pgsql/app-pass pgsql/admin-user "
              "pgsql/admin-pass remote/port pgsql/authmethod-admin pgsql/authmethod-user "
              "pgsql/changeconf pgsql/manualconf db/dbname db/app-user "
              "pgsql/no-empty-passwords").split(),
    "sqlite3": "db/dbname db/basepath".split(),
    "sqlite": "db/dbname db/basepath".split(),
}

_SOURCED = re.compile(
    r"^\s*\.\s+/usr/share/dbconfig-common/dpkg/(?:frontend\.)?config(?:\.(\w+))?\s*$", re.M)
_HARDCODED = re.compile(r"^\s*dbc_hardcoded_dbtype=[\"']?(\w+)", re.M)
_DBTYPES = re.compile(r"^\s*dbc_dbtypes=[\"']([^\"']*)[\"']", re.M)
_DBC_GO = re.compile(r"^\s*dbc_go\s+[\"']?([$\w.+-]+)[\"']?", re.M)
_ASSIGNMENT = r"^\s*{name}=[\"']?([\w.+-]+)[\"']?\s*$"


@dataclass(frozen=True)
class Registration:
    """What a config script hands to dbconfig-common: the question prefix and the types."""

    prefix: str
    dbtypes: tuple[str, ...]

    def questions(self) -> dict[str, str]:
        """Registered question -> the dbconfig-common template it copies."""
        names = list(STANDARD)
        for dbtype in self.dbtypes:
            names += PER_TYPE.get(dbtype, [])
        return {f"{self.prefix}/{name}": f"{OWNER}/{name}" for name in dict.fromkeys(names)}


def registration(config_script: str) -> Registration | None:
    """The dbconfig-common registration a package's config script makes, or None.

    >>> registration('. /usr/share/dbconfig-common/dpkg/config.pgsql\\ndbc_go gforge "$@"')
    Registration(prefix='gforge', dbtypes=('pgsql',))
    >>> registration('PKG=mantis\\n. /usr/share/dbconfig-common/dpkg/config\\n'
    ...              'dbc_dbtypes="mysql"\\ndbc_go $PKG "$@"')
    Registration(prefix='mantis', dbtypes=('mysql',))
    >>> registration("db_input high foo/bar") is None
    True
    """
    sourced = _SOURCED.findall(config_script)
    call = _DBC_GO.search(config_script)
    if not sourced or call is None:
        return None
    prefix = _resolve(call.group(1), config_script)
    if prefix is None:
        return None
    fixed = [t for t in sourced if t] + _HARDCODED.findall(config_script)
    if fixed:
        dbtypes = tuple(dict.fromkeys(fixed))
    else:
        listed = _DBTYPES.search(config_script)
        names = listed.group(1).replace(",", " ").split() if listed else []
        # No list: dbconfig-common registers the templates of every type it knows.
        dbtypes = tuple(names) if names else ("mysql", "pgsql", "sqlite3")
    return Registration(prefix, dbtypes)


def _resolve(word: str, script: str) -> str | None:
    """A literal package name, or a shell variable assigned a literal once in the script."""
    if not word.startswith("$"):
        return word
    name = word.lstrip("$").strip("{}")
    found = re.findall(_ASSIGNMENT.format(name=re.escape(name)), script, re.M)
    return found[0] if len(set(found)) == 1 else None


def registered_templates(found: Registration, dbconfig: Mapping[str, Template],
                         owner: str) -> dict[str, Template]:
    """The questions `owner`'s config script registers, typed by dbconfig-common's templates.

    `dbconfig` holds dbconfig-common's own templates (from its .deb or a debconf database);
    questions whose template it lacks are left out. The choices of database-type, computed at
    run time from the types the script names, are filled in here.
    """
    templates: dict[str, Template] = {}
    for question, source in found.questions().items():
        template = dbconfig.get(source)
        if template is None:
            continue
        choices = found.dbtypes if question.endswith("/database-type") else template.choices
        templates[question] = replace(template, name=question, owner=owner, choices=choices)
    return templates
