"""debconf templates, read from .deb files or from a system's debconf database.

A template says what a question is: its type, default and, for select and multiselect, its
choices.  vatools checks seeds against the templates of the very packages apt will install
(their .debs) and of packages already installed (the target's templates.dat).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Mapping

import apt_pkg
from debian.deb822 import Deb822
from debian.debfile import DebFile, DebError

from vatools.errors import VatoolsError
from vatools.target import Target
from vatools.seed import dbconfig
from vatools.seed.dbconfig import Registration
from vatools.seed.file import split_choices

# Names of a password question's confirmation: dokuwiki/wiki/confirm, root_password_again, ...
_CONFIRM_NAME = re.compile(r"(confirm|again|repeat|verify|2)$")


@dataclass(frozen=True)
class Template:
    name: str
    type: str
    owner: str  # the package that ships the template
    default: str = ""
    choices: tuple[str, ...] | None = None  # None: not a choice type, or computed at run time
    description: str = ""
    priority: str = ""  # the highest priority its config script asks it with, if seen there


def parse_templates(text: str, owner: str) -> dict[str, Template]:
    """Parse a package's templates file (the untranslated fields; Choices-C wins over Choices).

    >>> t = parse_templates("Template: a/b\\nType: select\\nChoices-C: x, y\\nChoices: X, Y\\n"
    ...                     "Default: x\\nDescription: Pick\\n Long text.\\n", "pkg")
    >>> t["a/b"].choices, t["a/b"].description, t["a/b"].owner
    (('x', 'y'), 'Pick', 'pkg')
    """
    found: dict[str, Template] = {}
    for para in Deb822.iter_paragraphs(text.splitlines(keepends=True)):
        name = para.get("Template") or para.get("Name")
        type_ = para.get("Type")
        if not name or not type_:
            continue
        found[name] = Template(
            name=name,
            type=type_.strip(),
            owner=owner,
            default=para.get("Default", ""),
            choices=_choices(type_.strip(), para.get("Choices-C") or para.get("Choices")),
            description=(para.get("Description") or "").split("\n")[0].strip(),
        )
    return found


def _choices(type_: str, field: str | None) -> tuple[str, ...] | None:
    if type_ not in ("select", "multiselect") or field is None or "${" in field:
        return None
    return tuple(split_choices(field.replace("\n", " ").strip()))


def from_deb(path: Path) -> tuple[str, dict[str, Template]]:
    """The package name of a .deb and the templates in its control archive (maybe none),
    with the priority each is asked with, read from the package's config script."""
    package, templates, _ = _read_deb(path)
    return package, templates


def _read_deb(path: Path) -> tuple[str, dict[str, Template], Registration | None]:
    """from_deb, plus the dbconfig-common registration its config script makes."""
    try:
        deb = DebFile(str(path))
        package = deb.debcontrol()["Package"]
        text = (deb.control.get_content("templates", encoding="utf-8") or ""
                if deb.control.has_file("templates") else "")
        config = (
            deb.control.get_content("config", encoding="utf-8", errors="replace") or ""
            if deb.control.has_file("config")
            else ""
        )
    except (DebError, OSError, KeyError, ValueError) as exc:
        raise VatoolsError(f"cannot read {path}: {exc}", hint="is it a .deb file?") from exc
    asked = config_priorities(config)
    templates = {
        name: replace(t, priority=asked.get(name, "")) for name, t in parse_templates(text, package).items()
    }
    return package, templates, dbconfig.registration(config)


_PRIORITIES = ("low", "medium", "high", "critical")
_DB_INPUT = re.compile(r"db_input\s+[\"']?(low|medium|high|critical)[\"']?\s+[\"']?([\w./+-]+)")


def config_priorities(script: str) -> dict[str, str]:
    """Question -> the highest priority a config script asks it with (`db_input high q`).

    >>> config_priorities('db_input high a/b || true\\ndb_input critical a/b\\ndb_input low a/c')
    {'a/b': 'critical', 'a/c': 'low'}
    """
    found: dict[str, str] = {}
    for priority, question in _DB_INPUT.findall(script):
        if _PRIORITIES.index(priority) >= _PRIORITIES.index(found.get(question, "low")):
            found[question] = priority
    return found


