"""`vatools seed check|skeleton`: check seed files, write seed skeletons."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from vatools.cli import common, complete


@common.group("seed", "Check seed files against the real debconf templates; write seed skeletons.",
              short_help="check seed files, write seed skeletons")
@common.debug_option()
def seed() -> None:
    pass


@seed.command(
    "check",
    cls=common.Command,
    short_help="check a seed file; changes nothing",
    help="Check a seed file: its syntax, and the debconf templates of the packages\n"
    "it answers. Exit status 0 when it has no errors, 1 when it has.",
    epilog="examples:\n"
    "  vatools seed check seeds/dokuwiki-appliance.seed --against dokuwiki-appliance\n"
    "  vatools seed check my.seed --against postfix_3.7.11-0+deb12u1_amd64.deb --json",
)
@click.argument("file", metavar="FILE", cls=common.Arg, help="the seed file to check",
                type=common.FILE)
@click.argument("more", cls=common.Arg, nargs=-1, hidden=True, shell_complete=complete.packages)
@click.option(
    "--against", metavar="PKG|FILE.deb", multiple=True, shell_complete=complete.packages,
    help="check against the templates of these packages and everything apt would install"
    " with them (downloaded to a temporary directory), or of these .deb files;"
    " several may follow one --against",
)
@common.json_option("print the problems as JSON")
@common.root_option()
@common.debug_option()
def check(file: Path, more: tuple[str, ...], against: tuple[str, ...]) -> int:
    from vatools.seed.check import check_file

    # `--against A B C`: click gives an option one value; the others arrive as arguments.
    if more and not against:
        raise click.UsageError(f"unexpected extra arguments: {' '.join(more)}")
    problems = check_file(file, common.target(), [*against, *more])
    errors = sum(p.is_error for p in problems)
    if common.settings().json:
        json.dump(
            [
                {
                    "severity": p.severity,
                    "file": p.location.file if p.location else None,
                    "line": p.location.line if p.location else None,
                    "message": p.message,
                    "hint": p.hint,
                }
                for p in problems
            ],
            sys.stdout,
            indent=2,
        )
        print()
    else:
        for problem in problems:
            print(problem)
            if problem.hint:
                print(f"    hint: {problem.hint}")
        print(f"{file}: {errors} error(s), {len(problems) - errors} warning(s)")
    return 1 if errors else 0


@seed.command(
    "skeleton",
    cls=common.Command,
    short_help="print a seed skeleton from the packages' real debconf templates",
    help="Print, on standard output, every debconf question that installing PKG\n"
    "(with all that apt would install with it) asks, as commented-out seed lines with\n"
    "type, default, choices and description. Changes nothing.",
    epilog="example:\n  vatools seed skeleton dokuwiki > seeds/mywiki-appliance.seed",
)
@click.argument("packages", metavar="PKG", cls=common.Arg, nargs=-1, required=True,
                help="the packages whose questions to list", shell_complete=complete.packages)
@common.root_option()
@common.debug_option()
def skeleton(packages: tuple[str, ...]) -> int:
    from vatools.seed.skeleton import seed_skeleton

    sys.stdout.write(seed_skeleton(common.target(), list(packages)))
    return 0
