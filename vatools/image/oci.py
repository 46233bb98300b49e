"""An OCI image layout of the tree: one zstd layer, a config for a read-only container.

Container conventions followed: the root filesystem can be mounted read-only; everything
the appliance writes lives in the declared volumes (its data and config directories, its
logs and caches, /var/lib); /run and /tmp are expected as tmpfs. /etc/resolv.conf and
/etc/hosts are links into /state, a volume of its own: the runtime's copies land there
(podman and docker bind-mount theirs onto those paths, which resolve into the volume), and
they can be updated without touching the read-only root; /etc/hostname is the runtime's.
The entrypoint starts the appliance's services (its Vatools-Services field) without systemd
and stops them on SIGTERM. The kernel, initrd and modules are left out of the layer.

>>> manifest_name("dokuwiki-appliance", "1.0")
'dokuwiki-appliance:1.0'
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from datetime import datetime, timezone
from pathlib import Path

from vatools.image.manifest import sha256_file
from vatools.image.tarball import write_tar
from vatools.run import run

ENTRYPOINT = "/usr/lib/vatools/container-entrypoint"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"
# Not in the container: booting is the host's business; the runtime brings its own files.
LEFT_OUT = ("boot", "usr/lib/modules", "lib/modules", "vmlinuz", "vmlinuz.old", "initrd.img", "initrd.img.old")
RUNTIME_FILES = ("etc/resolv.conf", "etc/hosts", "etc/hostname")
STATE_DIR = "/state"
STATE_LINKS = {"etc/hosts": f"{STATE_DIR}/hosts", "etc/resolv.conf": f"{STATE_DIR}/resolv.conf"}

ENTRYPOINT_SCRIPT = """#!/bin/sh
# vatools container entrypoint: start the appliance's services without systemd, wait,
# stop them on SIGTERM/SIGINT. The root may be read-only: /run and /tmp are tmpfs.
services="{services}"
mkdir -p /run/lock /var/log
# A runtime that brings no hosts file (a bare runc bundle) still gets localhost.
[ -s {state}/hosts ] || printf '127.0.0.1 localhost\n::1 localhost\n' > {state}/hosts
stop() {{
    for s in $services; do [ -x "/etc/init.d/$s" ] && "/etc/init.d/$s" stop; done
    exit 0
}}
trap stop TERM INT
for s in $services; do
    if [ -x "/etc/init.d/$s" ]; then
        "/etc/init.d/$s" start || exit 1
    else
        echo "container-entrypoint: no /etc/init.d/$s to start" >&2
        exit 1
    fi
done
while :; do sleep 3600 & wait $!; done
"""


def manifest_name(name: str, version: str) -> str:
    return f"{name}:{version}"


def write_entrypoint(tree: Path, services: list[str]) -> None:
    path = tree / ENTRYPOINT.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ENTRYPOINT_SCRIPT.format(services=" ".join(services), state=STATE_DIR))
    path.chmod(0o755)


def _excluded(rel: str) -> bool:
    return rel in LEFT_OUT or rel in RUNTIME_FILES


def state_entries(source_date_epoch: int) -> list[tarfile.TarInfo]:
    """The /state directory and the links into it, as layer entries."""
    state = tarfile.TarInfo("." + STATE_DIR)
    state.type, state.mode, state.mtime = tarfile.DIRTYPE, 0o755, source_date_epoch
    entries = [state]
    for rel, target in sorted(STATE_LINKS.items()):
        link = tarfile.TarInfo("./" + rel)
        link.type, link.linkname, link.mode = tarfile.SYMTYPE, target, 0o777
        link.mtime = source_date_epoch
        entries.append(link)
    return entries


def _blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs/sha256" / digest).write_bytes(data)
    return f"sha256:{digest}", len(data)


def write_layout(
    tree: Path,
    layout: Path,
    *,
    name: str,
    version: str,
    volumes: list[str],
    ports: list[str],
    source_date_epoch: int,
) -> None:
    """The OCI image layout in `layout` (a new directory), tagged with the appliance's version."""
    blobs = layout / "blobs/sha256"
    blobs.mkdir(parents=True)
    layer_tar = layout / "layer.tar"
    with open(layer_tar, "wb") as handle:
        write_tar(tree, handle, source_date_epoch, exclude=_excluded,
                  extra=state_entries(source_date_epoch))
    diff_id = "sha256:" + sha256_file(layer_tar)
    run(["zstd", "-q", "-T1", "-3", "--rm", str(layer_tar)])
    compressed = layout / "layer.tar.zst"
    layer_digest = sha256_file(compressed)
    layer_size = compressed.stat().st_size
    compressed.rename(blobs / layer_digest)
    created = datetime.fromtimestamp(source_date_epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = {
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": [ENTRYPOINT],
            "Env": [f"PATH={PATH}", "LANG=C.UTF-8"],
            "ExposedPorts": {port: {} for port in ports},
            "Volumes": {volume: {} for volume in sorted({*volumes, STATE_DIR})},
            "StopSignal": "SIGTERM",
            "Labels": {
                "org.opencontainers.image.title": name,
                "org.opencontainers.image.version": version,
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": f"vatools image build {name}"}],
    }
    config_digest, config_size = _blob(layout, _json(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": MEDIA_LAYER, "digest": f"sha256:{layer_digest}", "size": layer_size}],
        "annotations": {"org.opencontainers.image.title": name},
    }
    manifest_digest, manifest_size = _blob(layout, _json(manifest))
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": MEDIA_MANIFEST,
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": version},
            }
        ],
    }
    (layout / "index.json").write_bytes(_json(index))
    (layout / "oci-layout").write_bytes(_json({"imageLayoutVersion": "1.0.0"}))


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
