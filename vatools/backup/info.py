"""info.yaml, the description inside every .abf, and the format constants.

Version 2 (written) keeps the keys of version 1 (appliance, sysconf, appdata, timestamp,
version) and adds what a restore needs to decide safely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml  # type: ignore[import]  # no stubs in Debian

from vatools.backup.manifest import (ARCHIVE_OF_KIND, BackupManifest, ManifestError, Root,
                                     check_root_path, root_name)
from vatools.errors import VatoolsError

FORMAT_VERSION = "2"
V1_VERSIONS = ("0.1", "1")
VERSION_MEMBER = "version"
INFO_MEMBER = "info.yaml"
SUMS_MEMBER = "sha256sums"
V1_SUMS_MEMBER = "sha1sums"
TAR_MEMBERS = ("sysconfig.tar.gz", "appdata.tar.gz")
V1_KEY_OF_ARCHIVE = {"sysconfig.tar.gz": "sysconf", "appdata.tar.gz": "appdata"}

# Limits against hostile files (see docs/abf-format.md, "Refused input").
MAX_SMALL_MEMBER = 1 << 20  # version, info.yaml, sums
MAX_ZIP_RATIO = 100  # uncompressed / compressed of a zip member above 1 MiB
MAX_TAR_RATIO = 200  # uncompressed tar / gzip size, once the tar exceeds 64 MiB
RATIO_FLOOR = 64 << 20


class BadBackup(VatoolsError):
    """The file is not a backup we can trust; nothing was changed."""


@dataclass(frozen=True)
class ArchiveSize:
    """Sizes of one tar.gz member, recorded at creation and checked on verify."""

    compressed: int  # bytes of the .tar.gz member
    tar_bytes: int  # bytes of the uncompressed tar stream
    content_bytes: int  # sum of regular file sizes
    entries: int


@dataclass(frozen=True)
class Info:
    format_version: str
    appliance: str
    appliance_version: str  # "" for format 1 (it did not record one)
    roots: tuple[Root, ...]
    hostname: str = ""
    timestamp: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    manifest: dict[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = ()
    sizes: dict[str, ArchiveSize] = field(default_factory=dict)

    def roots_of(self, archive: str) -> tuple[Root, ...]:
        return tuple(r for r in self.roots if r.archive == archive)

    def to_yaml(self) -> str:
        data: dict[str, Any] = {
            "version": self.format_version,
            "appliance": self.appliance,
            "appliance_version": self.appliance_version,
            "hostname": self.hostname,
            "timestamp": self.timestamp,
            "packages": dict(self.packages),
            "manifest": dict(self.manifest),
            "services": list(self.services),
        }
        for archive, key in V1_KEY_OF_ARCHIVE.items():
            roots = self.roots_of(archive)
            data[key] = {"dirs": [r.path for r in roots], "roots": {r.name: r.path for r in roots}}
        data["sizes"] = {a: vars(s) for a, s in self.sizes.items()}
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version, "appliance": self.appliance,
            "appliance_version": self.appliance_version, "hostname": self.hostname,
            "timestamp": self.timestamp, "packages": self.packages, "manifest": self.manifest,
            "services": list(self.services),
            "roots": [{"name": r.name, "path": r.path, "kind": r.kind, "archive": r.archive}
                      for r in self.roots],
            "sizes": {a: vars(s) for a, s in self.sizes.items()},
        }


def info_for(manifest: BackupManifest, hostname: str, timestamp: str,
             packages: dict[str, str], sizes: dict[str, ArchiveSize]) -> Info:
    return Info(FORMAT_VERSION, manifest.appliance, manifest.version, manifest.roots, hostname,
                timestamp, packages, manifest.control_fields(), manifest.services, sizes)


class _InfoLoader(yaml.SafeLoader):  # type: ignore[misc]  # no stubs
    """YAML as info.yaml uses it, from a file nobody vouches for: no aliases or anchors (an
    alias bomb of a few hundred bytes expands to gigabytes), no explicit tags, mappings and
    lists at most MAX_DEPTH deep, timestamps kept as the strings written."""

    MAX_DEPTH = 16

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        problem = None
        if isinstance(event, yaml.AliasEvent):
            problem = "aliases are not allowed"
        elif getattr(event, "anchor", None) is not None:
            problem = "anchors are not allowed"
        elif getattr(event, "tag", None) not in (None, "!"):
            problem = f"tags are not allowed ({event.tag})"
        elif self.depth >= self.MAX_DEPTH:
            problem = f"lists and mappings are nested deeper than {self.MAX_DEPTH}"
        if problem:
            raise yaml.composer.ComposerError(None, None, problem, event.start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_InfoLoader.add_constructor("tag:yaml.org,2002:timestamp",  # type: ignore[type-var]
                           _InfoLoader.construct_yaml_str)


def _need(data: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise BadBackup(f"{where}: key {key!r} is missing or not a {kind.__name__}")
    return value


def parse_info(text: bytes, format_version: str, where: str = INFO_MEMBER) -> Info:
    """Parse and check info.yaml of either format version."""
    try:
        data = yaml.load(text.decode("utf-8"), Loader=_InfoLoader)  # noqa: S506 - a safe loader
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise BadBackup(f"{where} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise BadBackup(f"{where} is not a mapping")
    version = str(data.get("version", ""))
    if (format_version == FORMAT_VERSION) != (version == FORMAT_VERSION):
        raise BadBackup(f"{where} says format version {version!r} but the version member says "
                        f"{format_version!r}")
    appliance = _need(data, "appliance", str, where)
    roots: list[Root] = []
    for archive, key in V1_KEY_OF_ARCHIVE.items():
        section = _need(data, key, dict, where)
        kind = "config" if key == "sysconf" else "data"
        if format_version == FORMAT_VERSION:
            pairs = list(_need(section, "roots", dict, f"{where} {key}").items())
        else:  # version 1 listed absolute dirs only; their names are derived as in version 2
            pairs = [(root_name(str(p)), p) for p in _need(section, "dirs", list, f"{where} {key}")]
        for name, path in pairs:
            if not isinstance(path, str) or not isinstance(name, str):
                raise BadBackup(f"{where} {key}: root {name!r}: {path!r} is not a path")
            try:
                check_root_path(path, where)
            except ManifestError as e:
                raise BadBackup(e.message) from e
            if name != root_name(path):
                raise BadBackup(f"{where} {key}: root name {name!r} does not match path {path!r}")
            roots.append(Root(name, path, kind))  # type: ignore[arg-type]
        assert ARCHIVE_OF_KIND[kind] == archive  # type: ignore[index]
    for i, a in enumerate(roots):
        for b in roots[i + 1:]:
            if a.name == b.name or b.path.startswith(a.path + "/") or a.path.startswith(b.path + "/"):
                raise BadBackup(f"{where}: roots {a.path} and {b.path} are duplicates or overlap")
    if not roots:
        raise BadBackup(f"{where} lists no directories")
    if format_version != FORMAT_VERSION:
        return Info(format_version, appliance, "", tuple(roots),
                    timestamp=str(data.get("timestamp", "")))
    sizes = {}
    for archive, raw in _need(data, "sizes", dict, where).items():
        try:
            sizes[archive] = ArchiveSize(**{k: int(raw[k]) for k in
                                            ("compressed", "tar_bytes", "content_bytes", "entries")})
        except (TypeError, KeyError, ValueError) as e:
            raise BadBackup(f"{where}: sizes of {archive!r} are malformed") from e
    if set(sizes) != set(TAR_MEMBERS):
        raise BadBackup(f"{where}: sizes must list exactly {', '.join(TAR_MEMBERS)}")
    return Info(
        FORMAT_VERSION, appliance, str(_need(data, "appliance_version", str, where)), tuple(roots),
        str(data.get("hostname", "")), str(data.get("timestamp", "")),
        {str(k): str(v) for k, v in (data.get("packages") or {}).items()},
        {str(k): str(v) for k, v in (data.get("manifest") or {}).items()},
        tuple(str(s) for s in (data.get("services") or [])), sizes)
