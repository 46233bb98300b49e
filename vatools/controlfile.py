"""Debian control data (dpkg's status, Packages indexes, DEBIAN/control), read fast and whole.

Debian policy (5.1) lets a field continue over several lines: each continuation line starts
with a space or a tab. "Folded" fields (Provides, Depends, our whitespace-separated
`Vatools-*` fields) mean the same with or without the breaks; "multiline" ones (Description)
keep them. The reader keeps a value as python-debian's deb822 does (first line stripped, then
"\\n" and each continuation line as written), so that every consumer that splits on commas or
whitespace reads a folded field like a one-line one, and nothing is silently cut at the first
line.

Hand-written instead of deb822 because `valist --installed` parses dpkg's whole status file on
every run (deb822 takes ten times as long on it).

>>> text = ("Package: wiki-appliance\\nProvides: foo,\\n virtual-appliance (= 1.0)\\n"
...         "Vatools-Backup-Data: /var/lib/wiki\\n /srv/wiki\\n\\n\\nPackage: b\\n")
>>> [p["Package"] for p in parse_paragraphs(text)]
['wiki-appliance', 'b']
>>> first = next(parse_paragraphs(text))
>>> first["Vatools-Backup-Data"].split()
['/var/lib/wiki', '/srv/wiki']
>>> relation_names(first["Provides"])
('foo', 'virtual-appliance')
"""

from __future__ import annotations

import re
from typing import Iterator

_NAME_END = re.compile(r"[\s(\[<:]")


def parse_paragraphs(text: str) -> Iterator[dict[str, str]]:
    """The paragraphs of deb822 text, each field with its continuation lines.

    Blank (or whitespace-only) lines separate paragraphs; comment lines ("#" in the first
    column, allowed in debian/control) are skipped; a continuation line before any field is
    ignored, as there is no field it could belong to.
    """
    para: dict[str, str] = {}
    key = ""
    for line in text.split("\n"):
        if not line:
            if para:
                yield para
                para = {}
            continue
        first = line[0]
        if first == " " or first == "\t":  # tested first: cheaper than isspace() on every line
            if line.isspace():
                if para:
                    yield para
                    para = {}
            elif key in para:
                para[key] += "\n" + line
        elif first != "#":
            key, _, value = line.partition(":")
            para[key] = value.strip()
    if para:
        yield para


def relation_names(value: str) -> tuple[str, ...]:
    """The package names of a relationship field (Provides, Depends...), alternatives included,
    without versions, architecture qualifiers or restrictions; folded lines are fine.

    >>> relation_names("a (>= 1), b:any | c [amd64],\\n  d <!nocheck>, ")
    ('a', 'b', 'c', 'd')
    """
    names = []
    for group in value.split(","):
        for alternative in group.split("|"):
            name = _NAME_END.split(alternative.strip(), maxsplit=1)[0]
            if name:
                names.append(name)
    return tuple(names)


def first_names(value: str) -> tuple[str, ...]:
    """The first alternative's package name of each relation (what a Depends installs).

    >>> first_names("wikiengine (>= 2) | other, apache2:any,\\n php")
    ('wikiengine', 'apache2', 'php')
    """
    names = []
    for group in value.split(","):
        name = _NAME_END.split(group.split("|")[0].strip(), maxsplit=1)[0]
        if name:
            names.append(name)
    return tuple(names)
