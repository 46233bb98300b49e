"""What an appliance is: docs/appliance-format.md as names, types and the functions that read it.

Every other part of vatools asks this module; none spells a field or a path of its own.

An appliance is a Debian binary package that provides (and conflicts with) the virtual package
`virtual-appliance`, so that dpkg allows one per system. What else it is, it declares in its
own control fields, written `XB-Vatools-...` in debian/control; dpkg's status, the .deb and the
repository's Packages index call them `Vatools-...`:

    Vatools-Seed-Sha256     the SHA-256 of its seed (covered by the signed index)
    Vatools-Services        the systemd services it runs, stopped during backups
    Vatools-Backup-Config   absolute paths of its configuration, for backups
    Vatools-Backup-Data     absolute paths of its data, for backups
    Vatools-Check-Services  systemd services that must be active
    Vatools-Check-Http      HTTP probes of loopback URLs, one per line: URL STATUS [TEXT...]
    Vatools-Check-Programs  absolute paths of check programs (exit 0: healthy)
    Vatools-Check-Deadline  seconds an HTTP probe may retry before it fails (default 60)

Values are separated by whitespace and may be folded over several lines; Vatools-Check-Http
alone is read line by line (one probe per line).

>>> fields = {"Package": "wiki-appliance", "Version": "1.0-1",
...           "Provides": "virtual-appliance", "Depends": "wikiengine (>= 2), apache2",
...           "Description": "A wiki\\n with a long description",
...           "Vatools-Services": "apache2\\n postfix", "Vatools-Backup-Data": "/var/lib/wiki"}
>>> is_appliance(fields)
True
>>> wiki = Appliance.from_fields(fields)
>>> wiki.name, wiki.version, wiki.description, wiki.packages
('wiki-appliance', '1.0-1', 'A wiki', ('wikiengine', 'apache2'))
>>> wiki.services, wiki.backup_config, wiki.backup_data
(('apache2', 'postfix'), (), ('/var/lib/wiki',))

Where its seed is: inside the package, and beside the .deb in a repository.

>>> seed_in_package("wiki-appliance")
'/usr/share/vatools/seeds/wiki-appliance.seed'
>>> seed_beside("pool/wiki-appliance_1.0-1_all.deb")
'pool/wiki-appliance_1.0-1_all.seed'

Import-light on purpose: `valist --installed` imports it on its fast path, so nothing here
imports apt or python-debian at module level (the .deb reader imports it when called).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vatools import dpkgstatus
from vatools.controlfile import first_names, relation_names
from vatools.errors import VatoolsError
from vatools.target import Target

# --- the package -------------------------------------------------------------------------------

VIRTUAL_PACKAGE = "virtual-appliance"  # Provides: and Conflicts: of every appliance

# --- its control fields (debian/control spells them with the XB- prefix) -------------------------

SEED_SHA256_FIELD = "Vatools-Seed-Sha256"
SERVICES_FIELD = "Vatools-Services"
BACKUP_CONFIG_FIELD = "Vatools-Backup-Config"
BACKUP_DATA_FIELD = "Vatools-Backup-Data"
CHECK_SERVICES_FIELD = "Vatools-Check-Services"
CHECK_HTTP_FIELD = "Vatools-Check-Http"
CHECK_PROGRAMS_FIELD = "Vatools-Check-Programs"
CHECK_DEADLINE_FIELD = "Vatools-Check-Deadline"
FIELDS = (SEED_SHA256_FIELD, SERVICES_FIELD, BACKUP_CONFIG_FIELD, BACKUP_DATA_FIELD,
          CHECK_SERVICES_FIELD, CHECK_HTTP_FIELD, CHECK_PROGRAMS_FIELD, CHECK_DEADLINE_FIELD)
SOURCE_FIELD_PREFIX = "XB-"  # in debian/control: copied into the .deb and the Packages index

# --- the seed ----------------------------------------------------------------------------------

SEEDS_DIR = "/usr/share/vatools/seeds"  # inside the package: SEEDS_DIR/NAME.seed

# --- what the package ships for vatools, and what vatools keeps about it -------------------------

# HOOKS_DIR/NAME/: executables the package ships (HOOK_NAMES, migrate/FROM_VERSION, control-stats)
HOOKS_DIR = "/usr/share/vatools/appliances"
HOOK_NAMES = ("backup-pre", "backup-post", "restore-post")
INSTALL_RECORDS_DIR = "/var/lib/vatools/installed"  # INSTALL_RECORDS_DIR/NAME.json, by vainstall
# The entry point group of appliance-control plugins (docs/control-plugins.md); a plugin is a
# package of its own that the appliance depends on, not a control field.
PLUGIN_ENTRY_POINTS = "vatools.control.plugins"

# Compiled on first use (re caches them), not at import: valist --installed never needs them.
_UNIT = r"[A-Za-z0-9@._:\\-]+"
_SHA256 = r"[0-9a-f]{64}"


class ApplianceError(VatoolsError):
    """An appliance's declaration (its control fields, or a backup's record of them) is unusable."""


def seed_in_package(name: str) -> str:
    """The absolute path of the seed inside the package NAME."""
    return f"{SEEDS_DIR}/{name}.seed"


def seed_beside(deb: str) -> str:
    """The seed published beside a .deb in a repository (a file name, path or URI).

    >>> seed_beside("http://127.0.0.1/bookworm/./wiki_1.0_all.deb")
    'http://127.0.0.1/bookworm/./wiki_1.0_all.seed'
    >>> seed_beside("wiki_1.0_all.udeb")
    Traceback (most recent call last):
    ...
    vatools.errors.VatoolsError: wiki_1.0_all.udeb is not a .deb file name
    """
    if not deb.endswith(".deb"):
        raise VatoolsError(f"{deb} is not a .deb file name",
                           hint="publish only binary packages ending in .deb")
    return deb[: -len(".deb")] + ".seed"


def hooks_dir(name: str) -> str:
    return f"{HOOKS_DIR}/{name}"


def install_record_path(name: str) -> str:
    """Where vainstall records how it installed NAME (the seed's source, where, sha256)."""
    return f"{INSTALL_RECORDS_DIR}/{name}.json"


def is_appliance(fields: Mapping[str, str]) -> bool:
    """Whether a control paragraph (status, index, .deb) is an appliance's: it provides
    virtual-appliance (by name; a versioned Provides counts, a longer name does not).

    >>> is_appliance({"Provides": "virtual-appliance-helper"})
    False
    >>> is_appliance({"Provides": "foo,\\n virtual-appliance (= 2)"})
    True
    """
    provides = fields.get("Provides", "")
    # The substring test first: valist --installed asks this of every installed package.
    return VIRTUAL_PACKAGE in provides and VIRTUAL_PACKAGE in relation_names(provides)


def is_unit_name(unit: str) -> bool:
    """A systemd unit name (letters, digits and @._:-), nothing a shell or a path would read.

    >>> is_unit_name("apache2.service"), is_unit_name("apache2;reboot")
    (True, False)
    """
    return bool(re.fullmatch(_UNIT, unit))


# --- health checks -----------------------------------------------------------------------------


# Probes go to this machine only: a health check never sends traffic elsewhere.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_CHECK_DEADLINE = 60  # seconds: long enough for a service restarted by an upgrade
MAX_CHECK_DEADLINE = 3600
# ${debconf:QUESTION} in a probe's text: the answer in the target's debconf database. The
# question's "/" keeps dpkg-gencontrol from reading it as a substvar (${[-:0-9a-z]+} only).
_PLACEHOLDER = r"\$\{([^}]*)\}"
_DEBCONF_QUESTION = r"debconf:([A-Za-z0-9][A-Za-z0-9._+-]*/[A-Za-z0-9._+/-]+)"


@dataclass(frozen=True)
class HttpProbe:
    """GET `url` (on this machine) must answer `status`, with `text` in the body when given.

    `text` may name debconf answers, `${debconf:QUESTION}`, filled in from the target's
    debconf database when the probe runs (the wiki answers with its seeded title):

    >>> probe = HttpProbe.parse("http://127.0.0.1/wiki/ 200 <title>${debconf:wiki/title}",
    ...                         "wiki 1.0")
    >>> probe.url, probe.status, probe.questions
    ('http://127.0.0.1/wiki/', 200, ('wiki/title',))
    >>> probe.expected_text({"wiki/title": "Team Wiki"})
    '<title>Team Wiki'
    >>> HttpProbe.parse("http://wiki.example.org/ 200", "wiki 1.0")
    Traceback (most recent call last):
    ...
    vatools.appliance.ApplianceError: wiki 1.0 field Vatools-Check-Http: \
'http://wiki.example.org/ 200': host 'wiki.example.org' is not a loopback address
    """

    url: str
    status: int
    text: str = ""  # as declared, placeholders unexpanded; empty: any body

    @classmethod
    def parse(cls, line: str, origin: str) -> HttpProbe:
        def bad(why: str, hint: str = "write URL STATUS [TEXT...], e.g. "
                                      "http://127.0.0.1/ 200 Welcome") -> ApplianceError:
            return ApplianceError(f"{origin} field {CHECK_HTTP_FIELD}: {line!r}: {why}", hint=hint)

        words = line.split(None, 2)
        if len(words) < 2:
            raise bad("a probe needs a URL and an HTTP status")
        url, status, text = words[0], words[1], (words[2].strip() if len(words) > 2 else "")
        _check_loopback_url(url, bad)
        if not re.fullmatch(r"[1-5][0-9][0-9]", status):
            raise bad(f"{status!r} is not an HTTP status (100 to 599)")
        for placeholder in re.findall(_PLACEHOLDER, text):
            if not re.fullmatch(_DEBCONF_QUESTION, placeholder):
                raise bad(f"${{{placeholder}}} is not ${{debconf:OWNER/QUESTION}}",
                          hint="name a debconf question, e.g. ${debconf:dokuwiki/wiki/title}")
        if "${" in re.sub(_PLACEHOLDER, "", text):
            raise bad("a '${' is not closed by '}'")
        return cls(url, int(status), text)

    @property
    def questions(self) -> tuple[str, ...]:
        """The debconf questions whose answers the text names."""
        return tuple(re.fullmatch(_DEBCONF_QUESTION, p)[1]  # type: ignore[index]
                     for p in re.findall(_PLACEHOLDER, self.text))

    def expected_text(self, answers: Mapping[str, str]) -> str:
        """The text with every `${debconf:QUESTION}` replaced by its answer (KeyError: the
        database has no answer to a question it names)."""
        return re.sub(_PLACEHOLDER, lambda m: answers[m[1].removeprefix("debconf:")], self.text)

    def __str__(self) -> str:
        return " ".join([self.url, str(self.status), *([self.text] if self.text else [])])


def _check_loopback_url(url: str, bad: Callable[..., ApplianceError]) -> None:
    from urllib.parse import urlsplit  # only when probes are declared

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port out of range or not a number)
    except ValueError as error:
        raise bad(f"{url!r} is not a URL: {error}") from None
    if parts.scheme != "http":
        raise bad(f"{url!r} is not an http:// URL",
                  hint="probe the service on this machine over plain HTTP (127.0.0.1)")
    if parts.username is not None or parts.password is not None:
        raise bad("a probe's URL carries no user or password")
    if parts.hostname not in LOOPBACK_HOSTS:
        raise bad(f"host {parts.hostname!r} is not a loopback address",
                  hint="probes go to this machine only: 127.0.0.1, localhost or [::1]")


