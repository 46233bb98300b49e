"""Files as root next to the web user's: by file descriptor, never through a symlink.

The web user owns its state directory (/var/lib/appliance-control) and the backups in it, so
any name there can change between two system calls of root. Root therefore walks to such a
directory one component at a time with O_NOFOLLOW, opens files in it relative to that
directory's descriptor with O_NOFOLLOW | O_NONBLOCK (a FIFO or device planted there neither
blocks nor gets read), and changes owner and mode with fchown/fchmod on what it opened.
Files only root may see live in a directory whose every component is root's (`private_dir`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PosixPath

from vatools.errors import VatoolsError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _refused(path: Path | str, what: str) -> VatoolsError:
    return VatoolsError(f"{path} {what}: refused (root follows no path the web user can change)",
                        hint="remove it; the directory must be a plain directory")


def open_dir(path: Path, root_only: bool = False) -> int:
    """A descriptor of directory `path` (absolute), reached without following any symlink.
    `root_only`: every component must also be root's and writable by nobody else (a
    sticky directory such as /tmp counts as safe), so that no other user can swap a name."""
    if not path.is_absolute():
        raise ValueError(f"{path} is not absolute")
    fd = os.open("/", _DIR_FLAGS)
    walked = Path("/")
    try:
        for part in path.parts[1:]:
            walked = walked / part
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                raise _opening_error(walked, fd, part, e) from None
            os.close(fd)
            fd = child
            if root_only:
                _check_root_only(walked, fd)
        if root_only and walked == Path("/"):
            _check_root_only(walked, fd)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _opening_error(path: Path, parent_fd: int, name: str, error: OSError) -> VatoolsError:
    try:
        mode = os.lstat(name, dir_fd=parent_fd).st_mode
    except OSError:
        return VatoolsError(f"cannot open directory {path}: {error.strerror}")
    if stat.S_ISLNK(mode):
        return _refused(path, "is a symlink")
    if not stat.S_ISDIR(mode):
        return _refused(path, "is not a directory")
    return VatoolsError(f"cannot open directory {path}: {error.strerror}")


def _check_root_only(path: Path, fd: int) -> None:
    status = os.fstat(fd)
    writable_by_others = status.st_mode & 0o022 and not status.st_mode & stat.S_ISVTX
    if status.st_uid != 0 or writable_by_others:
        raise _refused(path, f"is not root's alone (owner uid {status.st_uid}, "
                             f"mode {stat.S_IMODE(status.st_mode):04o})")


def private_dir(path: Path) -> int:
    """A descriptor of `path`, a directory only root uses (created mode 0700 if missing);
    its parent and every component above must be root's alone."""
    parent = open_dir(path.parent, root_only=True)
    try:
        try:
            os.mkdir(path.name, 0o700, dir_fd=parent)
        except FileExistsError:
            pass
        try:
            fd = os.open(path.name, _DIR_FLAGS, dir_fd=parent)
        except OSError as e:
            raise _opening_error(path, parent, path.name, e) from None
    finally:
        os.close(parent)
    try:
        status = os.fstat(fd)
        if status.st_uid != 0:
            raise _refused(path, f"belongs to uid {status.st_uid}, not root")
        if stat.S_IMODE(status.st_mode) != 0o700:
            os.fchmod(fd, 0o700)
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_regular(dir_fd: int, name: str, where: Path) -> int:
    """A read-only descriptor of the regular file `name` in directory `dir_fd` (shown as
    `where`/`name`): a symlink, FIFO, device or directory there is refused without blocking."""
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"{name!r} is not a plain file name")
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as e:
        try:
            mode = os.lstat(name, dir_fd=dir_fd).st_mode
        except OSError:
            mode = 0
        if stat.S_ISLNK(mode):
            raise _refused(where / name, "is a symlink") from None
        raise VatoolsError(f"cannot open {where / name}: {e.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _refused(where / name, "is not a regular file")
    return fd


class OpenedPath(PosixPath):
    """A path that shows its real name but opens the file already opened (and checked) as
    descriptor `fd`, through /proc/self/fd: code that takes a path (zipfile, the backup
    module) then reads exactly that file, whatever the name has become since.
    Paths derived from it (parent, with_name...) are plain again."""

    _through: str | None = None

    @classmethod
    def of(cls, shown: Path, fd: int) -> OpenedPath:
        path = cls(shown)
        path._through = f"/proc/self/fd/{fd}"
        return path

    def __fspath__(self) -> str:
        return self._through or super().__fspath__()
