"""Templates shipped as package data: the files of a new appliance and the seed headers.

A template is a text file ending in ``.in`` whose ``{{key}}`` placeholders are replaced by
values; a ``{{key}}`` in a template's path is replaced too.  Other text, such as make's
``$$`` or debhelper's ``${misc:Depends}``, passes through untouched.

>>> render("Package: {{name}}\\nDepends: ${misc:Depends}\\n", {"name": "x-appliance"})
'Package: x-appliance\\nDepends: ${misc:Depends}\\n'
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Iterator, Mapping

PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")
SUFFIX = ".in"


def render(text: str, values: Mapping[str, str]) -> str:
    """Replace every {{key}}; a key without a value is a bug in the caller or the template."""

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"template placeholder {{{{{key}}}}} has no value")
        return values[key]

    return PLACEHOLDER.sub(value, text)


def read(name: str) -> str:
    """The text of a template, by its path below vatools/data ("seed-header.in")."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def render_data(template: str, /, **values: str) -> str:
    return render(read(template), values)


def tree(top: str) -> Iterator[tuple[str, str]]:
    """(relative path without .in, text) of every template below vatools/data/TOP, sorted."""

    def walk(node, prefix: str) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            path = f"{prefix}{child.name}"
            if child.is_dir():
                if child.name != "__pycache__":
                    yield from walk(child, path + "/")
            elif child.name.endswith(SUFFIX):
                yield path[: -len(SUFFIX)], child.read_text(encoding="utf-8")

    yield from walk(resources.files(__name__).joinpath(top), "")