@dataclass(frozen=True)
class HealthChecks:
    """What the appliance declares to prove it works (vatools.health runs it; `dpkg --audit`
    is always checked besides).

    >>> checks = HealthChecks.from_fields({
    ...     "Vatools-Check-Services": "apache2 postfix",
    ...     "Vatools-Check-Http": "\\n http://127.0.0.1/ 200 Team Wiki\\n http://[::1]:8080/login 200",
    ...     "Vatools-Check-Programs": "/usr/share/vatools/appliances/wiki/check-db",
    ...     "Vatools-Check-Deadline": "30"}, "wiki 1.0")
    >>> checks.services, [str(p) for p in checks.http], checks.programs, checks.deadline
    (('apache2', 'postfix'), ['http://127.0.0.1/ 200 Team Wiki', 'http://[::1]:8080/login 200'], \
('/usr/share/vatools/appliances/wiki/check-db',), 30)
    """

    services: tuple[str, ...] = ()  # systemd units that must be active
    http: tuple[HttpProbe, ...] = ()
    programs: tuple[str, ...] = ()  # absolute paths in the target; exit 0 means healthy
    deadline: int = DEFAULT_CHECK_DEADLINE  # seconds an HTTP probe retries before it fails

    @classmethod
    def from_fields(cls, fields: Mapping[str, str], origin: str) -> HealthChecks:
        """Read the Vatools-Check-* fields (none: no checks of its own). Refuses what cannot
        be run as declared, naming the field and the value."""
        services = tuple(fields.get(CHECK_SERVICES_FIELD, "").split())
        for unit in services:
            if not is_unit_name(unit):
                raise ApplianceError(f"{origin} field {CHECK_SERVICES_FIELD}: {unit!r} is not "
                                     "a unit name",
                                     hint="list systemd units separated by spaces")
        http = tuple(HttpProbe.parse(line.strip(), origin)
                     for line in fields.get(CHECK_HTTP_FIELD, "").splitlines() if line.strip())
        programs = tuple(fields.get(CHECK_PROGRAMS_FIELD, "").split())
        for program in programs:
            if not program.startswith("/") or "/../" in program + "/" or "\\" in program:
                raise ApplianceError(
                    f"{origin} field {CHECK_PROGRAMS_FIELD}: {program!r} is not an absolute path",
                    hint=f"ship the program in the package, e.g. {HOOKS_DIR}/NAME/check")
        deadline_text = fields.get(CHECK_DEADLINE_FIELD, "").strip()
        deadline = DEFAULT_CHECK_DEADLINE
        if deadline_text:
            if not (deadline_text.isascii() and deadline_text.isdigit()
                    and 1 <= int(deadline_text) <= MAX_CHECK_DEADLINE):
                raise ApplianceError(
                    f"{origin} field {CHECK_DEADLINE_FIELD}: {deadline_text!r} is not a number "
                    f"of seconds from 1 to {MAX_CHECK_DEADLINE}",
                    hint=f"the default is {DEFAULT_CHECK_DEADLINE}")
            deadline = int(deadline_text)
        return cls(services, http, programs, deadline)


