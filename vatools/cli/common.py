"""What every vatools command shares: --root, --debug, and turning errors into exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable

from vatools import __version__
from vatools.errors import ExitCode, UsageError, VatoolsError
from vatools.target import Target

EXIT_STATUS_HELP = """\
exit status:
  0    success
  1    a check found errors
  2    usage error
  3    refused before any change: the system is as it was
  4    failed after changes began; everything was rolled back
  5    failed, and the rollback is incomplete: the message names the repair command
  70   internal error (a bug in vatools)
  130  interrupted before any change
"""


def parser(prog: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=(epilog + "\n" if epilog else "") + EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def add_target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root",
        metavar="DIR",
        type=Path,
        help="act on the Debian tree in DIR (a chroot or an image tree) instead of this system",
    )
    p.add_argument(
        "--debug", action="store_true", help="show the commands run, and tracebacks (never secrets)"
    )


def target(args: argparse.Namespace) -> Target:
    root: Path | None = getattr(args, "root", None)
    if root is None:
        return Target()
    root = root.resolve()
    if not (root / "var/lib/dpkg/status").is_file():
        raise UsageError(
            f"--root {root}: not a Debian system tree (no var/lib/dpkg/status)",
            hint="give the top directory of a chroot or image tree",
        )
    return Target(root)


def main_wrapper(prog: str, handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command's handler: a VatoolsError becomes one line, a hint and its exit code."""
    debug = bool(getattr(args, "debug", False))
    if debug:
        import logging  # only here: valist --installed must start fast

        logging.basicConfig(level=logging.DEBUG, format=f"{prog}: %(message)s")
    try:
        return handler(args)
    except VatoolsError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"{prog}: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"{prog}: hint: {exc.hint}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; nothing was changed", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # `valist | head`: not an error; keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitCode.OK)
    except Exception:
        if debug:
            raise
        print(
            f"{prog}: internal error (a bug in vatools); run again with --debug for the traceback",
            file=sys.stderr,
        )
        return int(ExitCode.INTERNAL)


def require_root(prog: str) -> None:
    if os.geteuid() != 0:
        raise VatoolsError(f"{prog} must run as root: it installs packages", hint=f"sudo {prog} ...")
