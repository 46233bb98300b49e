"""What every vatools command shares: click classes whose help keeps its layout, the global
options --root, --debug and --json, and turning errors into exit codes.

The global options can be given before or after a sub-command (`vatools --debug backup
verify X` and `vatools backup verify --debug X`): they are not passed to the callbacks but
kept in one `Settings` per command line, read with `settings()`. Works with click 8.1
(bookworm) and 8.2 (trixie): only public API that both have.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

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
  10   --host: the host cannot be reached
  11   --host: login refused (key, user or host key)
  12   --host: not root on the host, and sudo -n is not allowed
  13   --host: the connection broke during the command (the host's state is unknown)
  70   internal error (a bug in vatools)
  130  interrupted before any change
"""

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# Modules from Debian packages that only Debian's own Python has: a missing one means the wrong
# interpreter runs vatools, not a bug.
DEBIAN_MODULES = {
    "apt": "python3-apt",
    "apt_pkg": "python3-apt",
    "apt_inst": "python3-apt",
    "aptsources": "python3-apt",
    "debian": "python3-debian",
    "yaml": "python3-yaml",
}

F = TypeVar("F", bound=Callable[..., Any])


class Settings:
    """The global options of one command line, wherever they were given.

    (A plain class: a dataclass costs valist --installed a millisecond at start.)"""

    def __init__(self) -> None:
        self.root: Path | None = None
        self.debug = False
        self.json = False


def settings(ctx: click.Context | None = None) -> Settings:
    """The global options of the command line being run (shared by its group and command)."""
    ctx = ctx or click.get_current_context()
    found: Settings = ctx.meta.setdefault("vatools.settings", Settings())
    return found


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    # A later (sub-command) value wins; an absent option leaves an earlier one alone.
    if value is not None and value is not False and param.name:
        setattr(settings(ctx), param.name, value)



class _PathType(click.ParamType):
    """A path, completed by the shell as a file or a directory, and not checked here: the
    library checks it and names what is wrong, with the exit code the commands always had."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = kind

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        return Path(value)

    def shell_complete(self, ctx: click.Context, param: click.Parameter,
                       incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(incomplete, type=self.kind)]


FILE = _PathType("file")
DIR = _PathType("dir")


def root_option(
    help: str = "act on the Debian tree in DIR (a chroot or an image tree) instead of this system",
) -> Callable[[F], F]:
    return click.option(
        "--root", metavar="DIR", type=DIR,
        expose_value=False, callback=_remember, help=help,
    )


def debug_option(help: str = "show the commands run, and tracebacks (never secrets)") -> Callable[[F], F]:
    return click.option("--debug", is_flag=True, expose_value=False, callback=_remember, help=help)


def json_option(help: str) -> Callable[[F], F]:
    return click.option("--json", is_flag=True, expose_value=False, callback=_remember, help=help)


def version_option(prog: str) -> Callable[[F], F]:
    return click.version_option(
        __version__, "--version", prog_name=prog, message="%(prog)s %(version)s",
        help="print the version and exit",
    )


def host_options(repository: bool = False) -> Callable[[F], F]:
    """--host [USER@]HOST[:PORT]: run the command on that server over ssh; with `repository`,
    also --repository URL (repeatable) and --keyring FILE to bootstrap a fresh server."""

    def add(function: F) -> F:
        if repository:
            function = click.option(
                "--keyring", metavar="FILE", type=FILE,
                help="with --host: the repository's public key (binary .gpg or armored .asc)",
            )(function)
            function = click.option(
                "--repository", "repositories", metavar="URL", multiple=True,
                help="with --host: first add this apt repository (a flat one, as `vatools repo"
                " build` makes; {suite} becomes the host's release) and install vatools"
                " from it (repeatable)",
            )(function)
        return click.option(
            "--host", metavar="[USER@]HOST[:PORT]",
            help="run on that server over ssh (your ssh config, agent and known_hosts)",
        )(function)

    return add


class Arg(click.Argument):
    """An argument with a help text (listed under "arguments:"), or hidden from the usage."""

    def __init__(self, param_decls: Sequence[str], help: str | None = None, hidden: bool = False,
                 **attrs: Any) -> None:
        super().__init__(param_decls, **attrs)
        self.help = help
        self.hidden = hidden

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        return [] if self.hidden else super().get_usage_pieces(ctx)


def _write_raw(formatter: click.HelpFormatter, text: str) -> None:
    """Write text as it is laid out (examples, tables), indented like click's paragraphs."""
    formatter.write_paragraph()
    with formatter.indentation():
        for line in text.rstrip("\n").splitlines():
            formatter.write(f"{'':>{formatter.current_indent}}{line}\n" if line else "\n")


class _RawHelp:
    """Help text and epilog kept as written; arguments listed; the exit status table last."""

    help: str | None
    epilog: str | None
    params: list[click.Parameter]

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.help = "show this help and exit"  # in the voice of the other options
        return option  # type: ignore[no-any-return]

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.help:
            _write_raw(formatter, self.help)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (p.human_readable_name + ("..." if p.nargs == -1 else ""), p.help or "")
            for p in self.params
            if isinstance(p, Arg) and p.help and not p.hidden
        ]
        if rows:
            with formatter.section("Arguments"):
                formatter.write_dl(rows)
        super().format_options(ctx, formatter)  # type: ignore[misc]

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _write_raw(formatter, (self.epilog + "\n\n" if self.epilog else "") + EXIT_STATUS_HELP)


