"""The safety rules for the tar members of a backup, applied before anything is written.

A member is accepted only if it is a directory, regular file, symlink or hard link below one
of the archive's roots, named in normal form, under a directory seen before it (so no
member can be written through a symlink or a file), seen once, without setuid (or setgid on
a file), with a hard link target seen before, and with a symlink target inside the backup's
roots -- or, for a link pointing elsewhere, exactly the link the target already has at that
path (a package's own link, such as dokuwiki's /var/lib/dokuwiki/inc -> /usr/share/dokuwiki/inc:
restoring it changes nothing). Without a target (`verify`) such links are listed, not refused.
The same checker runs in the verify pass and while staging (a restore's one pass).

Format 1 archives were made by other tools (GNU tar, busybox, Python's tarfile): their names
are absolute, relative to "/", or start with "./", and directory entries may be missing.
Their names are read as paths from "/" and mapped onto the roots; a parent directory missing
from the archive is *implied*, as tar creates it (default mode and owner), under the same
rules: never through a symlink or a file. Format 2 archives must list every directory.
"""

from __future__ import annotations

import posixpath
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass

from vatools.backup.info import BadBackup
from vatools.backup.manifest import Root
from vatools.backup.spill import NameIndex

# The current link target at an absolute path of the target system, or None.
LinkLookup = Callable[[str], "str | None"]

ALLOWED_TYPES = {tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE,
                 tarfile.LNKTYPE}
TYPE_NAMES = {tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device",
              tarfile.FIFOTYPE: "a FIFO", tarfile.CONTTYPE: "a contiguous file",
              tarfile.GNUTYPE_SPARSE: "a sparse file"}


@dataclass(frozen=True)
class Checked:
    """An accepted member: where it goes, relative to its root."""

    root: Root
    rel: str  # "" for the root itself, else "a/b"
    member: tarfile.TarInfo
    implied: tuple[str, ...] = ()  # format 1: directories to create first ("root/a", ...)
    was_implied: bool = False  # format 1: a directory entry for a directory implied before

    @property
    def target_path(self) -> str:
        return self.root.path + ("/" + self.rel if self.rel else "")


def inside_roots(path: str, roots: tuple[Root, ...]) -> bool:
    return any(path == r.path or path.startswith(r.path + "/") for r in roots)


def symlink_destination(link_path: str, linkname: str) -> str:
    """Where a symlink at absolute `link_path` points, lexically."""
    if linkname.startswith("/"):
        return posixpath.normpath(linkname)
    return posixpath.normpath(posixpath.join(posixpath.dirname(link_path), linkname))


def mode_problem(mode: int, is_dir: bool) -> str | None:
    if mode & stat.S_ISUID:
        return "has the setuid bit"
    if mode & stat.S_ISGID and not is_dir:
        return "has the setgid bit"
    return None


def mtime_ns(member: tarfile.TarInfo) -> int:
    """The exact modification time: the pax record keeps nanoseconds, the float does not."""
    text = member.pax_headers.get("mtime", "")
    seconds, _, fraction = text.partition(".")
    if seconds.lstrip("-").isdigit() and (not fraction or fraction.isdigit()):
        return int(seconds) * 10**9 + (-1 if seconds.startswith("-") else 1) * int(
            (fraction + "000000000")[:9] or 0)
    return int(member.mtime * 10**9)


def _normal_relative(name: str) -> bool:
    parts = name.split("/")
    return bool(name) and all(p not in ("", ".", "..") for p in parts)


