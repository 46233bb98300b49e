"""valist: the appliances this system has installed and can install."""

from __future__ import annotations

import argparse
import json
import sys

from vatools.cli import common

DESCRIPTION = """\
List appliances: the packages that provide virtual-appliance. Installed ones come
from dpkg's status (fast); available ones from apt's package lists."""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("valist", DESCRIPTION, "examples:\n  valist\n  valist --installed --json")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--installed", action="store_true", help="only installed appliances (fast)")
    which.add_argument("--available", action="store_true", help="only appliances apt can install")
    p.add_argument("--json", action="store_true", help="print a JSON list of objects")
    common.add_target_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.main_wrapper("valist", _valist, args)


def _valist(args: argparse.Namespace) -> int:
    from vatools import listing

    target = common.target(args)
    entries = listing.installed(target)  # with --available too, or installed ones pass as available
    if not args.installed:
        entries = listing.with_available(target, entries)
        if args.available:
            entries = [e for e in entries if e.state == "available"]
    if args.json:
        json.dump([e.as_json() for e in entries], sys.stdout, indent=2)
        print()
        return 0
    if not entries:
        print("No appliances found." if not args.installed else "No appliance is installed.")
        return 0
    rows = [("NAME", "STATE", "VERSION", "CANDIDATE", "SEED", "DESCRIPTION")] + [
        (e.name, e.state, e.version or "-", e.candidate or "-", e.seed, e.description)
        for e in entries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[5])
    return 0


if __name__ == "__main__":
    sys.exit(main())
