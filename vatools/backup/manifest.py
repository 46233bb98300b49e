"""What an appliance declares for backups, read from its own package control fields.

The declaration is the appliance package's binary control paragraph (debian/control `XB-`
fields, kept by dpkg in /var/lib/dpkg/status), so there is no second source of truth:

    Vatools-Services: apache2
    Vatools-Backup-Config: /etc/dokuwiki
    Vatools-Backup-Data: /var/lib/dokuwiki/data /var/lib/dokuwiki/acl

Hooks and migrations are executables the package ships under
/usr/share/vatools/appliances/NAME/ (backup-pre, backup-post, restore-post, migrate/FROM).

>>> m = BackupManifest.from_control(
...     {"Vatools-Backup-Config": "/etc/wiki", "Vatools-Backup-Data": "/var/lib/wiki",
...      "Vatools-Services": "apache2"}, "wiki-appliance", "1.0")
>>> [r.name for r in m.roots]
['etc-wiki', 'var-lib-wiki']
>>> m.services
('apache2',)
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vatools import dpkgstatus
from vatools.errors import VatoolsError
from vatools.run import Target

CONFIG_FIELD = "Vatools-Backup-Config"
DATA_FIELD = "Vatools-Backup-Data"
SERVICES_FIELD = "Vatools-Services"
HOOKS_DIR = "/usr/share/vatools/appliances"
HOOK_NAMES = ("backup-pre", "backup-post", "restore-post")

Kind = Literal["config", "data"]
# The archive member each kind of root is stored in (names kept from format version 1).
ARCHIVE_OF_KIND: dict[Kind, str] = {"config": "sysconfig.tar.gz", "data": "appdata.tar.gz"}

_UNIT = re.compile(r"^[A-Za-z0-9@._:\\-]+$")


class ManifestError(VatoolsError):
    """The appliance's backup declaration is unusable."""


@dataclass(frozen=True)
class Root:
    """One declared path, stored in the archive under a name instead of its absolute path."""

    name: str  # e.g. "etc-dokuwiki": the first component of its tar members
    path: str  # absolute path in the target system, e.g. "/etc/dokuwiki"
    kind: Kind

    @property
    def archive(self) -> str:
        return ARCHIVE_OF_KIND[self.kind]


def root_name(path: str) -> str:
    """The name a root is stored under: its path without slashes ("/etc/moin" -> "etc-moin")."""
    return path.strip("/").replace("/", "-")


def check_root_path(path: str, origin: str) -> None:
    """Refuse paths that would be unsafe or ambiguous to swap as a whole."""
    problem = None
    if not path.startswith("/"):
        problem = "is not an absolute path"
    elif posixpath.normpath(path) != path or path.startswith("//"):
        problem = "is not in normal form (no '.', '..', '//' or trailing '/')"
    elif path.count("/") < 2:
        problem = "is a top-level directory; declare the appliance's own directory below it"
    elif any(c.isspace() or not c.isprintable() for c in path):
        problem = "contains blanks or control characters"
    if problem:
        raise ManifestError(f"{origin}: backup path {path!r} {problem}",
                            hint="fix the appliance's debian/control and rebuild it")