class MemberChecker:
    """Check the members of one tar stream, in order."""

    def __init__(self, archive: str, roots: tuple[Root, ...], all_roots: tuple[Root, ...],
                 max_tar_bytes: int, v1: bool = False, existing_link: LinkLookup | None = None,
                 ) -> None:
        self.archive = archive
        self.roots = {r.name: r for r in roots}
        self.all_roots = all_roots
        self.max_tar_bytes = max_tar_bytes
        self.v1 = v1
        self.existing_link = existing_link
        self.external_links: list[tuple[str, str]] = []  # (path, target) accepted as is
        self.names = NameIndex()  # every accepted name: "d" directory, "f" regular file, "o" other
        self.entries = 0
        self.content_bytes = 0
        self.tar_end = 0

    def refuse(self, name: str, problem: str) -> BadBackup:
        return BadBackup(f"{self.archive}: member {name!r} {problem}",
                         hint="the backup is damaged or was not made by vatools; nothing was changed")

    def _v1_name(self, name: str) -> str | None:
        """Format 1 names are paths from "/" ("/etc/x", "etc/x" or "./etc/x", as tar stores
        them): map them onto the roots; None for the roots' parents ("/", "/etc")."""
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise self.refuse(name, "contains '..'")
        path = "/" + "/".join(parts)
        for root in self.roots.values():
            if path == root.path or path.startswith(root.path + "/"):
                return root.name + path[len(root.path):]
            if path == "/" or root.path.startswith(path + "/"):
                return None
        raise self.refuse(name, "is outside the directories listed in info.yaml")

    def _implied_parents(self, name: str) -> tuple[str, ...] | None:
        """Format 1: the missing directories above `name`, top first; None if a parent is
        something else than a directory (a file or symlink: never written through)."""
        missing: list[str] = []
        parent = posixpath.dirname(name)
        while parent:
            kind = self.names.get(parent)
            if kind in ("d", "i"):
                break
            if kind is not None:
                return None
            missing.append(parent)
            parent = posixpath.dirname(parent)
        return tuple(reversed(missing))

    def check(self, member: tarfile.TarInfo) -> Checked | None:
        name = member.name
        end = member.offset_data + max(member.size, 0)
        if member.size < 0 or end > self.max_tar_bytes:
            raise self.refuse(name, f"claims {member.size} bytes, more than the archive declares "
                              f"({self.max_tar_bytes} bytes in all): a tar bomb")
        self.tar_end = max(self.tar_end, end)
        if member.size and not member.isreg():  # its data would be read as headers
            raise self.refuse(name, "is not a regular file but carries data")
        if self.v1:
            mapped = self._v1_name(name)
            if mapped is None and member.isdir():
                return None
            if mapped is None:
                raise self.refuse(name, "is outside the directories listed in info.yaml")
            name = mapped
        if name.startswith("/"):
            raise self.refuse(name, "is an absolute path")
        if ".." in name.split("/"):
            raise self.refuse(name, "contains '..'")
        if not _normal_relative(name) or not name.isprintable():
            raise self.refuse(name, "is not a path in normal form")
        if member.type not in ALLOWED_TYPES:
            what = TYPE_NAMES.get(member.type, f"of unsupported type {member.type!r}")
            raise self.refuse(name, f"is {what}")
        root_name, _, rel = name.partition("/")
        root = self.roots.get(root_name)
        if root is None:
            raise self.refuse(name, "is not under any root of this archive listed in info.yaml")
        seen = self.names.get(name)
        was_implied = seen == "i" and member.isdir()  # tar sets its attributes now
        if seen is not None and not was_implied:
            raise self.refuse(name, "appears twice")
        problem = mode_problem(member.mode, member.isdir())
        if problem:
            raise self.refuse(name, problem)
        implied: tuple[str, ...] = ()
        if not rel:
            if not (member.isdir() or member.isreg()):
                raise self.refuse(name, "is a root but neither a directory nor a regular file")
        elif self.names.get(posixpath.dirname(name)) not in ("d", "i"):
            missing = self._implied_parents(name) if self.v1 else None
            if missing is None:
                raise self.refuse(name, "is not below a directory member that comes before it")
            implied = missing
        path = root.path + ("/" + rel if rel else "")
        if member.issym():
            if not member.linkname:
                raise self.refuse(name, "is a symlink without a target")
            dest = symlink_destination(path, member.linkname)
            if not inside_roots(dest, self.all_roots):
                if self.existing_link is not None and self.existing_link(path) != member.linkname:
                    raise self.refuse(name, f"is a symlink to {member.linkname!r}, outside the "
                                      "backup's directories (and not a link the target has)")
                self.external_links.append((path, member.linkname))
        if member.islnk():
            link = member.linkname
            if self.v1:
                try:
                    link = self._v1_name(link) or link
                except BadBackup:  # outside the roots: refused just below, as a hard link
                    pass
            if self.names.get(link) != "f":
                raise self.refuse(name, f"is a hard link to {member.linkname!r}, which is not a "
                                  "regular file of this archive before it")
            member.linkname = link
        for directory in implied:
            self.names.add(directory, "i")
        if member.isdir():
            self.names.add(name, "d")
        elif member.isreg():
            self.names.add(name, "f")
            self.content_bytes += member.size
        else:
            self.names.add(name, "o")
        self.entries += 1
        return Checked(root, rel, member, implied, was_implied)

    def close(self) -> None:
        self.names.close()
