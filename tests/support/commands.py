"""The vatools commands as tests run them inside a chroot."""

from __future__ import annotations

import json
import subprocess

from tests.support.chroot import Chroot


def vainstall(chroot: Chroot, *args: str) -> subprocess.CompletedProcess[str]:
    return chroot.run(["vainstall", *args], check=False)


def valist_json(chroot: Chroot) -> dict[str, dict]:
    """valist --json, by appliance name."""
    out = chroot.run(["valist", "--json"]).stdout
    return {entry["name"]: entry for entry in json.loads(out)}


def secrets_of(chroot: Chroot, appliance: str) -> dict[str, str]:
    """The passwords vainstall generated; the file must be root-only."""
    path = chroot.resolve(f"/var/lib/vatools/secrets/{appliance}")
    assert path.stat().st_mode & 0o777 == 0o600
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
