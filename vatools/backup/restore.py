"""Restoring an .abf: verify everything, stage, swap in, or put the previous content back.

    plan = plan_restore(Path("wiki.abf"), target)   # every check; nothing written
    restore(plan, target)                            # stage, stop, swap, migrate, start, commit

A restore interrupted by a kill leaves a journal; `recover(target)` (also run first by the
next restore) puts the previous content back, or finishes a restore that had committed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from debian.debian_support import version_compare

from vatools.backup import actions, swap
from vatools.backup.accounts import Accounts
from vatools.backup.archive import BackupFile
from vatools.backup.info import TAR_MEMBERS, ArchiveSize, BadBackup
from vatools.backup.manifest import (InstalledAppliance, ManifestError, Root, installed_appliance,
                                     root_location)
from vatools.backup.stage import Stager
from vatools.errors import RollbackIncomplete, RolledBack, VatoolsError
from vatools.run import Target

log = logging.getLogger("vatools")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RootChange:
    root: Root
    in_backup: bool  # False: the root was absent when backed up, so the restore removes it
    exists_now: bool


@dataclass(frozen=True)
class RestorePlan:
    backup: BackupFile
    appliance: InstalledAppliance
    changes: tuple[RootChange, ...]
    untouched: tuple[str, ...]  # paths the installed appliance declares but the backup lacks
    migrations: tuple[actions.Migration, ...]
    services: tuple[str, ...]
    sizes: dict[str, ArchiveSize]
    interrupted: str = ""  # the backup of a killed restore, repaired first

    def describe(self) -> list[str]:
        info = self.backup.info
        lines = [f"backup: {self.backup.path} (format {self.backup.format_version}, "
                 f"{info.appliance} {info.appliance_version or '(unknown version)'}, "
                 f"made {info.timestamp or '(unknown time)'} on {info.hostname or '(unknown host)'})",
                 f"installed: {self.appliance.name} {self.appliance.version}"]
        for change in self.changes:
            action = "replace" if change.exists_now else "create"
            if not change.in_backup:
                action = "remove (absent in the backup)" if change.exists_now else "leave absent"
            lines.append(f"  {action}: {change.root.path}")
        lines += [f"  keep (not in the backup): {path}" for path in self.untouched]
        lines.append("services to stop and start: " + (" ".join(self.services) or "none"))
        if self.interrupted:
            lines.append(f"first, repair the interrupted restore of {self.interrupted}")
        lines += [f"migration step: {m.path}" for m in self.migrations]
        return lines


def plan_restore(path: Path, target: Target, progress: Progress | None = None) -> RestorePlan:
    """Every check of the backup against the target; writes nothing. The caller closes
    plan.backup (restore() does)."""
    backup = BackupFile.open(path)
    try:
        return _plan(backup, target, progress)
    except BaseException:
        backup.close()
        raise


def _plan(backup: BackupFile, target: Target, progress: Progress | None) -> RestorePlan:
    info = backup.info
    appliance = installed_appliance(target)
    manifest = appliance.manifest()
    if info.appliance != appliance.name:
        raise BadBackup(f"{backup.path} is a backup of {info.appliance}, but {appliance.name} is "
                        f"installed on {target}",
                        hint=f"restore it on a system with {info.appliance} installed")
    if info.appliance_version and version_compare(info.appliance_version, appliance.version) > 0:
        raise BadBackup(f"{backup.path} was made by {info.appliance} {info.appliance_version}, "
                        f"newer than the installed {appliance.version}",
                        hint=f"upgrade the appliance first (apt-get install {appliance.name})")
    declared = {r.path for r in manifest.roots}
    for root in info.roots:
        if root.path not in declared:
            raise BadBackup(f"{backup.path} restores {root.path}, which {appliance.name} "
                            f"{appliance.version} does not declare for backups")
        try:
            parent = root_location(target, root.path).parent
        except ManifestError as e:
            raise BadBackup(e.message, e.hint) from e
        if not parent.is_dir():
            raise BadBackup(f"{parent} is not a directory, so {root.path} cannot be restored",
                            hint=f"is {appliance.name} installed completely?")
    steps = actions.migrations(target, manifest, info.appliance_version)
    sizes = backup.verify(progress, existing_link=link_lookup(target))
    changes = tuple(RootChange(root, root.name in backup.present_roots,
                               os.path.lexists(root_location(target, root.path)))
                    for root in info.roots)
    _check_space(target, info.roots, sizes)
    untouched = tuple(sorted(declared - {r.path for r in info.roots}))
    journal = swap.read_journal(target)
    return RestorePlan(backup, appliance, changes, untouched, steps, manifest.services, sizes,
                       journal.backup if journal else "")


def link_lookup(target: Target) -> Callable[[str], str | None]:
    def existing(path: str) -> str | None:
        where = target.path(path)
        return os.readlink(where) if where.is_symlink() else None
    return existing


def _check_space(target: Target, roots: tuple[Root, ...], sizes: dict[str, ArchiveSize]) -> None:
    need = sum(s.content_bytes + 4096 * s.entries for s in sizes.values())
    parent = target.path(os.path.dirname(roots[0].path))
    st = os.statvfs(parent)
    free = st.f_bavail * st.f_frsize
    if need > free:
        raise VatoolsError(f"the restore needs about {need >> 20} MiB beside the appliance's "
                           f"directories, but {parent} has {free >> 20} MiB free",
                           hint="free some space (the previous content is kept until the end)")


@contextmanager
def locked(target: Target) -> Iterator[None]:
    path = target.path(swap.LOCK)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise VatoolsError(f"another backup restore is running on {target}") from e
        yield


def _staging_paths(target: Target, plan: RestorePlan) -> tuple[swap.RootSwap, ...]:
    # what exists is looked at now, after any repair of an interrupted restore
    swaps = []
    for change in plan.changes:
        path = str(root_location(target, change.root.path))
        swaps.append(swap.RootSwap(path, os.path.lexists(path), change.in_backup))
    return tuple(swaps)


def recover(target: Target) -> str:
    """Repair after a killed restore: undo it, or finish it if it had committed."""
    with locked(target):
        return _recover(target)


def _recover(target: Target) -> str:
    journal = swap.read_journal(target)
    if journal is None:
        return "no interrupted restore to repair"
    if journal.phase == "committed":
        for s in journal.swaps:
            swap.commit(s)
        swap.remove_journal(target)
        return f"finished the interrupted restore of {journal.backup}"
    if journal.phase == "swapping":
        try:
            actions.stop_services(target, journal.services)
        except VatoolsError as e:  # putting content back matters more
            log.warning("stopping services before the repair failed: %s", e)
    for s in journal.swaps:
        swap.undo(s)
    if journal.phase == "swapping":
        actions.start_services(target, journal.services)
    swap.remove_journal(target)
    return f"undid the interrupted restore of {journal.backup}; the previous content is back"


def restore(plan: RestorePlan, target: Target, progress: Progress | None = None,
            say: Callable[[str], None] = log.info) -> None:
    try:
        with locked(target):
            if swap.read_journal(target) is not None:
                say(_recover(target))
            _restore(plan, target, progress, say)
    finally:
        plan.backup.close()


def _restore(plan: RestorePlan, target: Target, progress: Progress | None,
             say: Callable[[str], None]) -> None:
    swaps = _staging_paths(target, plan)
    for s in swaps:
        for leftover in (s.new, s.old, s.discard):
            if os.path.lexists(leftover):
                raise VatoolsError(f"{leftover} exists, left by something else than a restore",
                                   hint="remove it, then try again")
    journal = swap.Journal(str(plan.backup.path), "staging", plan.services, swaps)
    swap.write_journal(target, journal)
    started = time.monotonic()
    try:
        _stage(plan, target, swaps, progress)
        staged = time.monotonic()
        swap.sync_file_systems([s.new for s in swaps if s.has_new])
    except BaseException:
        for s in swaps:
            swap.undo(s)
        swap.remove_journal(target)
        raise
    say(f"staged in {staged - started:.1f} s, synced in {time.monotonic() - staged:.1f} s; "
        "stopping services and swapping in")
    started = time.monotonic()
    swap.write_journal(target, journal.with_phase("swapping"))
    manifest = plan.appliance.manifest()
    try:
        actions.stop_services(target, plan.services)
        for s in swaps:
            swap.swap_in(s)
        env = {"VATOOLS_BACKUP_VERSION": plan.backup.info.appliance_version,
               "VATOOLS_INSTALLED_VERSION": plan.appliance.version}
        for step in plan.migrations:
            say(f"migrating: {step.path}")
            actions.run_migration(target, step, env)
        actions.start_services(target, plan.services)
        actions.run_hook(target, manifest, "restore-post", env)
    except BaseException as failure:
        try:
            message = _recover(target)
        except BaseException as e:
            raise RollbackIncomplete(
                f"the restore failed ({failure}) and putting the previous content back failed "
                f"too ({e})", hint="repair with: vatools backup recover"
                + ("" if target.is_host else f" --root {target.root}")) from e
        if isinstance(failure, KeyboardInterrupt):
            raise
        raise RolledBack(f"the restore failed: {failure}; {message}",
                         hint=getattr(failure, "hint", None)) from failure
    swap.write_journal(target, journal.with_phase("committed"))
    say(f"swapped in and started in {time.monotonic() - started:.1f} s; removing the previous "
        "content")
    started = time.monotonic()
    for s in swaps:
        swap.commit(s)
    swap.remove_journal(target)
    say(f"removed the previous content in {time.monotonic() - started:.1f} s")


def _stage(plan: RestorePlan, target: Target, swaps: tuple[swap.RootSwap, ...],
           progress: Progress | None) -> None:
    staging = {c.root.name: Path(s.new) for c, s in zip(plan.changes, swaps)}
    stager = Stager(staging, Accounts.of(target))
    try:
        done = 0
        for archive in TAR_MEMBERS:
            size = plan.backup.walk(archive, stager.add, progress, done,  # checks everything again
                                    link_lookup(target))
            done += size.compressed
        stager.finish()
    finally:
        stager.close()
