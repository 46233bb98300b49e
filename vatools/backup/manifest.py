"""What an appliance declares for backups, read from its own package control fields.

The declaration is the appliance package's binary control paragraph (debian/control `XB-`
fields, kept by dpkg in /var/lib/dpkg/status), so there is no second source of truth; the
fields are read by vatools.appliance (folded lines included), and checked here for what a
backup needs:

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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vatools import appliance, dpkgstatus
from vatools.appliance import (BACKUP_CONFIG_FIELD as CONFIG_FIELD,
                               BACKUP_DATA_FIELD as DATA_FIELD, SERVICES_FIELD, Appliance,
                               ApplianceError)
from vatools.run import Target

Kind = Literal["config", "data"]
# The archive member each kind of root is stored in (names kept from format version 1).
ARCHIVE_OF_KIND: dict[Kind, str] = {"config": "sysconfig.tar.gz", "data": "appdata.tar.gz"}

# The appliance's backup declaration (or a backup's record of it) is unusable: one error for an
# unusable declaration, whichever part of vatools reads it.
ManifestError = ApplianceError


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
        return cls.of(Appliance.from_fields(fields, name=name, version=version))

    @classmethod
    def of(cls, declared: Appliance) -> BackupManifest:
        """The backup manifest of an appliance's declaration, checked for what a backup needs."""
        name, version = declared.name, declared.version
        origin = f"{name} {version}"
        roots: list[Root] = []
        for kind, field, paths in (("config", CONFIG_FIELD, declared.backup_config),
                                   ("data", DATA_FIELD, declared.backup_data)):
            for path in paths:
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
        return cls(name, version, tuple(roots), declared.services)

    def control_fields(self) -> dict[str, str]:
        """The declaration as control fields again (recorded in info.yaml)."""
        def paths(kind: str) -> str:
            return " ".join(r.path for r in self.roots if r.kind == kind)
        return {CONFIG_FIELD: paths("config"), DATA_FIELD: paths("data"),
                SERVICES_FIELD: " ".join(self.services)}

    @property
    def hooks_dir(self) -> str:
        return appliance.hooks_dir(self.appliance)


@dataclass(frozen=True)
class InstalledAppliance:
    """The appliance installed in a target, as dpkg records it."""

    name: str
    version: str
    fields: Mapping[str, str]
    dependencies: tuple[str, ...]  # package names of its Depends, for the record

    def manifest(self) -> BackupManifest:
        return BackupManifest.from_control(self.fields, self.name, self.version)

    @classmethod
    def of(cls, declared: Appliance) -> InstalledAppliance:
        return cls(declared.name, declared.version, declared.fields, declared.packages)


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


def installed_appliance(target: Target) -> InstalledAppliance:
    """The target's one installed appliance (vatools.appliance.installed), for a backup."""
    return InstalledAppliance.of(appliance.installed(target))


def installed_versions(target: Target, names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of some packages, from the target's dpkg status (for info.yaml)."""
    wanted = set(names)
    return dict(sorted((pkg.name, pkg.version) for pkg in dpkgstatus.read_status(target)
                       if pkg.name in wanted and pkg.installed))
