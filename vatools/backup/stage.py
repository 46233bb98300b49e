"""Writing accepted members into a staging tree beside each root (same file system).

Only the checker's output reaches this module: every parent is a directory this stager
created, and files are created with O_EXCL|O_NOFOLLOW, so nothing outside the staging
trees can be written. Directory attributes are set last, since adding entries changes them.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from vatools.backup.accounts import Accounts
from vatools.backup.members import Checked, mtime_ns
from vatools.backup.spill import DirectoryList
from vatools.backup.streams import CHUNK

CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Stager:
    def __init__(self, staging: dict[str, Path], accounts: Accounts) -> None:
        self.staging = staging  # root name -> its staging path
        self.accounts = accounts
        self.dirs = DirectoryList()
        self.buffer = bytearray(CHUNK)

    def path_of(self, name: str) -> Path:
        root, _, rel = name.partition("/")
        return self.staging[root] / rel if rel else self.staging[root]

    def add(self, checked: Checked, tar: tarfile.TarFile) -> None:
        member = checked.member
        path = self.path_of(checked.root.name + ("/" + checked.rel if checked.rel else ""))
        for directory in checked.implied:  # format 1: made as tar makes missing parents
            os.mkdir(self.path_of(directory), 0o777)  # the umask applies; owner: this process
        uid = self.accounts.uid(member.uname, member.uid)
        gid = self.accounts.gid(member.gname, member.gid)
        if member.isdir():
            if not checked.was_implied:
                os.mkdir(path, 0o700)
            self.dirs.append((str(path), member.mode & 0o7777, uid, gid, mtime_ns(member)))
        elif member.isreg():
            self._write_file(path, member, tar, uid, gid)
        elif member.issym():
            os.symlink(member.linkname, path)
            os.chown(path, uid, gid, follow_symlinks=False)
            os.utime(path, ns=(mtime_ns(member),) * 2, follow_symlinks=False)
        elif member.islnk():
            os.link(self.path_of(member.linkname), path, follow_symlinks=False)

    def _write_file(self, path: Path, member: tarfile.TarInfo, tar: tarfile.TarFile,
                    uid: int, gid: int) -> None:
        source = tar.extractfile(member)
        assert source is not None
        fd = os.open(path, CREATE_FLAGS, 0o600)
        try:
            view = memoryview(self.buffer)
            left = member.size
            while left:
                n = source.readinto(view[:min(left, CHUNK)])  # type: ignore[attr-defined]
                if not n:
                    raise EOFError(f"data of {member.name!r} ends early")
                done = 0
                while done < n:  # os.write may write less than asked
                    done += os.write(fd, view[done:n])
                left -= n
            os.fchown(fd, uid, gid)
            os.fchmod(fd, member.mode & 0o7777)
            os.utime(fd, ns=(mtime_ns(member),) * 2)
        finally:
            os.close(fd)

    def finish(self) -> None:
        for path, mode, uid, gid, mtime in self.dirs.last_first():
            os.chown(path, uid, gid, follow_symlinks=False)
            os.chmod(path, mode)
            os.utime(path, ns=(mtime, mtime))

    def close(self) -> None:
        self.dirs.close()