# --- the declaration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Appliance:
    """One appliance version as its control fields declare it."""

    name: str
    version: str
    description: str  # the synopsis (first line of Description)
    packages: tuple[str, ...]  # what it installs: the first alternative of each Depends
    seed_sha256: str | None  # lower-case hex, or None when the package has no (or an empty) field
    services: tuple[str, ...]
    backup_config: tuple[str, ...]  # absolute paths, as declared (backup checks them further)
    backup_data: tuple[str, ...]
    health: HealthChecks = HealthChecks()
    fields: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_fields(cls, fields: Mapping[str, str], *, name: str | None = None,
                    version: str | None = None) -> Appliance:
        """Read a control paragraph. `name` and `version` stand in for Package and Version
        (a declaration recorded without them, as in a backup). Refuses a service that is not
        a unit name and a seed hash that is not a SHA-256.

        >>> Appliance.from_fields({"Vatools-Services": "apache2, postfix"}, name="x", version="1")
        Traceback (most recent call last):
        ...
        vatools.appliance.ApplianceError: x 1 field Vatools-Services: 'apache2,' is not a unit name
        """
        name = name if name is not None else fields.get("Package", "")
        version = version if version is not None else fields.get("Version", "")
        origin = f"{name} {version}"
        services = tuple(fields.get(SERVICES_FIELD, "").split())
        for unit in services:
            if not is_unit_name(unit):
                raise ApplianceError(
                    f"{origin} field {SERVICES_FIELD}: {unit!r} is not a unit name",
                    hint="list systemd units separated by spaces")
        seed_sha256 = fields.get(SEED_SHA256_FIELD, "").strip().lower() or None  # empty: none
        if seed_sha256 is not None:
            if not re.fullmatch(_SHA256, seed_sha256):
                raise ApplianceError(
                    f"{origin} field {SEED_SHA256_FIELD}: {seed_sha256!r} is not a SHA-256",
                    hint="debian/rules computes it: see docs/appliance-format.md")
        return cls(
            name=name,
            version=version,
            description=fields.get("Description", "").split("\n", 1)[0],
            packages=first_names(fields.get("Depends", "")),
            seed_sha256=seed_sha256,
            services=services,
            backup_config=tuple(fields.get(BACKUP_CONFIG_FIELD, "").split()),
            backup_data=tuple(fields.get(BACKUP_DATA_FIELD, "").split()),
            health=HealthChecks.from_fields(fields, origin),
            fields=fields,
        )

    @property
    def hooks_dir(self) -> str:
        return hooks_dir(self.name)

    @property
    def seed_in_package(self) -> str:
        return seed_in_package(self.name)


