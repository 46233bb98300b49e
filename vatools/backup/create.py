"""Creating an .abf from the appliance installed in a target.

Plan (read the declaration, scan the roots and refuse what a restore would refuse), then
act: stop services, run backup-pre, stream each root into its tar.gz member, run
backup-post, start services. The file is written as NAME.partial and renamed when complete.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import socket
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vatools.backup import actions, authenticity
from vatools.backup.accounts import Accounts
from vatools.backup.info import (INFO_MEMBER, SUMS_MEMBER, TAR_MEMBERS, VERSION_MEMBER,
                                 FORMAT_VERSION, ArchiveSize, Info, info_for)
from vatools.backup.manifest import (BackupManifest, Root, installed_appliance,
                                     installed_versions, root_location)
from vatools.backup.members import inside_roots, mode_problem
from vatools.backup.streams import CHUNK, HashingWriter, ParallelGzipWriter
from vatools.errors import VatoolsError
from vatools.run import Target

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Created:
    path: Path
    info: Info


# A data root's owner (www-data) can replace any name below it between two system calls of
# root: entries are reached by directory descriptor, opened with O_NOFOLLOW, and what was
# opened must be what the walk saw (same device, inode and type), or the backup is refused.
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class _Entry:
    path: Path  # for messages (and the test seam) only: never opened by name from /
    relative: str  # below the root; "" for the root itself
    parent: int  # descriptor of the directory holding it, valid while the walk is there
    name: str
    st: os.stat_result  # its lstat, seen while walking


def _between_lstat_and_open(path: Path) -> None:
    """A seam for tests: runs where a data root's owner could swap an entry."""


def _changed(path: Path, why: str) -> VatoolsError:
    return VatoolsError(f"{path} changed while it was backed up ({why})",
                        hint="is a service writing to it that the appliance does not list in "
                        "Vatools-Services? Or did someone swap it for a symlink? Back up again")


def _open_entry(entry: _Entry) -> int:
    """A descriptor of `entry`, refused unless it is the very directory or file seen."""
    _between_lstat_and_open(entry.path)
    directory = stat.S_ISDIR(entry.st.st_mode)
    try:
        fd = os.open(entry.name, _DIR_FLAGS if directory else _FILE_FLAGS, dir_fd=entry.parent)
    except OSError as e:  # ELOOP: now a symlink; ENOTDIR, ENOENT: replaced or removed
        raise _changed(entry.path, e.strerror or str(e)) from None
    st = os.fstat(fd)
    if ((st.st_dev, st.st_ino) != (entry.st.st_dev, entry.st.st_ino)
            or stat.S_IFMT(st.st_mode) != stat.S_IFMT(entry.st.st_mode)):
        os.close(fd)
        raise _changed(entry.path, "another file is there now")
    return fd


