"""`vatools repo build DIR`: build every deb and publish signed apt repositories.

`vatools repo debs OUT SRC...` builds packages without publishing (the Makefile's `make deb`).
The library is imported inside the commands, so registering them costs nothing.
"""

from __future__ import annotations

from pathlib import Path

import click

from vatools.cli import common

DEFAULT_SUITES = ("bookworm", "trixie")
DEFAULT_KEY_DIR = Path("~/.local/share/vatools/repo-key")
_DIR = common.DIR


@common.group("repo", "Build the toolkit's and the appliances' packages; publish signed apt repositories.",
              short_help="build and publish the signed apt repositories")
@common.debug_option()
def repo() -> None:
    pass


@repo.command(
    "build",
    short_help="build every deb with dpkg-buildpackage, publish a signed repository per suite",
    help="Build the toolkit, every appliances/*/ and packages/*/ under --top (and every\n"
    "--extra-source), then write a signed flat apt repository DIR/SUITE per suite.",
    epilog="example:\n  vatools repo build build/repo --suite bookworm",
)
@click.argument("dir", metavar="DIR", cls=common.Arg, type=_DIR, help="repository directory to write")
@click.option("--suite", "suites", multiple=True, metavar="SUITE",
              shell_complete=lambda ctx, param, incomplete: [
                  s for s in DEFAULT_SUITES if s.startswith(incomplete)],
              help="Debian suite to publish for (repeatable; default: bookworm and trixie)")
@click.option("--key-dir", type=_DIR, default=DEFAULT_KEY_DIR, metavar="DIR",
              help=f"where the signing key is kept, made on first use (default: {DEFAULT_KEY_DIR})")
@click.option("--top", type=_DIR, default=Path("."), metavar="DIR",
              help="top of the vatools tree (default: the current directory)")
@click.option("--extra-source", "extra_sources", multiple=True, type=_DIR, metavar="DIR",
              help="another source package dir to build and publish (repeatable)")
@common.debug_option()
def build_handler(dir: Path, suites: tuple[str, ...], key_dir: Path, top: Path,
                  extra_sources: tuple[Path, ...]) -> int:
    from vatools.packaging.repo import build_repository

    build_repository(dir, top=top, suites=list(suites) or list(DEFAULT_SUITES),
                     key_dir=key_dir.expanduser(), extra_sources=list(extra_sources), progress=_say)
    return 0


@repo.command(
    "debs",
    short_help="build source dirs into OUT (no repository)",
    help="Build each Debian source directory SRC with dpkg-buildpackage (in a chroot of\n"
    "--suite where its Build-Depends need one) and put the debs into OUT. Nothing is published.",
    epilog="example:\n  vatools repo debs build/debs . appliances/dokuwiki-appliance",
)
@click.argument("out", metavar="OUT", cls=common.Arg, type=_DIR, help="directory for the .debs")
@click.argument("sources", metavar="SRC", cls=common.Arg, type=_DIR, nargs=-1, required=True,
                help="Debian source directories to build")
@click.option("--suite", metavar="SUITE", help="suite for packages built in a chroot")
@common.debug_option()
def debs_handler(out: Path, sources: tuple[Path, ...], suite: str | None) -> int:
    from vatools.packaging.build import build_package

    for source in sources:
        build_package(source, out, suite=suite, progress=_say)
    return 0


def _say(line: str) -> None:
    print(line, flush=True)