# --- installed appliances: dpkg's status, read directly (fast) ----------------------------------


def installed_packages(target: Target) -> list[dpkgstatus.PackageStatus]:
    """The installed packages that are appliances, as dpkg records them (unparsed: `valist
    --installed` lists them without judging their declarations)."""
    return [pkg for pkg in dpkgstatus.read_status(target, is_appliance, mentions=VIRTUAL_PACKAGE)
            if pkg.installed]


def installed(target: Target) -> Appliance:
    """The one appliance installed in the target; refused when there is none or several."""
    status = target.path(dpkgstatus.STATUS_FILE)
    if not status.is_file():
        raise VatoolsError(f"cannot read dpkg status of {target}: {status} is missing",
                           hint="is --root a Debian tree?")
    found = installed_packages(target)
    if not found:
        raise VatoolsError(f"no appliance is installed on {target}",
                           hint="install one first: vainstall NAME (valist shows them)")
    if len(found) > 1:  # dpkg's Conflicts prevents this; a hand-edited status does not
        raise VatoolsError(f"several appliances are installed on {target}: "
                           + ", ".join(pkg.name for pkg in found))
    return Appliance.from_fields(found[0].fields)


@dataclass(frozen=True)
class InstallRecord:
    """What vainstall wrote about an install: where its seed came from."""

    seed_source: str  # "repository", "package" or "file"
    seed_where: str  # the URI or path
    seed_sha256: str


