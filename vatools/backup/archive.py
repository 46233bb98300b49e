"""Reading an .abf: the zip structure, checksums and info.yaml first, then the tar members.

`BackupFile.open()` does the cheap checks (structure, sizes, sums file, info.yaml);
`walk()` streams one tar member through the member checks and the checksum, handing each
accepted member to a callback (nothing for a verify pass, the stager for a restore, which
verifies as it stages: one pass). The zip stays open between passes, so replacing the file on
disk cannot change what a later pass reads; rewriting it in place is caught by the checks and
checksums of that pass.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from vatools.backup.info import (FORMAT_VERSION, INFO_MEMBER, MAX_SMALL_MEMBER, MAX_TAR_RATIO,
                                 MAX_ZIP_RATIO, RATIO_FLOOR, SUMS_MEMBER, TAR_MEMBERS,
                                 V1_SUMS_MEMBER, V1_VERSIONS, VERSION_MEMBER, ArchiveSize,
                                 BadBackup, Info, parse_info)
from vatools.backup import authenticity
from vatools.backup.authenticity import Authenticity
from vatools.backup.members import Checked, LinkLookup, MemberChecker
from vatools.errors import VatoolsError
from vatools.target import Target
from vatools.backup.streams import GunzipThreadReader, HashingReader
from vatools.backup.tarstream import TarStream

Progress = Callable[[int, int], None]
# An accepted member and its data (a regular file's content in pieces; nothing otherwise).
OnMember = Callable[[Checked, Iterator[memoryview]], None]
ZIP_LOCAL_HEADER = 30
# What zipfile, zlib and the streams raise on damaged input (zipfile: NotImplementedError for
# odd local header flags, RuntimeError for encryption).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError,
              NotImplementedError, RuntimeError)


class BackupFile:
    """An opened .abf whose structure, checksum list and info.yaml have been checked."""

    def __init__(self, path: Path, zf: zipfile.ZipFile, format_version: str, info: Info,
                 sums: dict[str, str], algorithm: str, sums_bytes: bytes | None = None) -> None:
        self.path = path
        self.zip = zf
        self.format_version = format_version
        self.info = info
        self.sums = sums
        self.algorithm = algorithm
        self.sums_bytes = sums_bytes  # the sha256sums member as read (authenticity.py); format 2
        self.present_roots: set[str] = set()  # roots with content, learnt by walk()
        self.external_links: list[tuple[str, str]] = []  # symlinks leaving the roots, by walk()

    @property
    def is_v1(self) -> bool:
        return self.format_version != FORMAT_VERSION

    @classmethod
    def open(cls, path: Path) -> BackupFile:
        try:
            zf = zipfile.ZipFile(path)
        except FileNotFoundError as e:
            raise BadBackup(f"{path}: no such file") from e
        except ZIP_ERRORS as e:
            raise BadBackup(f"{path} is not a readable zip file ({e})",
                            hint="the file is truncated or damaged; use another copy") from e
        try:
            return cls._checked(path, zf)
        except BaseException:
            zf.close()
            raise

    @classmethod
    def _checked(cls, path: Path, zf: zipfile.ZipFile) -> BackupFile:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise BadBackup(f"{path}: member {duplicates[0]!r} appears more than once")
        _check_layout(path, zf)
        version = _read_small(path, zf, VERSION_MEMBER).decode("ascii", "replace").strip()
        if version == FORMAT_VERSION:
            sums_member, algorithm, digest_len = SUMS_MEMBER, "sha256", 64
        elif version in V1_VERSIONS:
            sums_member, algorithm, digest_len = V1_SUMS_MEMBER, "sha1", 40
        else:
            raise BadBackup(f"{path}: format version {version[:20]!r} is not supported",
                            hint="a newer vatools may read it")
        expected = {VERSION_MEMBER, INFO_MEMBER, sums_member, *TAR_MEMBERS}
        unknown = sorted(set(names) - expected)
        if unknown:
            raise BadBackup(f"{path}: unexpected member {unknown[0]!r}")
        missing = sorted(expected - set(names))
        if missing:
            raise BadBackup(f"{path}: member {missing[0]!r} is missing")
        sums_bytes = _read_small(path, zf, sums_member)
        sums = _parse_sums(path, sums_bytes, sums_member, digest_len)
        if set(sums) != expected - {sums_member}:
            raise BadBackup(f"{path}: {sums_member} must list exactly the other members")
        small = {}
        for name in (VERSION_MEMBER, INFO_MEMBER):
            small[name] = _read_small(path, zf, name)
            _compare(path, name, zipfile_hash(small[name], algorithm), sums[name])
        info = parse_info(small[INFO_MEMBER], version)
        for archive, size in info.sizes.items():
            if size.compressed != zf.getinfo(archive).file_size:
                raise BadBackup(f"{path}: {archive} is {zf.getinfo(archive).file_size} bytes but "
                                f"info.yaml says {size.compressed}")
            ratio_ok = size.tar_bytes <= max(RATIO_FLOOR, MAX_TAR_RATIO * size.compressed)
            if not ratio_ok or size.content_bytes > size.tar_bytes or size.entries < 0:
                raise BadBackup(f"{path}: {archive} claims {size.tar_bytes} bytes uncompressed from "
                                f"{size.compressed}: an absurd ratio (a zip bomb?)")
        return cls(path, zf, version, info, sums, algorithm,
                   sums_bytes if version == FORMAT_VERSION else None)

    def close(self) -> None:
        self.zip.close()

    def authenticity(self, target: Target) -> Authenticity:
        """Whether `target` made this backup (its sums still to be matched by a pass)."""
        return authenticity.check(target, self.sums_bytes, self.zip.comment)

    def __enter__(self) -> BackupFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def max_tar_bytes(self, archive: str) -> int:
        if archive in self.info.sizes:
            return self.info.sizes[archive].tar_bytes
        return max(RATIO_FLOOR, MAX_TAR_RATIO * self.zip.getinfo(archive).file_size)

    def total_compressed(self) -> int:
        return sum(self.zip.getinfo(a).file_size for a in TAR_MEMBERS)

    def walk(self, archive: str, on_member: OnMember | None = None,
             progress: Progress | None = None, done_before: int = 0,
             existing_link: LinkLookup | None = None) -> ArchiveSize:
        """Stream one tar member through the checks and the checksum."""
        zinfo = self.zip.getinfo(archive)
        checker = MemberChecker(archive, self.info.roots_of(archive), self.info.roots,
                                self.max_tar_bytes(archive), self.is_v1, existing_link)
        try:
            raw = HashingReader(self._member_data(zinfo), self.algorithm)
        except ZIP_ERRORS as e:
            raise BadBackup(f"{self.path}: {archive} is damaged ({e})",
                            hint="use another copy of the backup; nothing was changed") from e
        gunzip = GunzipThreadReader(raw, self.max_tar_bytes(archive))
        total = self.total_compressed()
        try:
            tar = TarStream(gunzip.next_chunk)
            while (member := tar.next()) is not None:
                checked = checker.check(member)
                if checked is not None:  # a member below a root (format 1: implies it)
                    self.present_roots.add(checked.root.name)
                if checked is not None and on_member is not None:
                    try:
                        on_member(checked, tar.data())
                    except OSError as e:  # writing failed: not the backup's fault
                        raise VatoolsError(f"cannot write {checked.target_path}: {e}",
                                           hint="nothing was changed; fix the cause and "
                                           "restore again") from e
                if progress is not None:
                    progress(done_before + raw.count, total)
            while gunzip.next_chunk():  # the end blocks and padding, and anything hidden after
                pass
        except VatoolsError:
            raise
        except (tarfile.TarError, *ZIP_ERRORS) as e:
            raise BadBackup(f"{self.path}: {archive} is damaged or truncated ({e})",
                            hint="use another copy of the backup; nothing was changed") from e
        finally:
            gunzip.close()
            checker.close()
        _compare(self.path, archive, raw.hash.hexdigest(), self.sums[archive])
        self.external_links.extend(checker.external_links)
        size = ArchiveSize(raw.count, gunzip.produced, checker.content_bytes, checker.entries)
        declared = self.info.sizes.get(archive)
        if declared is not None and declared != size:
            raise BadBackup(f"{self.path}: {archive} holds {size.entries} entries, "
                            f"{size.content_bytes} bytes, but info.yaml says {declared.entries} "
                            f"entries, {declared.content_bytes} bytes")
        return size

    def _member_data(self, zinfo: zipfile.ZipInfo) -> IO[bytes]:
        """A reader of the member's data: zipfile's own, or for a stored member (what
        vatools writes) positional reads of the zip's open file, after zipfile checked the
        local header (zipfile's reader cost a third of the inflating thread's time). Its
        CRC-32 is not checked: the sums file's digest, checked at the end, is."""
        member = self.zip.open(zinfo)  # checks the local header against the directory
        if zinfo.compress_type != zipfile.ZIP_STORED or self.zip.fp is None:
            return member
        member.close()
        header = os.pread(self.zip.fp.fileno(), ZIP_LOCAL_HEADER, zinfo.header_offset)
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        start = zinfo.header_offset + ZIP_LOCAL_HEADER + name_length + extra_length
        return StoredMember(self.zip.fp.fileno(), start, zinfo.compress_size)  # type: ignore[return-value]

    def verify(self, progress: Progress | None = None,
               existing_link: LinkLookup | None = None) -> dict[str, ArchiveSize]:
        """The full verify pass: every check, every checksum, nothing written."""
        sizes = {}
        done = 0
        self.external_links.clear()
        for archive in TAR_MEMBERS:
            sizes[archive] = self.walk(archive, None, progress, done, existing_link)
            done += sizes[archive].compressed
        return sizes


