"""Debian policy checks for what a packager types: package names, versions, maintainers,
synopses, dependency lists and service names.

Each check returns the (stripped) value or raises UsageError naming the option, the value and
what to do, so that `vatools new` refuses bad input before it writes anything.

>>> check_package_name("postfix-appliance")
'postfix-appliance'
>>> check_version("1.0+deb12", native=True)
'1.0+deb12'
>>> check_maintainer("Jane Doe <jane@example.org>")
'Jane Doe <jane@example.org>'
>>> [str(r) for r in parse_depends("postfix (>= 3.7), bsd-mailx | mailutils")]
['postfix (>= 3.7)', 'bsd-mailx | mailutils']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vatools.errors import UsageError

# Policy 5.6.1: lower case letters, digits, + - . ; at least two characters, alphanumeric first.
PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")

# Policy 5.6.12: [epoch:]upstream_version[-debian_revision].
_EPOCH = r"(?:[0-9]+:)?"
_UPSTREAM_NATIVE = r"[0-9][A-Za-z0-9.+~]*"  # no hyphen: a native version has no revision
_UPSTREAM = r"[0-9][A-Za-z0-9.+~-]*"
_REVISION = r"[A-Za-z0-9.+~]+"
NATIVE_VERSION = re.compile(_EPOCH + _UPSTREAM_NATIVE)
VERSION = re.compile(_EPOCH + "(?:" + _UPSTREAM + "-" + _REVISION + "|" + _UPSTREAM_NATIVE + ")")

# Policy 5.6.2: "Full Name <address>"; a comma would split the field (Uploaders-style lists).
MAINTAINER = re.compile(r"(?P<name>[^<>,@]*[^<>,@\s])\s+<(?P<address>[^<>\s@]+@(?P<domain>[^<>\s@]+))>")
DOMAIN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+")

# Relation operators of policy 7.1.
OPERATORS = ("<<", "<=", "=", ">=", ">>")
_RELATION = re.compile(
    r"(?P<name>[^\s(:]+)(?::(?P<arch>[a-z0-9-]+))?\s*(?:\(\s*(?P<op><<|<=|=|>=|>>)\s*(?P<version>[^\s)]+)\s*\))?"
)

# systemd unit names: letters, digits and :_.@- ; a ".service" suffix is optional.
SERVICE_NAME = re.compile(r"[A-Za-z0-9:_.@-]+")

SYNOPSIS_MAX = 80  # lintian: synopsis-too-long


def check_package_name(name: str, what: str = "package name") -> str:
    name = name.strip()
    if not PACKAGE_NAME.fullmatch(name):
        raise UsageError(
            f"{what} {name!r} is not a valid Debian package name",
            hint="use at least two characters: lower-case letters, digits, '+', '-' and '.',"
            " starting with a letter or digit (for example: postfix-appliance)",
        )
    return name


def check_version(version: str, native: bool = True, what: str = "version") -> str:
    """A Debian version; a native package's version has no "-revision" (3.0 (native) refuses it)."""
    version = version.strip()
    if native and "-" in version.partition(":")[2 if ":" in version else 0]:
        raise UsageError(
            f"{what} {version!r} has a Debian revision, but appliances are native packages",
            hint="drop the '-…' part (for example: 1.0 or 1.0+deb12)",
        )
    pattern = NATIVE_VERSION if native else VERSION
    if not pattern.fullmatch(version):
        raise UsageError(
            f"{what} {version!r} is not a valid Debian version",
            hint="start with a digit and use only letters, digits, '.', '+' and '~'"
            " (an epoch 'N:' in front is allowed), for example: 1.0",
        )
    return version


def check_maintainer(text: str, what: str = "maintainer") -> str:
    text = " ".join(text.split())
    match = MAINTAINER.fullmatch(text)
    if not match:
        raise UsageError(
            f"{what} {text!r} is not of the form 'Full Name <address@domain>'",
            hint='for example: --maintainer "Jane Doe <jane@example.org>"'
            " (no comma in the name)",
        )
    domain = match["domain"]
    if not DOMAIN.fullmatch(domain) or domain.lower().startswith("localhost"):
        raise UsageError(
            f"{what} address {match['address']!r} has no usable mail domain",
            hint="give an address people can write to, for example jane@example.org",
        )
    if "." in match["name"]:
        # Policy 5.6.2: a full stop in the name breaks the field as an RFC 822 address.
        raise UsageError(
            f"{what} name {match['name']!r} contains a full stop",
            hint="write the name without '.', e.g. 'J Doe' instead of 'J. Doe'",
        )
    return text


def check_synopsis(text: str, package: str, what: str = "description") -> str:
    """A one-line synopsis as policy 3.4.1 and lintian want it."""
    text = " ".join(text.split())
    problem = None
    if not text:
        problem = "is empty"
    elif len(text) > SYNOPSIS_MAX:
        problem = f"is {len(text)} characters long (at most {SYNOPSIS_MAX})"
    elif text.lower().startswith(package.lower()):
        problem = "starts with the package name"
    elif text.lower() == package.replace("-", " ").lower():
        problem = "only repeats the package name"
    elif re.match(r"(a|an|the)\s", text, re.IGNORECASE):
        problem = "starts with an article"
    elif text.endswith(".") and not text.endswith("..."):
        problem = "ends with a full stop (a synopsis is a phrase, not a sentence)"
    if problem:
        raise UsageError(
            f"{what} {text!r} {problem}",
            hint='write a short phrase, for example: --description "mail server for a small office"',
        )
    return text


@dataclass(frozen=True)
class Relation:
    """One dependency: alternatives, each (name, operator, version), e.g. "a (>= 1) | b"."""

    alternatives: tuple[tuple[str, str | None, str | None], ...]

    @property
    def first_name(self) -> str:
        return self.alternatives[0][0]

    def __str__(self) -> str:
        parts = [name + (f" ({op} {version})" if op else "") for name, op, version in self.alternatives]
        return " | ".join(parts)


def parse_depends(text: str, what: str = "--depends") -> tuple[Relation, ...]:
    """A comma-separated dependency list (alternatives with '|', versions in parentheses)."""
    relations = []
    for item in text.split(","):
        if not item.strip():
            raise UsageError(
                f"{what} {text!r}: an empty entry",
                hint="separate package names with single commas: --depends postfix,bsd-mailx",
            )
        alternatives = []
        for alternative in item.split("|"):
            alternative = alternative.strip()
            match = _RELATION.fullmatch(alternative)
            if not match:
                raise UsageError(
                    f"{what}: cannot read {alternative!r} as a dependency",
                    hint="write PKG or PKG (>= VERSION), for example: postfix (>= 3.7)",
                )
            name = check_package_name(match["name"], f"{what} package name")
            version = match["version"]
            if version is not None:
                check_version(version, native=False, what=f"{what} version of {name}")
            alternatives.append((name, match["op"], version))
        relations.append(Relation(tuple(alternatives)))
    return tuple(relations)


def check_service(name: str) -> str:
    name = name.strip().removesuffix(".service")
    if not SERVICE_NAME.fullmatch(name):
        raise UsageError(
            f"service {name!r} is not a systemd unit name",
            hint="give the unit's name, for example: --services postfix,apache2",
        )
    return name
