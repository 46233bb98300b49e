"""valist: the appliances this system has installed and can install."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from vatools.cli import common
from vatools.errors import UsageError

DESCRIPTION = """\
List appliances: the packages that provide virtual-appliance. Installed ones come
from dpkg's status (fast); available ones from apt's package lists."""


@common.command("valist", DESCRIPTION, epilog="examples:\n  valist\n  valist --installed --json")
@click.option("--installed", is_flag=True, help="only installed appliances (fast)")
@click.option("--available", is_flag=True, help="only appliances apt can install")
@common.json_option("print a JSON list of objects")
@common.host_options()
@common.root_option()
@common.debug_option()
@common.version_option("valist")
def valist(installed: bool, available: bool, host: str | None) -> int:
    if installed and available:
        raise UsageError("--installed and --available exclude each other", hint="give one of them")
    if host is not None:
        from vatools.cli import remote

        return remote.valist(host, installed=installed, available=available)
    from vatools import listing

    target = common.target()
    entries = listing.installed(target)  # with --available too, or installed ones pass as available
    if not installed:
        entries = listing.with_available(target, entries)
        if available:
            entries = [e for e in entries if e.state == "available"]
    if common.settings().json:
        import json

        json.dump([e.as_json() for e in entries], sys.stdout, indent=2)
        print()
        return 0
    if not entries:
        print("No appliances found." if not installed else "No appliance is installed.")
        return 0
    rows = [("NAME", "STATE", "VERSION", "CANDIDATE", "SEED", "DESCRIPTION")] + [
        (e.name, e.state, e.version or "-", e.candidate or "-", e.seed, e.description)
        for e in entries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[5])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return common.run(valist, "valist", argv)


if __name__ == "__main__":
    sys.exit(main())
