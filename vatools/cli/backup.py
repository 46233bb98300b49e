"""`vatools backup create|verify|inspect|restore|recover`: parse, call one library function, print.

The lead's `vatools` wires this in with `register(subparsers)`; each subcommand sets
`func=handler`, and handler(args) returns the exit code. Errors are printed here (one line
and a hint), so the handlers also work on their own: `python3 -m vatools.cli.backup ...`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from vatools.cli import common
from vatools.errors import ExitCode, UsageError



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


def _target(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from vatools.run import Target
    return Target(Path(args.root).absolute()) if args.root else Target()


def create(args: argparse.Namespace) -> int:
    from vatools.backup.create import create_backup
    progress = ProgressLine("backing up")
    try:
        created = create_backup(_target(args), Path(args.output) if args.output else None,
                                progress)
    finally:
        progress.end()
    sizes = created.info.sizes
    total = sum(s.compressed for s in sizes.values())
    print(f"{created.path}: {created.info.appliance} {created.info.appliance_version}, "
          f"{sum(s.entries for s in sizes.values())} entries, "
          f"{sum(s.content_bytes for s in sizes.values())} bytes of content, {total} bytes written")
    return int(ExitCode.OK)


def verify(args: argparse.Namespace) -> int:
    from vatools.backup.archive import BackupFile
    from vatools.backup.info import BadBackup
    if not Path(args.file).is_file():
        raise UsageError(f"{args.file}: no such file")
    progress = ProgressLine("verifying")
    try:
        with BackupFile.open(Path(args.file)) as backup:
            sizes = backup.verify(progress)
    except BadBackup as e:
        progress.end()
        print(f"{args.file}: BAD: {e.message}")
        return int(ExitCode.PROBLEMS)
    progress.end()
    entries = sum(s.entries for s in sizes.values())
    for path, link in backup.external_links:
        print(f"note: {path} is a symlink to {link}, outside the backup's directories: a restore "
              "accepts it only where the target has the same link")
    print(f"{args.file}: OK (format {backup.format_version}, {backup.info.appliance} "
          f"{backup.info.appliance_version}, {entries} entries, all checksums match)")
    return int(ExitCode.OK)


def inspect(args: argparse.Namespace) -> int:
    from vatools.backup.archive import BackupFile
    with BackupFile.open(Path(args.file)) as backup:
        info = backup.info
        if args.json:
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


def restore(args: argparse.Namespace) -> int:
    from vatools.backup.restore import RestorePlan, plan_restore, restore as do_restore
    target = _target(args)
    if args.dry_run:  # a read-only pass over everything
        progress = ProgressLine("verifying")
        try:
            plan = plan_restore(Path(args.file), target, progress)
        finally:
            progress.end()
        for line in plan.describe():
            print(line)
        plan.backup.close()
        print("dry run: nothing changed")
        return int(ExitCode.OK)
    # one pass: the archive is checked while it is staged, before anything live changes
    plan = plan_restore(Path(args.file), target, verify=False)
    progress = ProgressLine("restoring")

    def verified(complete: RestorePlan) -> None:
        progress.end()
        for line in complete.describe():
            print(line, flush=True)

    def live() -> None:
        print(f"restored {args.file} on {target}", flush=True)

    try:
        do_restore(plan, target, progress, say=lambda text: print(text, file=sys.stderr),
                   on_verified=verified, on_live=live)
    finally:
        progress.end()
    return int(ExitCode.OK)


def recover(args: argparse.Namespace) -> int:
    from vatools.backup.restore import recover as do_recover
    print(do_recover(_target(args)))
    return int(ExitCode.OK)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `backup` with its subcommands to the `vatools` parser."""
    backup = subparsers.add_parser("backup", help="appliance backups (.abf files)",
                                   description="Create, check and restore appliance backups.")
    commands = backup.add_subparsers(dest="backup_command", metavar="COMMAND", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], int], text: str,
                root: bool = True) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=text, description=text)
        if root:
            parser.add_argument("--root", metavar="DIR",
                                help="act on the Debian tree in DIR instead of this system")
        parser.add_argument("--debug", action="store_true", help="show the commands run")
        parser.set_defaults(func=handler)
        return parser

    p = command("create", create, "back up the installed appliance to one .abf file")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="where to write (default: ./NAME_VERSION_TIMESTAMP.abf)")
    p = command("verify", verify, "check a backup completely (checksums, every member)", False)
    p.add_argument("file", metavar="FILE")
    p = command("inspect", inspect, "show what a backup holds", False)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print info.yaml as JSON")
    p = command("restore", restore, "restore a backup: all of it, or nothing")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--dry-run", action="store_true", help="check everything and show the plan")
    command("recover", recover, "repair after an interrupted restore (undo or finish it)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vatools")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return common.main_wrapper("vatools", args.func, args)


if __name__ == "__main__":
    sys.exit(main())
