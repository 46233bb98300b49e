"""vainstall: install an appliance with every debconf answer taken from its seed."""

from __future__ import annotations

import signal
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import click

from vatools.cli import common, complete
from vatools.errors import UsageError, VatoolsError

DESCRIPTION = """\
Install the appliance NAME: a package that provides virtual-appliance.

vainstall resolves NAME with apt, downloads what apt will install, takes the
appliance's seed (--seed FILE; else the seed published beside the package in the
repository, checked against the signed index; else the seed inside the package),
checks every answer against the debconf templates of those very packages, shows the
plan, applies the seed to debconf and installs with apt-get. Passwords the seed
leaves empty are generated, shown once and stored root-only. Any failure after the
first change is rolled back."""

EPILOG = """\
examples:
  vainstall dokuwiki-appliance
  vainstall --dry-run --set dokuwiki/wiki/title="Team Wiki" dokuwiki-appliance
  vainstall --replace --yes moinmoin-appliance"""


@common.command("vainstall", DESCRIPTION, epilog=EPILOG)
@click.argument("name", metavar="NAME", cls=common.Arg, help="the appliance package to install",
                shell_complete=complete.appliances)
@click.option("--seed", metavar="FILE", type=common.FILE,
              help="use this seed file instead of the appliance's own")
@click.option("--set", "overrides", metavar="QUESTION=VALUE", multiple=True,
              help="override one answer of the seed (repeatable)")
@click.option("--set-file", metavar="FILE", type=common.FILE,
              help="read more --set answers from FILE, one QUESTION=VALUE a line (keeps"
              " passwords out of the process list)")
@click.option("--dry-run", is_flag=True, help="show the plan; change nothing")
@click.option("--check", is_flag=True,
              help="only check the seed against every package apt would install, as a table;"
              " exit status 1 when it has errors; change nothing")
@click.option("--replace", is_flag=True, help="replace the appliance already installed")
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--lock-timeout", metavar="SECONDS", type=float, default=120.0,
              help="how long to wait for another apt or dpkg to finish (default 120)")
@click.option("--stall-timeout", metavar="SECONDS", type=float, default=900.0,
              help="stop and roll back when apt shows no progress for this long (default 900)")
@common.json_option("with --dry-run: print the plan as one JSON object (passwords masked)")
@common.host_options(repository=True)
@common.root_option()
@common.debug_option()
@common.version_option("vainstall")
def vainstall(name: str, seed: Path | None, overrides: tuple[str, ...], set_file: Path | None,
              dry_run: bool, check: bool, replace: bool, yes: bool, lock_timeout: float,
              stall_timeout: float, host: str | None, repositories: tuple[str, ...],
              keyring: Path | None) -> int:
    from vatools import install

    answers = (*overrides, *_read_set_file(set_file))
    if common.settings().json and not dry_run:
        raise UsageError("--json applies to --dry-run only", hint="add --dry-run")
    if host is not None:
        from vatools.cli import remote

        return remote.vainstall(
            host, name, seed=seed, overrides=answers, dry_run=dry_run, check=check,
            replace=replace, yes=yes, lock_timeout=lock_timeout, stall_timeout=stall_timeout,
            repositories=repositories, keyring=keyring,
        )
    if repositories or keyring:
        raise UsageError("--repository and --keyring apply to --host only",
                         hint="on this system, add the apt source yourself")
    signal.signal(signal.SIGTERM, _interrupt)
    common.require_root("vainstall")
    request = install.Request(
        name=name,
        seed_file=seed,
        overrides=tuple(_parse_override(o) for o in answers),
        replace=replace,
        target=common.target(),
        lock_timeout=lock_timeout,
        stall_timeout=stall_timeout,
    )
    with install.exclusive(request.target):
        if check:
            try:
                plan = install.prepare(request)
            except install.SeedRejected as rejected:
                _print_problems(rejected.problems)
                return 1
            _print_problems(list(plan.warnings))
            return 0
        plan = install.prepare(request)
        if common.settings().json:
            import json

            print(json.dumps(plan_as_json(plan), indent=2))
            return 0
        _print_plan(plan)
        if dry_run:
            print("\nDry run: nothing was changed.")
            return 0
        if not yes:
            _confirm()
        outcome = install.execute(plan)
    _print_outcome(outcome)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return common.run(vainstall, "vainstall", argv)