class StoredMember:
    """read() over a byte range of an open file, with pread (the file position is zipfile's)."""

    def __init__(self, fd: int, start: int, size: int) -> None:
        self.fd, self.position, self.left = fd, start, size

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        if size <= 0:
            return b""
        data = os.pread(self.fd, size, self.position)
        if not data:
            raise EOFError("the zip file ends inside a member")
        self.position += len(data)
        self.left -= len(data)
        return data

    def close(self) -> None:
        pass


def zipfile_hash(data: bytes, algorithm: str) -> str:
    return hashlib.new(algorithm, data).hexdigest()


def _compare(path: Path, name: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise BadBackup(f"{path}: checksum mismatch for {name}",
                        hint="the file is damaged; use another copy of the backup")


def _check_layout(path: Path, zf: zipfile.ZipFile) -> None:
    """Refuse encrypted, oddly compressed, overlapping or bomb-like members."""
    infos = sorted(zf.infolist(), key=lambda i: i.header_offset)
    for i, zinfo in enumerate(infos):
        name = zinfo.filename
        if zinfo.flag_bits & 0x1:
            raise BadBackup(f"{path}: member {name!r} is encrypted")
        if zinfo.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BadBackup(f"{path}: member {name!r} uses an unsupported compression")
        if zinfo.file_size > (1 << 20) and zinfo.file_size > MAX_ZIP_RATIO * max(zinfo.compress_size, 1):
            raise BadBackup(f"{path}: member {name!r} expands {zinfo.compress_size} bytes to "
                            f"{zinfo.file_size}: an absurd ratio (a zip bomb?)")
        end = zinfo.header_offset + ZIP_LOCAL_HEADER + len(name.encode()) + zinfo.compress_size
        limit = infos[i + 1].header_offset if i + 1 < len(infos) else zf.start_dir
        if end > limit:
            raise BadBackup(f"{path}: member {name!r} overlaps another member or the directory")


def _read_small(path: Path, zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        if zf.getinfo(name).file_size > MAX_SMALL_MEMBER:
            raise BadBackup(f"{path}: member {name!r} is larger than {MAX_SMALL_MEMBER} bytes")
        with zf.open(name) as handle:
            data = handle.read(MAX_SMALL_MEMBER + 1)
    except KeyError as e:
        raise BadBackup(f"{path}: member {name!r} is missing") from e
    except ZIP_ERRORS as e:
        raise BadBackup(f"{path}: member {name!r} is damaged ({e})") from e
    if len(data) > MAX_SMALL_MEMBER:
        raise BadBackup(f"{path}: member {name!r} is larger than {MAX_SMALL_MEMBER} bytes")
    return data


def _parse_sums(path: Path, data: bytes, member: str, digest_len: int) -> dict[str, str]:
    sums: dict[str, str] = {}
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        digest, _, name = line.partition(" ")
        name = name.lstrip(" *")
        if len(digest) != digest_len or any(c not in "0123456789abcdef" for c in digest) or not name:
            raise BadBackup(f"{path}: {member} line {number} is malformed: {line[:80]!r}")
        if name in sums:
            raise BadBackup(f"{path}: {member} lists {name!r} twice")
        sums[name] = digest
    return sums