def read_install_record(target: Target, name: str) -> InstallRecord | None:
    """vainstall's record of NAME, or None (not installed by vainstall, or unreadable)."""
    import json  # only here: valist --installed starts without it
    try:
        seed = json.loads(target.path(install_record_path(name)).read_text())["seed"]
        return InstallRecord(str(seed["source"]), str(seed["where"]), str(seed.get("sha256", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --- the seed inside a .deb: one reader, for vainstall and for publishing -----------------------


def read_seed_in_deb(deb: Path, name: str, *, hint: str | None = None) -> bytes:
    """The seed shipped in the .deb of appliance NAME, at seed_in_package(NAME) exactly, as a
    regular file: a seed under another name, a link or a directory is refused, so that the
    seed the repository publishes beside the deb and the one vainstall falls back to are the
    same file, found by the same rule. `hint` replaces the packager's hint for a missing or
    irregular seed (vainstall's user can pass a seed instead).
    """
    import tarfile  # slow imports, only needed here

    from debian.arfile import ArError
    from debian.debfile import DebError, DebFile

    inside = seed_in_package(name)
    try:
        with DebFile(str(deb)) as package:
            members = {m.name.removeprefix("./").lstrip("/"): m
                       for m in package.data.tgz().getmembers()}
            member = members.get(inside.lstrip("/"))
            if member is None:
                raise ApplianceError(f"{deb.name}: {name} ships no seed at {inside}",
                                     hint=hint or f"install the seed as {inside} "
                                                          f"(debian/{name}.install)")
            if not member.isfile():
                raise ApplianceError(f"{deb.name}: {inside} is not a regular file",
                                     hint=hint or "install the seed itself, not a link "
                                                  "or directory")
            handle = package.data.tgz().extractfile(member)
            assert handle is not None  # a regular file's member always has content
            return handle.read()
    except (ArError, DebError, tarfile.TarError, EOFError, OSError) as error:
        raise VatoolsError(f"{deb} is not a readable .deb: {error}",
                           hint="rebuild it with dpkg-buildpackage, or download it again") from None
