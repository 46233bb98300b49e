"""The click command tree against the man pages, and every command's --help.

Walks every command of vainstall, valist and vatools, with every option, so that an option
added, renamed or removed in the code without the man page (or the other way round) fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from vatools.cli import common
from vatools.cli.main import main as vatools_main
from vatools.cli.main import vatools
from vatools.cli.vainstall import main as vainstall_main
from vatools.cli.vainstall import vainstall
from vatools.cli.valist import main as valist_main
from vatools.cli.valist import valist

MAN = Path(__file__).resolve().parents[2] / "docs" / "man"
PAGES = {"vainstall": MAN / "vainstall.8", "valist": MAN / "valist.8", "vatools": MAN / "vatools.1"}
MAINS = {"vainstall": vainstall_main, "valist": valist_main, "vatools": vatools_main}
OPTION = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")


def walk(command: click.Command, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = [*walk(vainstall, ("vainstall",)), *walk(valist, ("valist",)), *walk(vatools, ("vatools",))]
IDS = [" ".join(path) for path, _ in COMMANDS]


def plain(roff: str) -> str:
    """A roff line as read: no macro name, fonts or escapes."""
    text = re.sub(r"\\f[BIRP]", "", roff)
    for escape, char in (("\\-", "-"), ("\\(dq", '"'), ("\\(ti", "~"), ("\\(aq", "'"), ("\\&", ""),
                         ("\\e", "\\")):
        text = text.replace(escape, char)
    text = re.sub(r"^\.[A-Z]+\s*", "", text)
    return text.replace('"', " ")


class Section:
    def __init__(self, heading: str) -> None:
        self.heading = heading
        self.lines: list[str] = []
        self.tags: list[str] = []  # the lines that name what a .TP paragraph describes

    @property
    def text(self) -> str:
        return "\n".join([self.heading, *self.lines])

    def defined(self) -> set[str]:
        return {option for tag in self.tags for option in OPTION.findall(tag)}

    def mentioned(self) -> set[str]:
        return set(OPTION.findall(self.text))


def sections(page: Path) -> list[Section]:
    """The .SH and .SS sections of a man page, as plain text."""
    found: list[Section] = []
    tag_next = False
    for line in page.read_text().splitlines():
        if line.startswith((".SH", ".SS")):
            found.append(Section(plain(line).strip()))
            tag_next = False
        elif line == ".TP":
            tag_next = True
        elif found and not line.startswith('.\\"'):
            text = plain(line)
            found[-1].lines.append(text)
            if tag_next:
                found[-1].tags.append(text)
                tag_next = False
    return found


def section(page: Path, heading: str) -> Section:
    return next(s for s in sections(page) if s.heading == heading)


def command_section(path: tuple[str, ...]) -> Section:
    """Where a command's options are documented: OPTIONS of its page, or its COMMANDS subsection."""
    page = PAGES[path[0]]
    if len(path) == 1 or isinstance(dict(COMMANDS)[path], click.Group):
        return section(page, "OPTIONS")
    for candidate in sections(page):
        words = candidate.heading.split()
        if words[0] == path[1] and (len(path) == 2 or path[2] in words[1].split("|")):
            return candidate
    raise AssertionError(f"{PAGES[path[0]].name} has no section for {' '.join(path)}")


def options(command: click.Command) -> list[click.Option]:
    """Every option, with the --help that click adds."""
    ctx = click.Context(command, info_name=command.name, **command.context_settings)
    return [p for p in command.get_params(ctx) if isinstance(p, click.Option)]


def names(option: click.Option) -> list[str]:
    return [*option.opts, *option.secondary_opts]


def page_level(option: click.Option) -> bool:
    """--help and --version are documented once per page, in OPTIONS."""
    return option.name in ("help", "version")


@pytest.mark.parametrize("path, command", COMMANDS, ids=IDS)
def test_every_option_is_in_the_man_page(path: tuple[str, ...], command: click.Command) -> None:
    page = PAGES[path[0]]
    where = command_section(path)
    for option in options(command):
        place = section(page, "OPTIONS") if page_level(option) else where
        for name in names(option):
            assert name in place.defined() | (set(OPTION.findall(place.heading)) if len(path) > 2 else set()), (
                f"{page.name}, {place.heading}: {' '.join(path)} {name} is not documented")


@pytest.mark.parametrize("path, command", COMMANDS, ids=IDS)
def test_metavars_and_choices_match_the_man_page(path: tuple[str, ...], command: click.Command) -> None:
    where = command_section(path)
    text = re.sub(r"\s+", " ", where.text)
    for option in options(command):
        if option.is_flag or option.count or page_level(option):
            continue
        if isinstance(option.type, click.Choice):
            word = "|".join(option.type.choices)
        else:
            word = re.match(r"\W*(\w+)", option.metavar or "").group(1)  # type: ignore[union-attr]
        shown = (rf"{re.escape(name)}[\s\[\]|=]+{re.escape(word)}\b" for name in names(option))
        assert any(re.search(pattern, text) for pattern in shown), (
            f"{PAGES[path[0]].name}, {where.heading}: {option.opts[0]} is not shown with {word}")


def test_every_option_the_man_pages_define_exists() -> None:
    """The other way round: what a man page describes as an option, the command has."""
    for prog, page in PAGES.items():
        known = {prog: set[str]()}
        for path, command in COMMANDS:
            if path[0] == prog:
                known[prog] |= {name for option in options(command) for name in names(option)}
        for part in sections(page):
            unknown = part.defined() - known[prog]
            assert not unknown, f"{page.name}, {part.heading}: {sorted(unknown)} are no options"
    # ... and per vatools command: each subsection defines only its own commands' options
    for part in sections(PAGES["vatools"]):
        owners = [(path, command) for path, command in COMMANDS
                  if len(path) > 1 and path[0] == "vatools" and not isinstance(command, click.Group)
                  and part.heading.split()[0] == path[1]
                  and (len(path) == 2 or path[2] in part.heading.split()[1].split("|"))]
        if owners:
            mine = {n for _, command in owners for option in options(command) for n in names(option)}
            assert part.defined() <= mine, f"vatools.1, {part.heading}: {part.defined() - mine}"


def test_every_command_has_a_man_page_section() -> None:
    for path, _ in COMMANDS:
        command_section(path)


@pytest.mark.parametrize("path, command", COMMANDS, ids=IDS)
def test_help_renders_with_the_exit_status_table(path: tuple[str, ...], command: click.Command,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert MAINS[path[0]]([*path[1:], "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: {' '.join(path)} ")
    flat = re.sub(r"\s+", " ", out)
    assert re.sub(r"\s+", " ", common.EXIT_STATUS_HELP).strip() in flat
    assert command.help and command.help.split()[0] in out
    for option in options(command):
        assert option.opts[-1] in out
        assert option.help, f"{' '.join(path)} {option.opts[-1]} has no help text"
    for argument in command.params:
        if isinstance(argument, common.Arg) and not argument.hidden:
            assert argument.help, f"{' '.join(path)} {argument.human_readable_name} has no help text"
            assert argument.human_readable_name in out
