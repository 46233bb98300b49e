"""Services, hooks and migration steps around a backup or restore, all run in the target.

Services: on a running systemd host, `systemctl`; in a tree, `invoke-rc.d`, which honours
policy-rc.d (exit 101, "forbidden by policy", is the normal no-op of a chroot); in a tree
without either, there is nothing to stop.
Hooks are the appliance's executables /usr/share/vatools/appliances/NAME/{backup-pre,
backup-post,restore-post}; migration steps are .../migrate/FROM_VERSION.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cmp_to_key

from debian.debian_support import version_compare

from vatools.backup.manifest import BackupManifest
from vatools.run import Target, run

log = logging.getLogger("vatools")
POLICY_FORBIDS = 101


def _service(target: Target, unit: str, action: str) -> None:
    if target.is_host and os.path.isdir("/run/systemd/system"):
        run(["systemctl", action, unit], hint=f"see: systemctl status {unit}")
    elif target.path("/usr/sbin/invoke-rc.d").exists():
        result = run(["invoke-rc.d", unit, action], target=target, check=False)
        if result.returncode == POLICY_FORBIDS:
            log.debug("%s %s: forbidden by policy-rc.d in %s, nothing to do", action, unit, target)
        elif result.returncode != 0:
            run(["invoke-rc.d", unit, action], target=target)  # raises, with the output
    else:
        log.debug("%s %s: no init system in %s, nothing to do", action, unit, target)


def stop_services(target: Target, services: tuple[str, ...]) -> None:
    for unit in reversed(services):
        _service(target, unit, "stop")


def start_services(target: Target, services: tuple[str, ...]) -> None:
    for unit in services:
        _service(target, unit, "start")


def hook_path(manifest: BackupManifest, hook: str) -> str:
    return f"{manifest.hooks_dir}/{hook}"


def has_hook(target: Target, manifest: BackupManifest, hook: str) -> bool:
    path = target.path(hook_path(manifest, hook))
    return path.is_file() and os.access(path, os.X_OK)


def run_hook(target: Target, manifest: BackupManifest, hook: str,
             env: dict[str, str] | None = None) -> None:
    if has_hook(target, manifest, hook):
        path = hook_path(manifest, hook)
        run([path], target=target, env={"VATOOLS_APPLIANCE": manifest.appliance, **(env or {})},
            hint=f"the appliance's hook {path} failed; see its output above")


@dataclass(frozen=True)
class Migration:
    from_version: str
    path: str  # inside the target


def migrations(target: Target, manifest: BackupManifest, backup_version: str) -> tuple[Migration, ...]:
    """Steps for data of `backup_version`: every migrate/F with backup_version <= F < installed.

    A step is named after the last appliance version that wrote the old layout, so a backup of
    that version or any earlier one needs it. A backup without a version (format 1) needs all.
    """
    directory = target.path(f"{manifest.hooks_dir}/migrate")
    if not directory.is_dir():
        return ()
    steps = []
    for entry in directory.iterdir():
        name = entry.name
        if not (entry.is_file() and os.access(entry, os.X_OK)):
            continue
        older_than_installed = version_compare(name, manifest.version) < 0
        needed = not backup_version or version_compare(backup_version, name) <= 0
        if older_than_installed and needed:
            steps.append(Migration(name, f"{manifest.hooks_dir}/migrate/{name}"))
    def compare(a: Migration, b: Migration) -> int:
        return int(version_compare(a.from_version, b.from_version))

    by_version = cmp_to_key(compare)
    return tuple(sorted(steps, key=by_version))


def run_migration(target: Target, step: Migration, env: dict[str, str]) -> None:
    run([step.path], target=target, env=env,
        hint=f"the appliance's migration step {step.path} failed; see its output above")
