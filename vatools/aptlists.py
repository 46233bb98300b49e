"""Names from apt's package lists, read fast enough for shell completion (a TAB press).

Reading apt's cache with python-apt takes most of a second where no pkgcache.bin is kept;
scanning the Packages files under /var/lib/apt/lists for the few stanzas that provide
virtual-appliance takes milliseconds. Lists stored compressed with a format the standard
library cannot read (lz4, zstd: `Acquire::GzipIndexes`) fall back to the apt cache.

>>> text = b"Package: a\\nProvides: virtual-appliance\\n\\nPackage: b\\nDepends: virtual-appliance\\n"
>>> sorted(providers(text, b"virtual-appliance"))
['a']
>>> sorted(names_with_prefix(text + b"\\nPackage: ab\\n", "a"))
['a', 'ab']
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
from collections.abc import Callable, Iterator
from typing import Any
from pathlib import Path

from vatools.appliance import VIRTUAL_PACKAGE
from vatools.target import Target

_OPENERS: dict[str, Callable[[Path], bytes]] = {
    "": Path.read_bytes,
    ".gz": lambda p: gzip.decompress(p.read_bytes()),
    ".xz": lambda p: lzma.decompress(p.read_bytes()),
    ".bz2": lambda p: bz2.decompress(p.read_bytes()),
}
_UNREADABLE = {".lz4", ".zst", ".lzma"}  # compressions the standard library cannot read


def appliance_names(target: Target) -> list[str]:
    """The packages that provide virtual-appliance in the target's apt lists, sorted."""
    texts = _lists(target)
    if texts is None:
        return _from_cache(target, _cache_providers)
    return sorted({name for text in texts for name in providers(text, VIRTUAL_PACKAGE.encode())})


def package_names(target: Target, prefix: str) -> list[str]:
    """The package names starting with prefix in the target's apt lists, sorted."""
    texts = _lists(target)
    if texts is None:
        return _from_cache(target, lambda cache: [p.name for p in cache.packages
                                                  if p.name.startswith(prefix) and p.has_versions])
    return sorted({name for text in texts for name in names_with_prefix(text, prefix)})


def providers(text: bytes, virtual: bytes) -> Iterator[str]:
    """The Package of every stanza whose Provides line names virtual."""
    at = text.find(virtual)
    while at >= 0:
        line_start = text.rfind(b"\n", 0, at) + 1
        if text.startswith(b"Provides:", line_start):
            stanza = max(text.rfind(b"\n\n", 0, at), -1) + 1
            match = re.compile(rb"^Package: *(\S+)", re.M).search(text, stanza, at)
            if match:
                yield match.group(1).decode()
        at = text.find(virtual, at + len(virtual))


def names_with_prefix(text: bytes, prefix: str) -> Iterator[str]:
    pattern = re.compile(rb"^Package: *(" + re.escape(prefix.encode()) + rb"\S*)", re.M)
    return (match.group(1).decode() for match in pattern.finditer(text))


def _lists(target: Target) -> list[bytes] | None:
    """The text of every Packages list, or None when one cannot be read here."""
    texts = []
    for path in sorted(target.path("/var/lib/apt/lists").glob("*_Packages*")):
        suffix = path.name.partition("_Packages")[2]
        opener = _OPENERS.get(suffix)
        if opener is None:
            if suffix in _UNREADABLE:
                return None
            continue  # not a list (e.g. a .diff_Index)
        try:
            texts.append(opener(path))
        except (OSError, EOFError, lzma.LZMAError):
            continue
    return texts


def _from_cache(target: Target, names: Callable[[Any], list[str]]) -> list[str]:
    import apt_pkg

    from vatools import aptq

    aptq.configure(target)
    cache = apt_pkg.Cache(None)
    return sorted(set(names(cache)))


def _cache_providers(cache: Any) -> list[str]:
    try:
        virtual = cache[VIRTUAL_PACKAGE]
    except KeyError:
        return []
    return [provider[0] for provider in virtual.provides_list]