def _accepts(command: click.Command, name: str) -> bool:
    return any(p.name == name for p in command.params)


class Command(_RawHelp, click.Command):
    """A vatools command: its callback returns the exit code; errors become one line and a hint."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", dict(CONTEXT_SETTINGS))
        super().__init__(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        given = settings(ctx)
        for name in ("root", "json"):
            if getattr(given, name) and not _accepts(self, name):
                raise click.UsageError(f"--{name} does not apply to '{ctx.command_path}'", ctx)
        return guarded(ctx, lambda: click.Command.invoke(self, ctx))


class Group(_RawHelp, click.Group):
    """A vatools command group; a missing sub-command is a usage error (exit 2), as in click 8.2."""

    command_class = Command

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", dict(CONTEXT_SETTINGS))
        kwargs.setdefault("no_args_is_help", False)
        super().__init__(*args, **kwargs)


Group.group_class = Group


def command(name: str, help: str, short_help: str | None = None, epilog: str | None = None) -> Callable[[Callable[..., int]], Command]:
    """`@command(...)`: a vatools command whose callback returns its exit code."""
    return click.command(name, cls=Command, help=help, short_help=short_help, epilog=epilog)  # type: ignore[return-value]


def group(name: str, help: str, short_help: str | None = None, epilog: str | None = None) -> Callable[[Callable[..., Any]], Group]:
    return click.group(name, cls=Group, help=help, short_help=short_help, epilog=epilog)  # type: ignore[return-value]


def target() -> Target:
    """The system to act on: this one, or the tree given with --root (checked)."""
    root = settings().root
    if root is None:
        return Target()
    root = root.resolve()
    if not (root / "var/lib/dpkg/status").is_file():
        raise UsageError(
            f"--root {root}: not a Debian system tree (no var/lib/dpkg/status)",
            hint="give the top directory of a chroot or image tree",
        )
    return Target(root)


def run(command: click.Command, prog: str, argv: Sequence[str] | None = None) -> int:
    """Parse argv (default: sys.argv) and run the command; returns the exit code.

    Usage errors are one line and a hint, exit status 2, like every other error."""
    try:
        return int(command.main(args=list(argv) if argv is not None else None, prog_name=prog,
                                standalone_mode=False) or 0)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else prog
        _error(prog, exc.format_message(), f"see '{where} --help'")
        return int(ExitCode.USAGE)
    except click.Abort:  # Ctrl-C while click itself runs (parsing, completion)
        print(f"\n{prog}: interrupted; nothing was changed", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        _error(prog, exc.format_message(), None)
        return int(ExitCode.USAGE)


def _error(prog: str, message: str, hint: str | None) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr)
    if hint:
        print(f"{prog}: hint: {hint}", file=sys.stderr)


def missing_module(exc: ModuleNotFoundError) -> VatoolsError | None:
    """A module only Debian's Python has is missing: say which interpreter runs, and what to use."""
    name = (exc.name or "").partition(".")[0]
    package = DEBIAN_MODULES.get(name)
    if package is None:
        return None
    return VatoolsError(
        f"{sys.executable} (Python {sys.version.split()[0]}) has no module {name!r}:"
        f" vatools needs Debian's /usr/bin/python3 with {package}",
        hint=f"run it with /usr/bin/python3 (apt-get install {package})",
    )


def guarded(ctx: click.Context, call: Callable[[], Any]) -> int:
    """Run a command: a VatoolsError becomes one line, a hint and its exit code."""
    prog = ctx.find_root().info_name or "vatools"
    debug = settings(ctx).debug
    if debug:
        import logging  # only here: valist --installed must start fast

        logging.basicConfig(level=logging.DEBUG, format=f"{prog}: %(message)s")
    try:
        return int(call() or 0)
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise
    except VatoolsError as exc:
        return _report(prog, exc, debug)
    except ModuleNotFoundError as exc:
        wrong_python = missing_module(exc)
        if wrong_python is None:
            return _internal(prog, debug)
        return _report(prog, wrong_python, debug)
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; nothing was changed", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # `valist | head`: not an error; keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitCode.OK)
    except Exception:
        return _internal(prog, debug)


def _report(prog: str, exc: VatoolsError, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc()
    _error(prog, exc.message, exc.hint)
    return int(exc.exit_code)


def _internal(prog: str, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc()
        print(f"{prog}: internal error (a bug in vatools): the traceback is above", file=sys.stderr)
    else:
        print(f"{prog}: internal error (a bug in vatools); run again with --debug for the traceback",
              file=sys.stderr)
    return int(ExitCode.INTERNAL)


def require_root(prog: str) -> None:
    if os.geteuid() != 0:
        raise VatoolsError(f"{prog} must run as root: it installs packages", hint=f"sudo {prog} ...")
