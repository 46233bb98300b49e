"""manifest.json: what an image is (appliance, version, suite, packages) and its files' sha256.

>>> entries = file_entries(Path(__file__).parent, ["__init__.py"])
>>> entries[0]["name"], len(entries[0]["sha256"])
('__init__.py', 64)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from vatools import __version__
from vatools.dpkgstatus import read_status
from vatools.target import Target

MANIFEST_NAME = "manifest.json"


def packages(tree: Path) -> list[dict[str, str]]:
    return sorted(
        (
            {"name": p.name, "version": p.version, "architecture": p.fields.get("Architecture", "")}
            for p in read_status(Target(tree))
            if p.installed
        ),
        key=lambda p: p["name"],
    )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def file_entries(out: Path, names: list[str]) -> list[dict[str, object]]:
    """One entry per file (files inside a directory such as an OCI layout listed one by one)."""
    entries: list[dict[str, object]] = []
    for name in sorted(names):
        path = out / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            entries.append(
                {"name": str(file.relative_to(out)), "size": file.stat().st_size, "sha256": sha256_file(file)}
            )
    return entries


def write_manifest(
    out: Path,
    *,
    appliance: str,
    version: str,
    suite: str,
    source_date_epoch: int,
    tree: Path,
    tree_bytes: int,
    outputs: dict[str, list[str]],
) -> Path:
    """outputs: format -> the names (in `out`) it produced."""
    manifest = {
        "appliance": appliance,
        "version": version,
        "suite": suite,
        "source_date_epoch": source_date_epoch,
        "built_with": f"vatools {__version__}",
        "tree_bytes": tree_bytes,
        "formats": {fmt: sorted(names) for fmt, names in outputs.items()},
        "files": file_entries(out, [n for names in outputs.values() for n in names]),
        "packages": packages(tree),
    }
    path = out / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path
