"""dpkg's status file, read directly: the fast way to know what is installed.

Reading /var/lib/dpkg/status costs a few milliseconds, where opening apt's cache costs hundreds;
`valist --installed` and vainstall's before/after comparisons use this.  dpkg keeps entries of
packages that are not installed ("install ok not-installed", "deinstall ok config-files"): only
"install ok installed" counts as installed.  Fields continued over several lines (Provides,
Depends, Description, an appliance's Vatools-* fields) are read whole (vatools.controlfile).

>>> text = ("Package: a\\nStatus: install ok installed\\nVersion: 1\\nProvides: virtual-appliance\\n\\n"
...         "Package: b\\nStatus: unknown ok not-installed\\nProvides: virtual-appliance\\n")
>>> [p.name for p in parse_status(text) if p.installed and p.provides("virtual-appliance")]
['a']
>>> folded = "Package: c\\nStatus: install ok installed\\nProvides: x,\\n virtual-appliance\\n"
>>> next(parse_status(folded)).provides("virtual-appliance")
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable, Iterator

from vatools.controlfile import parse_paragraphs, relation_names
from vatools.target import Target

STATUS_FILE = "/var/lib/dpkg/status"


@dataclass(frozen=True)
class PackageStatus:
    name: str
    version: str
    status: str
    fields: dict[str, str] = field(compare=False, repr=False)

    @property
    def installed(self) -> bool:
        return self.status == "install ok installed"

    def provides(self, virtual: str) -> bool:
        return virtual in relation_names(self.fields.get("Provides", ""))

    @property
    def description(self) -> str:
        return self.fields.get("Description", "").split("\n", 1)[0]


Wanted = Callable[[Mapping[str, str]], bool]


def parse_status(text: str, wanted: Wanted | None = None) -> Iterator[PackageStatus]:
    """The paragraphs of a status file, multi-line fields whole; only the `wanted` ones when
    given (a test of the raw fields: cheaper than a PackageStatus for each of a thousand)."""
    for fields in parse_paragraphs(text):
        if "Package" in fields and (wanted is None or wanted(fields)):
            yield PackageStatus(
                fields["Package"], fields.get("Version", ""), fields.get("Status", ""), fields
            )


def read_status(target: Target, wanted: Wanted | None = None,
                mentions: str | None = None) -> list[PackageStatus]:
    """The target's status paragraphs (the `wanted` ones); given `mentions`, only paragraphs
    whose text holds that string are parsed at all (an empty line always ends a paragraph, so
    none is cut): `valist --installed` parses a handful of a thousand."""
    path = target.path(STATUS_FILE)
    if not path.exists():
        return []
    text = path.read_text("utf-8", "replace")
    if mentions is not None:
        text = "\n\n".join(chunk for chunk in text.split("\n\n") if mentions in chunk)
    return list(parse_status(text, wanted))


def installed_versions(target: Target) -> dict[str, str]:
    """"package:arch" -> version of the packages that are fully installed."""
    return _versions(target, lambda pkg: pkg.installed)


def present_versions(target: Target) -> dict[str, str]:
    """"package:arch" -> version of every package dpkg has anything of: installed, unpacked,
    half-configured, config files left... (apt and dpkg accept that spelling everywhere).

    A failed install leaves packages half-configured: they must count as present, or a
    rollback would not see them.
    """
    return _versions(target, lambda pkg: not pkg.status.endswith(" not-installed"))


def _versions(target: Target, keep: Callable[[PackageStatus], bool]) -> dict[str, str]:
    return {
        f"{pkg.name}:{pkg.fields.get('Architecture', 'all')}": pkg.version
        for pkg in read_status(target)
        if keep(pkg)
    }
