"""`vatools backup create|verify|inspect|restore|recover`: parse, call one library function, print."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from vatools.cli import common
from vatools.errors import ExitCode, UsageError

_ABF = common.FILE


class ProgressLine:
    """One updating line on stderr, at most a few times a second, only on a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.25:
            return
        self.last = now
        percent = f" ({100 * done // total}%)" if total else ""
        sys.stderr.write(f"\r{self.label}: {done / 1e6:,.0f} of {total / 1e6:,.0f} MB{percent}  ")
        sys.stderr.flush()
        self.shown = True

    def end(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            self.shown = False


@common.group("backup", "Create, check and restore appliance backups (.abf files).",
              short_help="appliance backups (.abf files)")
@common.debug_option()
def backup() -> None:
    pass


@backup.command("create", help="Back up the installed appliance to one .abf file.",
                short_help="back up the installed appliance to one .abf file",
                epilog="examples:\n  vatools backup create --output wiki.abf\n"
                "  vatools backup create --root /srv/chroots/wiki")
@click.option("--output", "-o", metavar="FILE", type=_ABF,
              help="where to write (default: ./NAME_VERSION_TIMESTAMP.abf)")
@common.host_options()
@common.root_option()
@common.debug_option()
def create(output: Path | None, host: str | None) -> int:
    if host is not None:
        from vatools.cli import remote

        return remote.backup_create(host, output)
    from vatools.backup.create import create_backup
    progress = ProgressLine("backing up")
    try:
        created = create_backup(common.target(), output, progress)
    finally:
        progress.end()
    sizes = created.info.sizes
    total = sum(s.compressed for s in sizes.values())
    print(f"{created.path}: {created.info.appliance} {created.info.appliance_version}, "
          f"{sum(s.entries for s in sizes.values())} entries, "
          f"{sum(s.content_bytes for s in sizes.values())} bytes of content, {total} bytes written")
    return int(ExitCode.OK)


@backup.command("verify", help="Check a backup completely (checksums, every member); nothing is written.",
                short_help="check a backup completely (checksums, every member)",
                epilog="example:\n  vatools backup verify wiki.abf")
@click.argument("file", metavar="FILE", cls=common.Arg, type=_ABF, help="the backup file (.abf)")
@common.debug_option()
def verify(file: Path) -> int:
    from vatools.backup.archive import BackupFile
    from vatools.backup.info import BadBackup
    if not file.is_file():
        raise UsageError(f"{file}: no such file")
    progress = ProgressLine("verifying")
    try:
        with BackupFile.open(file) as backup:
            sizes = backup.verify(progress)
    except BadBackup as e:
        progress.end()
        print(f"{file}: BAD: {e.message}")
        return int(ExitCode.PROBLEMS)
    progress.end()
    entries = sum(s.entries for s in sizes.values())
    for path, link in backup.external_links:
        print(f"note: {path} is a symlink to {link}, outside the backup's directories: a restore "
              "accepts it only where the target has the same link")
    print(f"{file}: OK (format {backup.format_version}, {backup.info.appliance} "
          f"{backup.info.appliance_version}, {entries} entries, all checksums match)")
    return int(ExitCode.OK)


@backup.command("inspect", help="Show what a backup holds: its info.yaml (checked, not verified).",
                short_help="show what a backup holds",
                epilog="examples:\n  vatools backup inspect wiki.abf\n"
                "  vatools backup inspect --json wiki.abf")
@click.argument("file", metavar="FILE", cls=common.Arg, type=_ABF, help="the backup file (.abf)")
@common.json_option("print info.yaml as JSON")
@common.debug_option()
def inspect(file: Path) -> int:
    from vatools.backup.archive import BackupFile
    with BackupFile.open(file) as backup:
        info = backup.info
        if common.settings().json:
            print(json.dumps(info.to_json(), indent=2))
            return int(ExitCode.OK)
        print(f"format:     {backup.format_version}")
        print(f"appliance:  {info.appliance} {info.appliance_version}")
        print(f"made:       {info.timestamp} on {info.hostname}")
        print(f"services:   {' '.join(info.services) or '-'}")
        for root in info.roots:
            print(f"{root.kind + ':':11} {root.path}  (stored as {root.archive}: {root.name})")
        for archive, size in info.sizes.items():
            print(f"{archive}: {size.entries} entries, {size.content_bytes} bytes of content, "
                  f"{size.compressed} bytes compressed")
        for name, version in info.packages.items():
            print(f"package:    {name} {version}")
        print("(checked: structure, info.yaml checksum; run verify for a full check)")
    return int(ExitCode.OK)


@backup.command("restore", help="Restore a backup: all of it, or nothing. It is checked while it\n"
                "is staged, and swapped in only once all of it has verified; on any failure the\n"
                "previous content is put back. A backup this system did not make (not\n"
                "authenticated by its key: made elsewhere, by an older vatools, or changed since)\n"
                "is foreign: restored only with --foreign, as its configuration files run with\n"
                "the rights of the appliance's services and of root.",
                short_help="restore a backup: all of it, or nothing",
                epilog="examples:\n  vatools backup restore --dry-run wiki.abf\n"
                "  vatools backup restore wiki.abf")
@click.argument("file", metavar="FILE", cls=common.Arg, type=_ABF, help="the backup file (.abf)")
@click.option("--dry-run", is_flag=True, help="check everything and show the plan")
@click.option("--foreign", is_flag=True,
              help="restore it even if this system did not make it (not authenticated by its key)")
@common.root_option()
@common.debug_option()
def restore(file: Path, dry_run: bool, foreign: bool) -> int:
    from vatools.backup.restore import RestorePlan, plan_restore, restore as do_restore
    target = common.target()
    if dry_run:  # a read-only pass over everything
        progress = ProgressLine("verifying")
        try:
            plan = plan_restore(file, target, progress, trust_foreign=foreign)
        finally:
            progress.end()
        for line in plan.describe():
            print(line)
        plan.backup.close()
        print("dry run: nothing changed")
        return int(ExitCode.OK)
    # one pass: the archive is checked while it is staged, before anything live changes
    plan = plan_restore(file, target, verify=False, trust_foreign=foreign)
    progress = ProgressLine("restoring")

    def verified(complete: RestorePlan) -> None:
        progress.end()
        for line in complete.describe():
            print(line, flush=True)

    def live() -> None:
        print(f"restored {file} on {target}", flush=True)

    try:
        do_restore(plan, target, progress, say=lambda text: print(text, file=sys.stderr),
                   on_verified=verified, on_live=live)
    finally:
        progress.end()
    return int(ExitCode.OK)


@backup.command("recover", help="Repair after an interrupted restore: undo it or finish it.",
                short_help="repair after an interrupted restore (undo or finish it)",
                epilog="example:\n  vatools backup recover")
@common.root_option()
@common.debug_option()
def recover() -> int:
    from vatools.backup.restore import recover as do_recover
    print(do_recover(common.target()))
    return int(ExitCode.OK)
