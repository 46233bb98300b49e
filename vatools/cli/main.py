"""vatools: the packager's and administrator's toolbox (seeds, repositories, backups, new appliances)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from vatools.cli import common

DESCRIPTION = """\
Tools around appliances: check seed files, build signed repositories, scaffold new
appliances, back up and restore, build images. See vatools(1)."""

# Command groups living in their own modules; each has register(subparsers).
GROUP_MODULES = ("vatools.cli.repo", "vatools.cli.backup", "vatools.cli.new", "vatools.cli.image")


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("vatools", DESCRIPTION)
    commands = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_seed_commands(commands)
    for module in GROUP_MODULES:
        try:
            importlib.import_module(module).register(commands)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return p


def _add_seed_commands(commands: argparse._SubParsersAction) -> None:
    seed = commands.add_parser("seed", help="check seed files, write seed skeletons")
    seed_commands = seed.add_subparsers(dest="seed_command", metavar="SEED_COMMAND", required=True)
    check = seed_commands.add_parser(
        "check",
        help="check a seed file; changes nothing",
        description="Check a seed file: its syntax, and the debconf templates of the packages"
        " it answers. Exit status 0 when it has no errors, 1 when it has.",
    )
    check.add_argument("file", metavar="FILE", type=Path)
    check.add_argument(
        "--against",
        metavar="PKG|FILE.deb",
        nargs="+",
        action="extend",
        default=[],
        help="check against the templates of these packages and everything apt would install"
        " with them (downloaded to a temporary directory), or of these .deb files",
    )
    check.add_argument("--json", action="store_true", help="print the problems as JSON")
    common.add_target_options(check)
    check.set_defaults(func=_seed_check)
    skeleton = seed_commands.add_parser(
        "skeleton",
        help="print a seed skeleton from the packages' real debconf templates",
        description="Print, on standard output, every debconf question that installing PKG"
        " (with all that apt would install with it) asks, as commented-out seed lines with"
        " type, default, choices and description. Changes nothing.",
    )
    skeleton.add_argument("packages", metavar="PKG", nargs="+")
    common.add_target_options(skeleton)
    skeleton.set_defaults(func=_seed_skeleton)


def _seed_check(args: argparse.Namespace) -> int:
    from vatools.seed.check import check_file

    problems = check_file(args.file, common.target(args), args.against)
    errors = sum(p.is_error for p in problems)
    if args.json:
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
        print(f"{args.file}: {errors} error(s), {len(problems) - errors} warning(s)")
    return 1 if errors else 0


def _seed_skeleton(args: argparse.Namespace) -> int:
    from vatools.seed.skeleton import seed_skeleton

    sys.stdout.write(seed_skeleton(common.target(args), args.packages))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.main_wrapper("vatools", args.func, args)


if __name__ == "__main__":
    sys.exit(main())
