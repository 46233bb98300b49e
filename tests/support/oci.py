"""OCI image layouts for the container tests, made cheaply with tarfile and json.

`derive` adds one layer (files and their contents) to an existing layout and writes a new
layout beside it: the old blobs are hard links, so an appliance image costs nothing to
derive. `tiny_layout` is a busybox httpd image from the host's own files, for fast tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

MEDIA_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
VERSION = "org.opencontainers.image.version"


def _put_blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (blobs / digest).write_bytes(data)
    return f"sha256:{digest}", len(data)


def _layer(files: dict[str, bytes | str], modes: dict[str, int] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for path in sorted(files):
            parts = path.strip("/").split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in dirs:
                    dirs.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            content = files[path]
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(path.strip("/"))
            info.size, info.mode = len(data), (modes or {}).get(path, 0o644)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _write(layout: Path, config: dict, layers: list[dict], ref: str) -> str:
    config_digest, config_size = _put_blob(layout, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": config_size},
        "layers": layers,
    }
    digest, size = _put_blob(layout, json.dumps(manifest, sort_keys=True).encode())
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size,
        "annotations": {"org.opencontainers.image.ref.name": ref}}]}
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return digest


def derive(base: Path, out: Path, version: str, files: dict[str, bytes | str],
           modes: dict[str, int] | None = None) -> str:
    """A new layout at `out`: base's image plus one layer with `files`, labelled `version`.

    Returns the new manifest digest."""
    index = json.loads((base / "index.json").read_text())
    manifest = json.loads(_blob(base, index["manifests"][0]["digest"]))
    config = json.loads(_blob(base, manifest["config"]["digest"]))
    (out / "blobs" / "sha256").mkdir(parents=True)
    for blob in (base / "blobs" / "sha256").iterdir():
        os.link(blob, out / "blobs" / "sha256" / blob.name)
    layer = _layer(files, modes)
    layer_digest, layer_size = _put_blob(out, layer)
    config["rootfs"]["diff_ids"].append(layer_digest)  # uncompressed: the diff_id is the digest
    config["config"].setdefault("Labels", {})[VERSION] = version
    config.setdefault("history", []).append({"created_by": "tests/support/oci.py derive"})
    layers = [*manifest["layers"], {"mediaType": MEDIA_LAYER_TAR, "digest": layer_digest, "size": layer_size}]
    return _write(out, config, layers, version)


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def _libraries(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        words = line.split()
        path = words[2] if "=>" in words and len(words) > 2 else words[0]
        if path.startswith("/"):
            found.append(path)
    return found


def tiny_layout(out: Path, version: str, page: str) -> str:
    """busybox httpd serving `page` at / on port 80, with /data a volume; returns the digest."""
    busybox = shutil.which("busybox") or "/usr/bin/busybox"
    files: dict[str, bytes | str] = {"bin/busybox": Path(busybox).read_bytes()}
    modes = {"bin/busybox": 0o755}
    for library in _libraries(busybox):
        files[library.lstrip("/")] = Path(os.path.realpath(library)).read_bytes()
        modes[library.lstrip("/")] = 0o755
    files["www/index.html"] = page
    files["entrypoint"] = ("#!/bin/busybox sh\n/bin/busybox mkdir -p /data\n"
                           "exec /bin/busybox httpd -f -p 80 -h /www\n")
    modes["entrypoint"] = 0o755
    out.mkdir(parents=True)
    layer = _layer(files, modes)
    layer_digest, layer_size = _put_blob(out, layer)
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/entrypoint"], "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}},
                   "Labels": {"org.opencontainers.image.title": "tiny", VERSION: version}},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }
    return _write(out, config, [{"mediaType": MEDIA_LAYER_TAR, "digest": layer_digest, "size": layer_size}],
                  version)
