"""Writing accepted members into a staging tree beside each root (same file system).

Only the checker's output reaches this module: every parent is a directory this stager
created, and files are created with O_EXCL|O_NOFOLLOW, so nothing outside the staging
trees can be written. Directory attributes are set last, since adding entries changes them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from vatools.backup.accounts import Accounts
from vatools.backup.members import Checked, mtime_ns
from vatools.backup.spill import DirectoryList

CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def current_umask() -> int:
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


class Stager:
    def __init__(self, staging: dict[str, Path], accounts: Accounts) -> None:
        self.staging = staging  # root name -> its staging path
        self.accounts = accounts
        self.dirs = DirectoryList()
        self.umask = current_umask()
        self.ids = (os.geteuid(), os.getegid())  # the owner of what is created here
        self.clean: set[str] = set()  # roots whose staging directory inherits no group

    def _chown_needed(self, checked: Checked, uid: int, gid: int) -> bool:
        """Below a staging directory made here (its setgid bit cleared), new entries get our
        own ids: chown only to others (one system call less per file, mostly)."""
        return not checked.rel or checked.root.name not in self.clean or (uid, gid) != self.ids

    def path_of(self, name: str) -> str:
        root, _, rel = name.partition("/")
        return f"{self.staging[root]}/{rel}" if rel else str(self.staging[root])

    def add(self, checked: Checked, data: Iterator[memoryview]) -> None:
        member = checked.member
        for directory in checked.implied:  # format 1: made as tar makes missing parents
            os.mkdir(self.path_of(directory), 0o777)  # the umask applies; owner: this process
        path = self.path_of(checked.root.name + ("/" + checked.rel if checked.rel else ""))
        uid = self.accounts.uid(member.uname, member.uid)
        gid = self.accounts.gid(member.gname, member.gid)
        owner = (uid, gid) if self._chown_needed(checked, uid, gid) else (-1, -1)
        if member.isreg():
            self._write_file(path, member.mode & 0o7777, data, *owner, mtime_ns(member))
        elif member.isdir():
            if not checked.was_implied:
                os.mkdir(path, 0o700)
                if not checked.rel:  # a setgid parent passes its bit on: not to what we make
                    os.chmod(path, 0o700)
                    self.clean.add(checked.root.name)
            self.dirs.append((path, member.mode & 0o7777, *owner, mtime_ns(member)))
        elif member.issym():
            os.symlink(member.linkname, path)
            os.chown(path, uid, gid, follow_symlinks=False)
            os.utime(path, ns=(mtime_ns(member),) * 2, follow_symlinks=False)
        elif member.islnk():
            os.link(self.path_of(member.linkname), path, follow_symlinks=False)

    def _write_file(self, path: str, mode: int, data: Iterator[memoryview], uid: int, gid: int,
                    mtime: int) -> None:
        # Created with its mode (fchmod only where the umask took bits away); as few system
        # calls as possible: creating files is most of a restore's time.
        fd = os.open(path, CREATE_FLAGS, mode)
        try:
            for piece in data:
                while piece:  # os.write may write less than asked
                    piece = piece[os.write(fd, piece):]
            if uid != -1:
                os.fchown(fd, uid, gid)
            if mode & self.umask:
                os.fchmod(fd, mode)
            os.utime(fd, ns=(mtime, mtime))
        finally:
            os.close(fd)

    def finish(self) -> None:
        for path, mode, uid, gid, mtime in self.dirs.last_first():
            if uid != -1:
                os.chown(path, uid, gid, follow_symlinks=False)
            os.chmod(path, mode)
            os.utime(path, ns=(mtime, mtime))

    def close(self) -> None:
        self.dirs.close()