def _open_parent(target: Target, path: str) -> int | None:
    """A descriptor of the directory holding root `path`, reached from the target's root
    without following a symlink; None when a parent is missing (the root is absent)."""
    fd = os.open(target.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in path.strip("/").split("/")[:-1]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                os.close(fd)
                return None
            except OSError as e:
                raise VatoolsError(f"cannot open {path}: {part} is not a plain directory "
                                   f"({e.strerror})",
                                   hint="declare the real path in the appliance's control fields"
                                   ) from None
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def _walk_root(target: Target, root: Root) -> Iterator[_Entry]:
    """The root and the tree below it, parents before children, in a stable order; nothing
    if the root is absent. Each entry's `parent` is open while the entry is handled."""
    top = root_location(target, root.path)
    parent = _open_parent(target, root.path)
    if parent is None:
        return
    try:
        try:
            st = os.lstat(top.name, dir_fd=parent)
        except FileNotFoundError:
            return
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            raise VatoolsError(f"{root.path} is neither a directory nor a regular file",
                               hint="declare the real path, not a symlink to it")
        entry = _Entry(top, "", parent, top.name, st)
        yield entry
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_below(entry)
    finally:
        os.close(parent)


def _walk_below(directory: _Entry) -> Iterator[_Entry]:
    fd = _open_entry(directory)
    try:
        for name in sorted(os.listdir(fd)):
            try:
                st = os.lstat(name, dir_fd=fd)
            except FileNotFoundError:
                raise _changed(directory.path / name, "removed") from None
            relative = f"{directory.relative}/{name}" if directory.relative else name
            entry = _Entry(directory.path / name, relative, fd, name, st)
            yield entry
            if stat.S_ISDIR(st.st_mode):
                yield from _walk_below(entry)
    finally:
        os.close(fd)


def _refusal(st: os.stat_result) -> str | None:
    """Why an entry cannot go into a backup (the same rules a restore applies), or None.

    Symlinks leaving the roots are kept: a restore accepts them only where the target has
    the same link already (see members.py)."""
    mode = st.st_mode
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        return "is not a directory, regular file or symlink"
    problem = mode_problem(mode, stat.S_ISDIR(mode))
    if problem:
        return problem
    return None


def scan(target: Target, manifest: BackupManifest) -> int:
    """Check every entry of every root before anything happens; return the bytes to copy."""
    total = 0
    for root in manifest.roots:
        for entry in _walk_root(target, root):
            problem = _refusal(entry.st)
            if problem:
                raise VatoolsError(f"cannot back up {entry.path}: it {problem}",
                                   hint="a restore would refuse it; fix the file or narrow the "
                                   "appliance's Vatools-Backup-* paths")
            if stat.S_ISREG(entry.st.st_mode):
                total += entry.st.st_size
    return total


def default_output(manifest: BackupManifest, now: datetime.datetime) -> Path:
    version = manifest.version.replace(":", "_")
    return Path.cwd() / f"{manifest.appliance}_{version}_{now:%Y%m%dT%H%M%SZ}.abf"


def _hostname(target: Target) -> str:
    if target.is_host:
        return socket.gethostname()
    try:
        return target.path("/etc/hostname").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


class _TreeWriter:
    """Adds roots to a tar stream with owners named as the target names them."""

    def __init__(self, tar: tarfile.TarFile, target: Target, manifest: BackupManifest,
                 accounts: Accounts, progress: Progress | None, total: int,
                 done_before: int = 0) -> None:
        self.tar = tar
        self.target = target
        self.manifest = manifest
        self.accounts = accounts
        self.progress = progress
        self.total = total
        self.done = done_before  # progress counts across both archives
        self.entries = 0
        self.content_bytes = 0

    def add_root(self, root: Root) -> None:
        # absent when backed up: no entries, and a restore removes it too
        for entry in _walk_root(self.target, root):
            self._add(entry, root.name + ("/" + entry.relative if entry.relative else ""))

    def _tarinfo(self, entry: _Entry, name: str) -> tarfile.TarInfo:
        """What tarfile.gettarinfo makes of an lstat, without opening anything by path."""
        st = entry.st
        info = tarfile.TarInfo(name)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.mtime = st.st_mtime  # type: ignore[assignment]  # a float, as gettarinfo sets it
        if stat.S_ISREG(st.st_mode):
            key = (st.st_ino, st.st_dev)
            inodes = self.tar.inodes  # type: ignore[attr-defined]
            if st.st_nlink > 1 and key in inodes:  # a hard link to an earlier member
                info.type, info.linkname = tarfile.LNKTYPE, inodes[key]
            else:
                info.type, info.size = tarfile.REGTYPE, st.st_size
                if st.st_nlink > 1:  # remembered only where a later link can refer to it
                    inodes[key] = name
        elif stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
        else:
            info.type = tarfile.SYMTYPE
            try:
                info.linkname = os.readlink(entry.name, dir_fd=entry.parent)
            except OSError as e:
                raise _changed(entry.path, e.strerror or str(e)) from None
        return info

    def _add(self, entry: _Entry, name: str) -> None:
        problem = _refusal(entry.st)  # changed since the scan?
        if problem:
            raise VatoolsError(f"cannot back up {entry.path}: it {problem}")
        info = self._tarinfo(entry, name)
        ns = entry.st.st_mtime_ns  # exact, in a pax record (tar --format=posix does the same)
        info.pax_headers = {**info.pax_headers, "mtime": f"{ns // 10**9}.{ns % 10**9:09d}"}
        info.uname = self.accounts.user_name(info.uid)
        info.gname = self.accounts.group_name(info.gid)
        if info.isreg():
            fd = _open_entry(entry)
            with open(fd, "rb") as handle:
                try:
                    self.tar.addfile(info, handle)
                except OSError as e:
                    raise _changed(entry.path, str(e)) from e
            self.done += info.size
            self.content_bytes += info.size
            if self.progress:
                self.progress(self.done, self.total)
        else:
            self.tar.addfile(info)
        self.entries += 1
        self.tar.members.clear()  # type: ignore[attr-defined]  # else memory grows per entry


def _write_archive(zf: zipfile.ZipFile, archive: str, stamp: tuple[int, ...],
                   roots: tuple[Root, ...], writer_args: dict) -> tuple[ArchiveSize, str]:  # type: ignore[type-arg]
    zinfo = zipfile.ZipInfo(archive, stamp[:6])  # type: ignore[arg-type]
    zinfo.compress_type = zipfile.ZIP_STORED  # already gzip-compressed
    zinfo.external_attr = 0o644 << 16
    with zf.open(zinfo, "w", force_zip64=True) as member:
        hashed = HashingWriter(member)  # type: ignore[arg-type]
        gz = ParallelGzipWriter(hashed)
        try:
            tar = tarfile.TarFile(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT,  # type: ignore[arg-type]
                                  copybufsize=CHUNK)
            tree = _TreeWriter(tar, **writer_args)
            for root in roots:
                tree.add_root(root)
            tar.close()
        finally:
            gz.close()
    size = ArchiveSize(hashed.count, gz.uncompressed, tree.content_bytes, tree.entries)
    return size, hashed.sha256.hexdigest()


def create_backup(target: Target, output: Path | None = None,
                  progress: Progress | None = None) -> Created:
    appliance = installed_appliance(target)
    manifest = appliance.manifest()
    now = datetime.datetime.now(datetime.timezone.utc)
    output = (output or default_output(manifest, now)).absolute()
    if output.exists():
        raise VatoolsError(f"{output} exists already", hint="choose another --output or remove it")
    if not output.parent.is_dir():
        raise VatoolsError(f"directory {output.parent} does not exist")
    out_inside = str(output)
    if not target.is_host and output.is_relative_to(target.root):
        out_inside = "/" + str(output.relative_to(target.root))
    if inside_roots(out_inside, manifest.roots):
        raise VatoolsError(f"{output} lies inside a path being backed up",
                           hint="write the backup elsewhere")
    total = scan(target, manifest)
    packages = installed_versions(target, (appliance.name, *appliance.dependencies))
    partial = output.with_name(output.name + ".partial")
    if os.path.lexists(partial):
        raise VatoolsError(f"{partial} exists: another backup is being written there, or one "
                           "was interrupted", hint=f"if none is running, remove it: rm {partial}")
    accounts = Accounts.of(target)
    key = authenticity.backup_key(target, create=True)
    assert key is not None
    actions.stop_services(target, manifest.services)
    try:
        try:
            actions.run_hook(target, manifest, "backup-pre")
            sizes, sums = {}, {}
            stamp = now.timetuple()
            writer_args = {"target": target, "manifest": manifest, "accounts": accounts,
                           "progress": progress, "total": total}
            with open(partial, "xb") as handle, zipfile.ZipFile(handle, "w", allowZip64=True) as zf:
                version = f"{FORMAT_VERSION}\n".encode()
                zf.writestr(zipfile.ZipInfo(VERSION_MEMBER, stamp[:6]), version)
                sums[VERSION_MEMBER] = _sha256(version)
                for archive in TAR_MEMBERS:
                    roots = tuple(r for r in manifest.roots if r.archive == archive)
                    sizes[archive], sums[archive] = _write_archive(zf, archive, stamp, roots,
                                                                   writer_args)
                    writer_args["done_before"] = sum(s.content_bytes for s in sizes.values())
                info = info_for(manifest, _hostname(target), now.strftime("%Y-%m-%d %H:%M:%S"),
                                packages, sizes)
                text = info.to_yaml().encode()
                zf.writestr(zipfile.ZipInfo(INFO_MEMBER, stamp[:6]), text)
                sums[INFO_MEMBER] = _sha256(text)
                listing = "".join(f"{digest}  {name}\n" for name, digest in sums.items())
                zf.writestr(zipfile.ZipInfo(SUMS_MEMBER, stamp[:6]), listing)
                zf.comment = authenticity.comment(key, listing.encode())
                zf.close()
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            actions.run_hook(target, manifest, "backup-post")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        actions.start_services(target, manifest.services)
    os.rename(partial, output)
    return Created(output, info)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
