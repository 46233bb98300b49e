"""An OCI image given as a layout directory or an archive of one, checked before it is loaded.

Checked here: index.json names one manifest (or one per ref.name; the first is taken), the
manifest blob's sha256 is its digest, the config blob's too, and every layer blob exists with
its declared size. After `podman pull`, the driver compares podman's digest with this one.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vatools.errors import VatoolsError

REF_NAME = "org.opencontainers.image.ref.name"
TITLE = "org.opencontainers.image.title"
VERSION = "org.opencontainers.image.version"


@dataclass(frozen=True)
class OciImage:
    path: Path
    digest: str  # the manifest's, "sha256:..."
    ref_name: str | None
    title: str
    version: str
    volumes: tuple[str, ...]
    exposed: tuple[str, ...]

    @property
    def reference(self) -> str:
        """What podman pulls: oci:DIR[:REF] or oci-archive:FILE[:REF]."""
        transport = "oci" if self.path.is_dir() else "oci-archive"
        return f"{transport}:{self.path}" + (f":{self.ref_name}" if self.ref_name else "")


class _Layout:
    """Blobs of a layout directory or of an (uncompressed) tar archive of one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tar: tarfile.TarFile | None = None
        if path.is_file():
            try:
                self.tar = tarfile.open(path, "r:")
            except (tarfile.TarError, OSError) as error:
                raise VatoolsError(f"image {path}: not an OCI archive (an uncompressed tar): {error}",
                                   hint="give the OCI layout directory (NAME.oci/) or a tar of it") from None
            self.members = {m.name.removeprefix("./"): m for m in self.tar.getmembers()}
        elif not path.is_dir():
            raise VatoolsError(f"image {path}: no such directory or file",
                               hint="give the OCI layout that `vatools image build --format oci` wrote")

    def read(self, name: str) -> bytes:
        if self.tar is not None:
            member = self.members.get(name)
            handle = self.tar.extractfile(member) if member else None
            if handle is None:
                raise FileNotFoundError(name)
            return handle.read()
        return (self.path / name).read_bytes()

    def size(self, name: str) -> int:
        if self.tar is not None:
            if name not in self.members:
                raise FileNotFoundError(name)
            return self.members[name].size
        return (self.path / name).stat().st_size

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()


def _blob_name(digest: str) -> str:
    algorithm, _, hexa = digest.partition(":")
    return f"blobs/{algorithm}/{hexa}"


def read_image(path: Path) -> OciImage:
    """The image at path, its blobs checked against their digests (a VatoolsError if not)."""
    layout = _Layout(path)
    try:
        return _read(layout, path)
    finally:
        layout.close()


def _read(layout: _Layout, path: Path) -> OciImage:
    def bad(what: str) -> VatoolsError:
        return VatoolsError(f"image {path}: {what}",
                            hint="rebuild it with `vatools image build --format oci`, or copy it again")

    try:
        index = json.loads(layout.read("index.json"))
        manifests = index["manifests"]
        entry: dict[str, Any] = manifests[0]
    except FileNotFoundError:
        raise bad("no index.json: not an OCI image layout") from None
    except (ValueError, KeyError, IndexError, TypeError):
        raise bad("index.json names no manifest") from None
    digest = entry.get("digest", "")
    manifest_data = _checked_blob(layout, digest, bad)
    try:
        manifest = json.loads(manifest_data)
        config_digest = manifest["config"]["digest"]
        layers = manifest["layers"]
    except (ValueError, KeyError, TypeError):
        raise bad(f"manifest {digest} is not an image manifest") from None
    config = json.loads(_checked_blob(layout, config_digest, bad))
    for layer in layers:
        try:
            size = layout.size(_blob_name(layer["digest"]))
        except FileNotFoundError:
            raise bad(f"layer {layer['digest']} is missing") from None
        if size != layer.get("size"):
            raise bad(f"layer {layer['digest']} has {size} bytes, the manifest says {layer.get('size')}")
    image_config = config.get("config") or {}
    labels = image_config.get("Labels") or {}
    return OciImage(
        path=path,
        digest=digest,
        ref_name=(entry.get("annotations") or {}).get(REF_NAME),
        title=labels.get(TITLE, ""),
        version=labels.get(VERSION, ""),
        volumes=tuple(sorted(image_config.get("Volumes") or {})),
        exposed=tuple(sorted(image_config.get("ExposedPorts") or {})),
    )


def _checked_blob(layout: _Layout, digest: str, bad: Any) -> bytes:
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise bad(f"{digest!r} is not a sha256 digest")
    try:
        data = layout.read(_blob_name(digest))
    except FileNotFoundError:
        raise bad(f"blob {digest} is missing") from None
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise bad(f"blob {digest} has the digest {actual}: the layout is damaged")
    return data
