"""Restoring an .abf: verify everything, stage, swap in, or put the previous content back.

    plan = plan_restore(Path("wiki.abf"), target)   # every check; nothing written
    restore(plan, target)                            # stage, stop, swap, migrate, start, commit

Staging checks everything again as it goes (every member before it is written, every checksum
and size at the end of its stream), and nothing live is touched until all of it passed, so
a restore needs no separate verify pass: `plan_restore(..., verify=False)` does only the
checks that need no pass over the data, and the restore reads the archive once. If staging
fails, the staging trees, journal and lock go, and the target is as it was.

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
from dataclasses import dataclass, replace
from pathlib import Path

from debian.debian_support import version_compare

from vatools.backup import actions, swap
from vatools.backup.accounts import Accounts
from vatools.backup.archive import BackupFile
from vatools.backup.authenticity import Authenticity, refuse_foreign
from vatools.backup.footprint import Footprint
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
    verified: bool = True  # False: the content is checked while staging (changes unknown)
    authenticity: Authenticity | None = None  # whether the target made it (authenticity.py)

    def describe(self) -> list[str]:
        info = self.backup.info
        lines = [f"backup: {self.backup.path} (format {self.backup.format_version}, "
                 f"{info.appliance} {info.appliance_version or '(unknown version)'}, "
                 f"made {info.timestamp or '(unknown time)'} on {info.hostname or '(unknown host)'})",
                 f"installed: {self.appliance.name} {self.appliance.version}"]
        if self.authenticity:
            lines.insert(1, self.authenticity.describe())
        for change in self.changes:
            action = "replace" if change.exists_now else "create"
            if not self.verified:
                action = "restore (checked while staging)"
            elif not change.in_backup:
                action = "remove (absent in the backup)" if change.exists_now else "leave absent"
            lines.append(f"  {action}: {change.root.path}")
        lines += [f"  keep (not in the backup): {path}" for path in self.untouched]
        lines.append("services to stop and start: " + (" ".join(self.services) or "none"))
        if self.interrupted:
            lines.append(f"first, repair the interrupted restore of {self.interrupted}")
        lines += [f"migration step: {m.path}" for m in self.migrations]
        return lines


def plan_restore(path: Path, target: Target, progress: Progress | None = None,
                 verify: bool = True, trust_foreign: bool = False) -> RestorePlan:
    """Every check of the backup against the target; writes nothing. The caller closes
    plan.backup (restore() does). verify=False skips the pass over the tar members (restore()
    makes it while staging): structure, checksums of the small members, info.yaml, the
    appliance, its version and the roots are still checked. A backup the target did not make
    (authenticity.py) is refused first, unless `trust_foreign` (the user said so)."""
    backup = BackupFile.open(path)
    try:
        authenticity = backup.authenticity(target)
        if not trust_foreign:
            refuse_foreign(path, authenticity)
        return replace(_plan(backup, target, progress, verify), authenticity=authenticity)
    except BaseException:
        backup.close()
        raise


def _plan(backup: BackupFile, target: Target, progress: Progress | None,
          verify: bool) -> RestorePlan:
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
    sizes = backup.verify(progress, existing_link=link_lookup(target)) if verify else info.sizes
    changes = tuple(RootChange(root, root.name in backup.present_roots or not verify,
                               os.path.lexists(root_location(target, root.path)))
                    for root in info.roots)
    _check_space(target, info.roots, sizes)  # format 1 without verify: no sizes known yet
    untouched = tuple(sorted(declared - {r.path for r in info.roots}))
    journal = swap.read_journal(target)
    return RestorePlan(backup, appliance, changes, untouched, steps, manifest.services, sizes,
                       journal.backup if journal else "", verify)


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
def locked(target: Target, footprint: Footprint | None = None) -> Iterator[None]:
    path = target.path(swap.LOCK)
    footprint = footprint or Footprint()
    footprint.make_dirs(path.parent)
    while True:
        handle = open(path, "a")
        footprint.made_file(path)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            handle.close()
            raise VatoolsError(f"another backup restore is running on {target}") from e
        try:  # a refused restore removes the lock file: was this one still the lock?
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()
    with handle:
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
            say: Callable[[str], None] = log.info,
            on_verified: Callable[[RestorePlan], None] | None = None,
            on_live: Callable[[], None] | None = None) -> None:
    """Stage (checking everything), swap in, start, commit, then remove the previous content.
    on_verified gets the plan completed by staging (what is replaced or removed) before
    anything live changes; on_live is called once the restored content is committed, before
    the previous content is removed (the slow part a caller need not wait for)."""
    footprint = Footprint()
    try:
        with locked(target, footprint):
            if swap.read_journal(target) is not None:
                say(_recover(target))
            _restore(plan, target, progress, say, footprint, on_verified, on_live)
    finally:
        plan.backup.close()


def _restore(plan: RestorePlan, target: Target, progress: Progress | None,
             say: Callable[[str], None], footprint: Footprint,
             on_verified: Callable[[RestorePlan], None] | None,
             on_live: Callable[[], None] | None) -> None:
    swaps = _staging_paths(target, plan)
    for s in swaps:
        for leftover in (s.new, s.old, s.discard):
            if os.path.lexists(leftover):
                raise VatoolsError(f"{leftover} exists, left by something else than a restore",
                                   hint="remove it, then try again")
        footprint.keep_times(os.path.dirname(s.path))
    journal = swap.Journal(str(plan.backup.path), "staging", plan.services, swaps)
    swap.write_journal(target, journal)
    started = time.monotonic()
    try:
        sizes = _stage(plan, target, swaps, progress)  # the one pass: every check, every sum
        staged = time.monotonic()
        present = plan.backup.present_roots
        swaps = tuple(replace(s, has_new=c.root.name in present)
                      for c, s in zip(plan.changes, swaps))
        swap.sync_file_systems([s.new for s in swaps if s.has_new])
        synced = time.monotonic()
        plan = replace(plan, sizes=sizes, verified=True, interrupted="", changes=tuple(
            RootChange(c.root, s.has_new, s.had_old) for c, s in zip(plan.changes, swaps)))
        if on_verified is not None:
            on_verified(plan)
    except BaseException:
        for s in swaps:
            swap.undo(s)
        swap.remove_journal(target)
        footprint.erase()
        raise
    journal = swap.Journal(str(plan.backup.path), "staging", plan.services, swaps)
    say(f"staged in {staged - started:.1f} s, synced in {synced - staged:.1f} s; "
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
    if on_live is not None:
        on_live()
    started = time.monotonic()
    for s in swaps:
        swap.commit(s)
    swap.remove_journal(target)
    say(f"removed the previous content in {time.monotonic() - started:.1f} s")


def _stage(plan: RestorePlan, target: Target, swaps: tuple[swap.RootSwap, ...],
           progress: Progress | None) -> dict[str, ArchiveSize]:
    staging = {c.root.name: Path(s.new) for c, s in zip(plan.changes, swaps)}
    stager = Stager(staging, Accounts.of(target))
    sizes = {}
    try:
        done = 0
        for archive in TAR_MEMBERS:
            sizes[archive] = plan.backup.walk(archive, stager.add, progress, done,
                                              link_lookup(target))
            done += sizes[archive].compressed
        stager.finish()
    finally:
        stager.close()
    return sizes