def from_debs(paths: Iterable[Path], known: Mapping[str, Template] | None = None
              ) -> tuple[set[str], dict[str, Template]]:
    """The packages and the templates of several .debs, with the questions dbconfig-common
    registers at run time for those of them that use it (vatools.seed.dbconfig); its own
    templates come from the .debs or, when it is installed already, from `known`."""
    packages: set[str] = set()
    templates: dict[str, Template] = {}
    registrations: dict[str, Registration] = {}
    for path in paths:
        package, found, registration = _read_deb(path)
        packages.add(package)
        templates.update(found)
        if registration is not None:
            registrations[package] = registration
    templates.update(registered(registrations, {**(known or {}), **templates}))
    return packages, templates


def registered(registrations: Mapping[str, Registration],
               templates: Mapping[str, Template]) -> dict[str, Template]:
    """The questions each package's dbconfig-common registration adds (owner: the package)."""
    added: dict[str, Template] = {}
    for package, registration in registrations.items():
        added.update(dbconfig.registered_templates(registration, templates, package))
    return added


def from_debconf_db(target: Target) -> tuple[set[str], dict[str, Template]]:
    """Templates registered in a system's debconf database, with the packages owning them."""
    # debconf keeps password questions apart, in the root-only passwords.dat.
    owners = {**_question_owners(target.path("/var/cache/debconf/passwords.dat")),
              **_question_owners(target.path("/var/cache/debconf/config.dat"))}
    path = target.path("/var/cache/debconf/templates.dat")
    if not path.exists():
        return set(), {}
    templates: dict[str, Template] = {}
    for name, template in parse_templates(path.read_text("utf-8", "replace"), "").items():
        owner = owners.get(name, "")
        if owner:
            templates[name] = Template(
                name, template.type, owner, template.default, template.choices,
                template.description,
            )
    return set(owners.values()), templates


def _question_owners(config_dat: Path) -> dict[str, str]:
    """Template name -> first owner, from debconf's config.dat."""
    if not config_dat.exists():
        return {}
    owners: dict[str, str] = {}
    for para in Deb822.iter_paragraphs(config_dat.read_text("utf-8", "replace").splitlines(True)):
        names = (para.get("Owners") or "").replace(",", " ").split()
        if names and para.get("Template"):
            owners[para["Template"]] = names[0]
    return owners


def password_pairs(templates: Mapping[str, Template]) -> dict[str, str]:
    """Password questions that must carry the same answer: confirmation -> primary question.

    A confirmation is a password question of the same package, in the same directory, whose
    name ends like "confirm", "again" or "2".

    >>> t = {n: Template(n, "password", "dokuwiki") for n in
    ...      ("dokuwiki/wiki/password", "dokuwiki/wiki/confirm")}
    >>> password_pairs(t)
    {'dokuwiki/wiki/confirm': 'dokuwiki/wiki/password'}
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for t in templates.values():
        if t.type == "password":
            groups.setdefault((t.owner, t.name.rpartition("/")[0]), []).append(t.name)
    pairs: dict[str, str] = {}
    for names in groups.values():
        confirms = [n for n in names if _CONFIRM_NAME.search(n.rpartition("/")[2])]
        primaries = [n for n in names if n not in confirms]
        for confirm in confirms:
            base = confirm.rpartition("/")[2]
            match = [p for p in primaries if base.startswith(p.rpartition("/")[2])]
            if len(match) == 1:
                pairs[confirm] = match[0]
            elif len(primaries) == 1:
                pairs[confirm] = primaries[0]
    return pairs


def for_packages(target: Target, specs: Iterable[str]) -> tuple[set[str], dict[str, Template]]:
    """Templates of .deb files (paths) and of named packages with all that apt would install
    with them, downloaded into a temporary directory: nothing on the system changes."""
    from vatools import aptq

    debs = [Path(s) for s in specs if s.endswith(".deb")]
    names = [s for s in specs if not s.endswith(".deb")]
    installed = from_debconf_db(target)[1]  # dbconfig-common's templates, if it is installed
    packages, found = from_debs(debs, known=installed)
    if names:
        with tempfile.TemporaryDirectory(prefix="vatools-templates-") as tmp:
            aptq.let_apt_sandbox_write(Path(tmp))
            (Path(tmp) / "partial").mkdir()
            aptq.let_apt_sandbox_write(Path(tmp) / "partial")
            aptq.configure(target)
            apt_pkg.config.set("Dir::Cache::Archives", tmp)
            cache = aptq.open_cache(target)
            for name in names:
                aptq.candidate(cache, name)  # refuses unknown names clearly
            aptq.mark_all(cache, names)
            import apt.progress.base

            archives = aptq.fetch_archives(cache, apt.progress.base.AcquireProgress())
            more_packages, more = from_debs(archives.values(), known={**installed, **found})
            packages |= more_packages
            found.update(more)
    return packages, found
