"""`vatools repo build`: build every package of the tree and publish signed repositories.

Also runnable alone (the Makefile uses this): `python3 -m vatools.cli.repo repo build DIR`,
and `python3 -m vatools.cli.repo debs OUT SRC...` to build packages without publishing.
The library is imported inside the handlers, so registering this command costs nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULT_SUITES = ("bookworm", "trixie")
DEFAULT_KEY_DIR = Path("~/.local/share/vatools/repo-key")


def register(subparsers: Any) -> None:
    """Add `repo build DIR [--suite SUITE ...] [--key-dir DIR] [--top DIR] [--extra-source DIR ...]`."""
    repo = subparsers.add_parser("repo", help="build and publish the signed apt repositories")
    actions = repo.add_subparsers(dest="repo_command", metavar="COMMAND", required=True)
    build = actions.add_parser(
        "build", help="build every deb with dpkg-buildpackage, publish a signed repository per suite",
        description="Build the toolkit, every appliances/*/ and packages/*/ under --top (and every "
                    "--extra-source), then write a signed flat apt repository DIR/SUITE per suite.")
    build.add_argument("dir", metavar="DIR", type=Path, help="repository directory to write")
    build.add_argument("--suite", dest="suites", action="append", metavar="SUITE",
                       help="Debian suite to publish for (repeatable; default: bookworm and trixie)")
    build.add_argument("--key-dir", type=Path, default=DEFAULT_KEY_DIR, metavar="DIR",
                       help="where the signing key is kept, made on first use "
                            "(default: %(default)s)")
    build.add_argument("--top", type=Path, default=Path("."), metavar="DIR",
                       help="top of the vatools tree (default: the current directory)")
    build.add_argument("--extra-source", dest="extra_sources", action="append", type=Path,
                       default=[], metavar="DIR", help="another source package dir to build "
                       "and publish (repeatable)")
    build.set_defaults(func=build_handler)


def build_handler(args: argparse.Namespace) -> int:
    from vatools.packaging.repo import build_repository

    build_repository(args.dir, top=args.top, suites=args.suites or list(DEFAULT_SUITES),
                     key_dir=args.key_dir.expanduser(), extra_sources=args.extra_sources,
                     progress=_say)
    return 0


def debs_handler(args: argparse.Namespace) -> int:
    from vatools.packaging.build import build_package

    for source in args.sources:
        build_package(source, args.out, suite=args.suite, progress=_say)
    return 0


def _say(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point until `vatools` itself wires `repo` in."""
    from vatools.cli import common

    parser = argparse.ArgumentParser(prog="python3 -m vatools.cli.repo")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register(commands)
    debs = commands.add_parser("debs", help="build source dirs into OUT (no repository)")
    debs.add_argument("out", metavar="OUT", type=Path)
    debs.add_argument("sources", metavar="SRC", type=Path, nargs="+")
    debs.add_argument("--suite", help="suite for packages built in a chroot")
    debs.set_defaults(func=debs_handler)
    args = parser.parse_args(argv)
    return common.main_wrapper("vatools", args.func, args)


if __name__ == "__main__":
    sys.exit(main())
