"""Seed files: debconf-set-selections input, parsed exactly as debconf parses it, and checked.

A seed line is ``OWNER QUESTION TYPE VALUE``; ``#`` starts a comment line; a line ending in a
backslash continues on the next one (the backslash is dropped, nothing is inserted); the value
is everything after the single blank that follows the type.  A line whose type is ``seen`` sets
that flag of the question instead of its value.

>>> seed = parse_seed("# wiki\\nwiki wiki/title string My \\\\\\n Wiki\\nwiki wiki/title seen false\\n", "x.seed")
>>> [(s.question, s.type, s.value, str(s.location)) for s in seed.selections]
[('wiki/title', 'string', 'My  Wiki', 'x.seed:2'), ('wiki/title', 'seen', 'false', 'x.seed:4')]
>>> seed.answer("wiki/title").value
'My  Wiki'
>>> [str(p) for p in check_syntax(parse_seed("a a/b bool yes\\n", "y.seed"))]
["y.seed:1: error: unknown type 'bool' for a/b (debconf-set-selections would skip the line)"]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

from vatools.errors import VatoolsError

VALUE_TYPES = ("select", "multiselect", "string", "boolean", "password", "note", "text", "title")
FLAGS = ("seen",)

# debconf-set-selections' own pattern: three words, then one blank, then the value.
_LINE = re.compile(r"^\s*(\S+)\s+(\S+)\s+(\S+)(?:\s(.*))?$")


@dataclass(frozen=True)
class Location:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Selection:
    """One seed line: an answer to a question, or (type "seen") a flag of it."""

    owner: str
    question: str
    type: str
    value: str
    location: Location

    @property
    def is_flag(self) -> bool:
        return self.type in FLAGS

    def render(self) -> str:
        """The line as debconf-set-selections reads it (the value is taken verbatim)."""
        return f"{self.owner} {self.question} {self.type} {self.value}"


@dataclass(frozen=True)
class Problem:
    """Something wrong with a seed; errors stop vainstall, warnings are shown."""

    severity: str  # "error" or "warning"
    message: str
    location: Location | None = None
    hint: str | None = None
    code: str = ""  # a machine-readable kind, where callers act on it ("not-asked")

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.severity}: {self.message}"


@dataclass(frozen=True)
class Seed:
    """A parsed seed file. `syntax_problems` are lines debconf could not parse at all."""

    name: str
    selections: tuple[Selection, ...]
    syntax_problems: tuple[Problem, ...] = ()

    def answers(self) -> dict[str, Selection]:
        """The value lines, by question; a later line wins, as in debconf."""
        return {s.question: s for s in self.selections if not s.is_flag}

    def answer(self, question: str) -> Selection | None:
        return self.answers().get(question)

    def with_value(self, question: str, value: str, location: Location) -> Seed:
        """This seed with one answer changed (or added, when `location` says where from)."""
        for index, sel in enumerate(self.selections):
            if sel.question == question and not sel.is_flag:
                changed = replace(sel, value=value, location=location)
                rest = self.selections[:index] + (changed,) + self.selections[index + 1 :]
                return replace(self, selections=rest)
        raise KeyError(question)

    def with_selection(self, selection: Selection) -> Seed:
        return replace(self, selections=self.selections + (selection,))

    def without(self, questions: Iterable[str]) -> Seed:
        drop = set(questions)
        return replace(self, selections=tuple(s for s in self.selections if s.question not in drop))

    def render(self) -> str:
        """The seed as debconf-set-selections input: one line per selection, no comments."""
        return "".join(s.render() + "\n" for s in self.selections)


def parse_seed(text: str, name: str) -> Seed:
    """Parse seed text; lines that debconf-set-selections could not parse become problems."""
    selections: list[Selection] = []
    problems: list[Problem] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    index = 0
    while index < len(lines):
        start = index + 1
        line = lines[index].removesuffix("\r")
        index += 1
        while line.endswith("\\") and index < len(lines):
            line = line[:-1] + lines[index].removesuffix("\r")
            index += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        location = Location(name, start)
        if match is None:
            problems.append(
                Problem(
                    "error",
                    f"cannot parse {line.strip()!r}: a seed line is OWNER QUESTION TYPE VALUE",
                    location,
                    hint="for example: dokuwiki dokuwiki/wiki/title string My Wiki",
                )
            )
            continue
        owner, question, type_, value = match.groups()
        selections.append(Selection(owner, question, type_, value or "", location))
    return Seed(name, tuple(selections), tuple(problems))


def load_seed(path: Path) -> Seed:
    """Read and parse a seed file; an unreadable file is refused with its name."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VatoolsError(f"cannot read seed file {path}: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise VatoolsError(
            f"{path}:{line}: seed file is not valid UTF-8", hint="save it as UTF-8"
        ) from exc
    return parse_seed(text, str(path))


def check_syntax(seed: Seed) -> list[Problem]:
    """Problems visible from the seed alone: parse errors, unknown types, bad booleans, flags."""
    problems = list(seed.syntax_problems)
    seen_values: dict[str, Selection] = {}
    for sel in seed.selections:
        if sel.type not in VALUE_TYPES and sel.type not in FLAGS:
            problems.append(
                Problem(
                    "error",
                    f"unknown type {sel.type!r} for {sel.question}"
                    " (debconf-set-selections would skip the line)",
                    sel.location,
                    hint="types are: " + ", ".join(VALUE_TYPES) + ", or the flag 'seen'",
                )
            )
        elif sel.type in ("boolean", "seen") and sel.value not in ("true", "false"):
            problems.append(
                Problem(
                    "error",
                    f"{sel.question}: {sel.type} value must be true or false, not {sel.value!r}",
                    sel.location,
                )
            )
        if "\n" in sel.value:
            problems.append(Problem("error", f"{sel.question}: value spans lines", sel.location))
        if not sel.is_flag:
            earlier = seen_values.get(sel.question)
            if earlier is not None and earlier.value != sel.value:
                problems.append(
                    Problem(
                        "warning",
                        f"{sel.question} is answered again (first at line"
                        f" {earlier.location.line}); the later answer wins",
                        sel.location,
                    )
                )
            seen_values[sel.question] = sel
    return problems


def split_choices(text: str) -> list[str]:
    """Split a debconf Choices field or multiselect value: ", " separates, "\\," escapes a comma.

    >>> split_choices("a, b\\\\, c, d")
    ['a', 'b, c', 'd']
    >>> split_choices("")
    []
    """
    if not text.strip():
        return []
    parts = re.split(r"(?<!\\),\s*", text)
    return [part.replace("\\,", ",").strip() for part in parts]

