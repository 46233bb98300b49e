"""`vatools check`: run the installed appliance's health checks; exit 0 when none failed."""

from __future__ import annotations

import json
import re
import sys

import click

from vatools.cli import common
from vatools.errors import ExitCode, UsageError

MARKS = {"ok": "ok", "failed": "FAILED", "unknown": "unknown"}


def port_map(values: tuple[str, ...]) -> dict[int, int]:
    """`--http-port DECLARED=ACTUAL` options as a mapping.

    >>> port_map(("80=8123", "8080=8124"))
    {80: 8123, 8080: 8124}
    >>> port_map(("80:8123",))
    Traceback (most recent call last):
    ...
    vatools.errors.UsageError: --http-port '80:8123' is not DECLARED=ACTUAL
    """
    ports: dict[int, int] = {}
    for value in values:
        m = re.fullmatch(r"([0-9]{1,5})=([0-9]{1,5})", value)
        if not m or not all(0 < int(p) < 65536 for p in m.groups()):
            raise UsageError(f"--http-port {value!r} is not DECLARED=ACTUAL",
                             hint="two port numbers, e.g. --http-port 80=8123")
        ports[int(m[1])] = int(m[2])
    return ports


def _say(text: str) -> None:
    print(f"vatools check: {text}", file=sys.stderr, flush=True)


@common.command(
    "check",
    short_help="run the installed appliance's health checks",
    help="Run the health checks of the installed appliance: its services must be active,\n"
    "its HTTP probes answer as declared (retried until the deadline), its check programs\n"
    "exit 0, and dpkg --audit must report nothing. Exit status 0 when no check failed,\n"
    "1 when one did. A check that cannot be made here (services in a --root tree) is\n"
    "reported as unknown and does not fail.",
    epilog="examples:\n"
    "  vatools check\n"
    "  vatools check --json --deadline 5\n"
    "  vatools check --root /srv/chroots/wiki --http-port 80=8123",
)
@click.option("--deadline", metavar="SECONDS", type=click.IntRange(1, 3600),
              help="how long an HTTP probe (and a check program) may take (default: the appliance's"
              " Vatools-Check-Deadline, or 60)")
@click.option("--http-port", "http_ports", metavar="DECLARED=ACTUAL", multiple=True,
              help="send the probes of loopback port DECLARED to port ACTUAL (servers of a"
              " --root tree started on other ports); may be repeated")
@common.json_option("print the results as JSON")
@common.root_option()
@common.debug_option()
def check(deadline: int | None, http_ports: tuple[str, ...]) -> int:
    from vatools.health import check_installed

    ports = port_map(http_ports)
    report = check_installed(common.target(), deadline=deadline, ports=ports, say=_say)
    if common.settings().json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        print()
    else:
        print(f"{report.appliance} {report.version}:")
        for result in report.results:
            detail = result.detail.replace("\n", "\n      ")
            print(f"  {MARKS[result.status]:8} {result.kind} {result.name}: {detail}")
        summary = (f"{len(report.results) - len(report.failed) - len(report.unknown)} ok, "
                   f"{len(report.failed)} failed, {len(report.unknown)} unknown")
        print(("healthy: " if report.ok else "NOT healthy: ") + summary)
    return int(ExitCode.OK if report.ok else ExitCode.PROBLEMS)