@dataclass(frozen=True)
class BackupManifest:
    """What to back up for one appliance version, and which services to stop meanwhile."""

    appliance: str
    version: str
    roots: tuple[Root, ...]
    services: tuple[str, ...]

    @classmethod
    def from_control(cls, fields: Mapping[str, str], name: str, version: str) -> BackupManifest:
        origin = f"{name} {version}"
        roots: list[Root] = []
        for kind, field in (("config", CONFIG_FIELD), ("data", DATA_FIELD)):
            for path in fields.get(field, "").split():
                check_root_path(path, f"{origin} field {field}")
                roots.append(Root(root_name(path), path, kind))  # type: ignore[arg-type]
        if not roots:
            raise ManifestError(
                f"{origin} declares nothing to back up (no {CONFIG_FIELD} or {DATA_FIELD} field)",
                hint="add the fields to the appliance's debian/control (XB-...) and rebuild it")
        for i, a in enumerate(roots):
            for b in roots[i + 1:]:
                if a.name == b.name:
                    raise ManifestError(f"{origin}: backup paths {a.path} and {b.path} are the same "
                                        "or map to the same stored name")
                if b.path.startswith(a.path + "/") or a.path.startswith(b.path + "/"):
                    raise ManifestError(f"{origin}: backup paths {a.path} and {b.path} overlap",
                                        hint="declare each directory once")
        services = tuple(fields.get(SERVICES_FIELD, "").split())
        for unit in services:
            if not _UNIT.match(unit):
                raise ManifestError(f"{origin} field {SERVICES_FIELD}: {unit!r} is not a unit name")
        return cls(name, version, tuple(roots), services)

    def control_fields(self) -> dict[str, str]:
        """The declaration as control fields again (recorded in info.yaml)."""
        def paths(kind: str) -> str:
            return " ".join(r.path for r in self.roots if r.kind == kind)
        return {CONFIG_FIELD: paths("config"), DATA_FIELD: paths("data"),
                SERVICES_FIELD: " ".join(self.services)}

    @property
    def hooks_dir(self) -> str:
        return f"{HOOKS_DIR}/{self.appliance}"


@dataclass(frozen=True)
class InstalledAppliance:
    """The appliance installed in a target, as dpkg records it."""

    name: str
    version: str
    fields: Mapping[str, str]
    dependencies: tuple[str, ...]  # package names of its Depends, for the record

    def manifest(self) -> BackupManifest:
        return BackupManifest.from_control(self.fields, self.name, self.version)


def root_location(target: Target, path: str) -> Path:
    """Where a root lies as seen from here, refusing a symlink among its parents.

    In a tree, an absolute symlink such as /var/run -> /run would otherwise lead to the
    host's directory; on any system, a symlinked parent would make the swap act elsewhere.
    """
    here = target.root
    parts = path.strip("/").split("/")
    for part in parts[:-1]:
        here = here / part
        if here.is_symlink():
            raise ManifestError(f"{path}: {'/' + str(here.relative_to(target.root))} is a "
                                f"symlink in {target}",
                                hint="declare the real path in the appliance's control fields")
    return here / parts[-1]


def _depends_names(depends: str) -> tuple[str, ...]:
    names = []
    for group in depends.split(","):
        first = group.split("|")[0].split("(")[0].split(":")[0].strip()
        if first:
            names.append(first)
    return tuple(names)


def installed_appliance(target: Target) -> InstalledAppliance:
    """Read dpkg's status of the target and return its one installed appliance."""
    status = target.path(dpkgstatus.STATUS_FILE)
    if not status.is_file():
        raise VatoolsError(f"cannot read dpkg status of {target}: {status} is missing",
                           hint="is --root a Debian tree?")
    found = [InstalledAppliance(pkg.name, pkg.version, pkg.fields,
                                _depends_names(pkg.fields.get("Depends", "")))
             for pkg in dpkgstatus.read_status(target)
             if pkg.installed and pkg.provides("virtual-appliance")]
    if not found:
        raise VatoolsError(f"no appliance is installed on {target}",
                           hint="install one first: vainstall NAME (valist shows them)")
    if len(found) > 1:  # dpkg's Conflicts prevents this; a hand-edited status does not
        raise VatoolsError(f"several appliances are installed on {target}: "
                           + ", ".join(a.name for a in found))
    return found[0]


def installed_versions(target: Target, names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of some packages, from the target's dpkg status (for info.yaml)."""
    wanted = set(names)
    return dict(sorted((pkg.name, pkg.version) for pkg in dpkgstatus.read_status(target)
                       if pkg.name in wanted and pkg.installed))
