"""Seed files: debconf-set-selections input, parsed exactly as debconf parses it, and checked.

A seed line is ``OWNER QUESTION TYPE VALUE``; ``#`` starts a comment line; a line ending in a
backslash continues on the next one (the backslash is dropped, nothing is inserted); the value
is everything after the single blank that follows the type, trailing blanks included.  A line
whose type is ``seen`` sets that flag of the question instead of its value.

debconf-set-selections is Perl reading bytes, so a blank is only one of the six ASCII
characters space, tab, line feed, vertical tab, form feed and carriage return (one carriage
return at the end of each physical line is dropped).  A no-break space or any other Unicode
blank is part of a word to debconf: such a line is an error here, as is a value debconf would
store or hand back differently (see `value_hazard`).

>>> seed = parse_seed("# wiki\\nwiki wiki/title string My \\\\\\n Wiki\\nwiki wiki/title seen false\\n", "x.seed")
>>> [(s.question, s.type, s.value, str(s.location)) for s in seed.selections]
[('wiki/title', 'string', 'My  Wiki', 'x.seed:2'), ('wiki/title', 'seen', 'false', 'x.seed:4')]
>>> seed.answer("wiki/title").value
'My  Wiki'
>>> [str(p) for p in check_syntax(parse_seed("a a/b bool yes\\n", "y.seed"))]
["y.seed:1: error: unknown type 'bool' for a/b (debconf-set-selections would skip the line)"]
>>> nbsp = parse_seed("a a/b\\u00a0string yes\\n", "z.seed")
>>> [str(p) for p in check_syntax(nbsp)]  # doctest: +ELLIPSIS
["z.seed:1: error: U+00A0 (NO-BREAK SPACE) is not a blank to debconf-set-selections: ..."]
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator

from vatools.errors import VatoolsError

VALUE_TYPES = ("select", "multiselect", "string", "boolean", "password", "note", "text", "title")
FLAGS = ("seen",)

# What debconf-set-selections counts as a blank: Perl's \s on the bytes it reads, which is
# Python's \s under re.ASCII.  Every other Unicode blank (U+00A0, U+3000, U+001C ...) is part of
# a word to debconf.
ASCII_BLANKS = " \t\n\v\f\r"
# debconf-set-selections' own patterns: a line skipped as blank or comment; three words, then
# one blank, then the value (everything else, trailing blanks included).
_SKIPPED = re.compile(r"\s*(?:#|\Z)", re.ASCII)
_LINE = re.compile(r"\s*(\S+)\s+(\S+)\s+(\S+)(?:\s(.*))?", re.ASCII)
_UNICODE_BLANK = re.compile(r"[^\S \t\n\v\f\r]")


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
    """A parsed seed file. `syntax_problems`: lines debconf cannot parse, or ignores unexpectedly."""

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
    for start, line, continued in _logical_lines(text):
        location = Location(name, start)
        if _SKIPPED.match(line):
            problems.extend(_swallowed_by_comment(name, start, continued))
            continue
        match = _LINE.match(line)
        if match is None:
            problems.append(_unparsable(line, location))
            continue
        owner, question, type_, value = match.groups()
        selections.append(Selection(owner, question, type_, value or "", location))
    return Seed(name, tuple(selections), tuple(problems))


def _logical_lines(text: str) -> Iterator[tuple[int, str, list[str]]]:
    """(first line number, joined line, the physical lines continuing it), as debconf joins them.

    Only a line feed ends a physical line; one carriage return before it is dropped; a line
    that then ends in a backslash loses it and takes the next physical line, if there is one.
    """
    physical = text.split("\n")
    if physical and physical[-1] == "":
        physical.pop()
    index = 0
    while index < len(physical):
        start = index + 1
        line = physical[index].removesuffix("\r")
        index += 1
        continued: list[str] = []
        while line.endswith("\\") and index < len(physical):
            continued.append(physical[index].removesuffix("\r"))
            line = line[:-1] + continued[-1]
            index += 1
        yield start, line, continued


def _swallowed_by_comment(name: str, start: int, continued: list[str]) -> list[Problem]:
    """Seed lines that a comment ending in a backslash turns into comment: debconf ignores them."""
    return [
        Problem(
            "error",
            f"this line continues the comment on line {start}, which ends in a backslash,"
            " so debconf-set-selections ignores it",
            Location(name, start + offset),
            hint=f"remove the backslash at the end of line {start + offset - 1}",
        )
        for offset, line in enumerate(continued, start=1)
        if not _SKIPPED.match(line)
    ]


def _unparsable(line: str, location: Location) -> Problem:
    message = f"cannot parse {line.strip(ASCII_BLANKS)!r}: a seed line is OWNER QUESTION TYPE VALUE"
    blank = _UNICODE_BLANK.search(line)
    if blank:
        message += f"; {_describe(blank.group())} is not a blank to debconf-set-selections"
    return Problem(
        "error",
        message,
        location,
        hint="for example: dokuwiki dokuwiki/wiki/title string My Wiki"
        + (f" (replace {_describe(blank.group())} with a space or a tab)" if blank else ""),
    )


def _describe(char: str) -> str:
    """U+00A0 (NO-BREAK SPACE): how an error names an invisible character."""
    code = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "")
    return f"{code} ({name})" if name else code


def value_hazard(value: str) -> str | None:
    """Why debconf would not hand this value back as written (None: it would).

    vatools passes a seed to debconf-set-selections one line per answer, and debconf keeps
    values in a file where a backslash followed by n stands for a line break.

    >>> value_hazard("C:\\\\new")
    'a backslash followed by n in a value is read back by debconf as a line break'
    >>> value_hazard("My Wiki  ") is None
    True
    """
    found = _value_hazard(value)
    return found[0] if found else None


def _value_hazard(value: str) -> tuple[str, str] | None:
    """(what goes wrong, what to do) for a value debconf cannot take as it is."""
    if "\n" in value:
        return "value spans lines", "a seed value is one line"
    if "\\n" in value:
        return (
            "a backslash followed by n in a value is read back by debconf as a line break",
            "debconf has no way to store a backslash followed by n: change the value",
        )
    if value.endswith("\r"):
        return (
            "the value ends in a carriage return, which debconf-set-selections drops at the end"
            " of a line",
            "remove it (save the seed with Unix line endings)",
        )
    if value.endswith("\\"):
        return (
            "the value ends in a backslash, which debconf-set-selections reads as 'continued on"
            " the next line'",
            "debconf has no way to end a value with a backslash: change the value",
        )
    return None


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
        misread = _misread_words(sel)
        if misread is not None:
            problems.append(misread)
            continue
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
        hazard = _value_hazard(sel.value)
        if hazard is not None:
            message, hint = hazard
            problems.append(Problem("error", f"{sel.question}: {message}", sel.location, hint=hint))
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
    # In file order, as an editor shows them.
    return sorted(problems, key=lambda p: p.location.line if p.location else 0)


def _misread_words(sel: Selection) -> Problem | None:
    """A line whose words debconf-set-selections reads otherwise than its author meant."""
    words = f"owner {sel.owner!r}, question {sel.question!r}, type {sel.type!r}"
    blank = _UNICODE_BLANK.search(sel.owner + sel.question + sel.type)
    if blank is not None:
        skipped = sel.type not in VALUE_TYPES and sel.type not in FLAGS
        comment = _UNICODE_BLANK.sub("", sel.owner).startswith("#")
        return Problem(
            "error",
            f"{_describe(blank.group())} is not a blank to debconf-set-selections: it reads"
            + (" this comment as a seed line, " if comment else " ")
            + words
            + (" and skips the line" if skipped else ""),
            sel.location,
            hint="replace it with a space or a tab"
            + (" (a comment line starts with '#' after spaces or tabs only)" if comment else ""),
        )
    # Perl takes the word "0" for false: as a question it stops debconf-set-selections
    # ("no template name specified") before it saves anything; as an owner it adds "unknown".
    if sel.question == "0" or sel.owner == "0":
        return Problem(
            "error",
            f"debconf-set-selections cannot take the word '0' as owner or question ({words})",
            sel.location,
            hint="use the package name as owner and the template name as question",
        )
    return None


# Debconf::Question's value_split and choices_split: ", " (a comma and blanks) separates,
# a backslash makes the comma or space after it plain.
_CHOICE_PARTS = re.compile(r"(\\[, ]|,\s+)", re.ASCII)


def split_choices(text: str) -> list[str]:
    """Split a debconf Choices field or multiselect value exactly as debconf does.

    A comma separates only when blanks follow it; a backslash before a comma or a space makes
    it plain; nothing is stripped; an empty last item is dropped.

    >>> split_choices("a, b\\\\, c, d")
    ['a', 'b, c', 'd']
    >>> split_choices("a,b,  c ")
    ['a,b', 'c ']
    >>> split_choices("")
    []
    """
    items: list[str] = []
    item = ""
    for index, part in enumerate(_CHOICE_PARTS.split(text)):
        if index % 2 == 0:
            item += part
        elif part.startswith("\\"):
            item += part[1]
        else:
            items.append(item)
            item = ""
    if item:
        items.append(item)
    return items