def _read_set_file(path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        text = path.read_text()
    except OSError as error:
        raise UsageError(f"--set-file {path}: {error.strerror}", hint="give a readable file") from None
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def plan_as_json(plan) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """The plan as data (for the Ansible module's check and diff modes); no secret in it."""
    answers = {}
    for sel in plan.seed.seed.answers().values():
        if sel.type == "password":
            answers[sel.question] = "(generated)" if sel.question in plan.generate else "(given, hidden)"
        else:
            answers[sel.question] = sel.value
    return {
        "appliance": plan.appliance.name,
        "version": plan.appliance.version,
        "seed": {"source": plan.seed.source, "where": plan.seed.where},
        "answers": answers,
        "generate": list(plan.generate),
        "replaces": plan.replaces,
        "install": [name for name, _ in plan.changes.install],
        "warnings": [str(p) for p in plan.warnings],
    }


def _interrupt(signum: int, frame: object) -> NoReturn:
    # SIGTERM takes the same careful way out as Ctrl-C: stop apt, roll back.
    raise KeyboardInterrupt


def _parse_override(text: str) -> tuple[str, str]:
    question, sep, value = text.partition("=")
    if not sep or not question or "/" not in question:
        raise UsageError(
            f"--set {text!r}: expected QUESTION=VALUE", hint="for example --set dokuwiki/wiki/title=Wiki"
        )
    return question, value


def _confirm() -> None:
    if not sys.stdin.isatty():
        raise VatoolsError(
            "not asking for confirmation: standard input is not a terminal",
            hint="add --yes to install without confirmation; nothing was changed",
        )
    answer = input("\nInstall? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise VatoolsError("cancelled; nothing was changed")


def _print_plan(plan) -> None:  # type: ignore[no-untyped-def]
    a = plan.appliance
    seed = plan.seed
    print(f"\nAppliance:  {a.name} {a.version} -- {a.description}")
    if seed.source == "repository":
        origin = f"repository, {seed.where} (sha256 matches the signed index)"
    elif seed.source == "package":
        origin = f"inside the package, {seed.where}"
    else:
        origin = f"file {seed.where}"
    print(f"Seed:       {origin}")
    answers = seed.seed.answers()
    print(f"Answers:    {len(answers)} ({len(plan.generate)} password(s) to generate)")
    for sel in answers.values():
        if sel.type == "password":
            shown = "(generated)" if sel.question in plan.generate else "(given, hidden)"
        else:
            shown = sel.value
        print(f"  {sel.owner} {sel.question} {sel.type} {shown}")
    for problem in plan.warnings:
        print(f"  {problem}")
    if plan.replaces:
        print(f"Replaces:   {plan.replaces} (removed; the packages it pulled in stay)")
    names = " ".join(name for name, _ in plan.changes.install)
    print(f"Installs:   {len(plan.changes.install)} packages:")
    print(textwrap.fill(names, width=100, initial_indent="  ", subsequent_indent="  "), flush=True)


def _print_problems(problems) -> None:  # type: ignore[no-untyped-def]
    if not problems:
        print("The seed answers every question correctly: no problems found.")
        return
    rows = [("SEVERITY", "WHERE", "PROBLEM")] + [
        (p.severity, str(p.location) if p.location else "-", p.message) for p in problems
    ]
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    for severity, where, message in rows:
        print(f"{severity.ljust(width[0])}  {where.ljust(width[1])}  {message}")
    errors = sum(p.is_error for p in problems)
    print(f"\n{errors} error(s), {len(problems) - errors} warning(s)")


def _print_outcome(outcome) -> None:  # type: ignore[no-untyped-def]
    plan = outcome.plan
    print(f"\n{plan.appliance.name} {plan.appliance.version} is installed ({outcome.seconds:.0f} s).")
    for warning in outcome.answer_warnings:
        print(f"  note: {warning}")
    if outcome.secrets:
        print(f"\nGenerated passwords (shown once; stored root-only in {outcome.secrets_file}):")
        for question, value in outcome.secrets.items():
            print(f"  {question}: {value}")


if __name__ == "__main__":
    sys.exit(main())
