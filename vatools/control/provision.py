"""The postinst's work in the web user's state directory, done without following its links.

    python3 -I -m vatools.control.provision state STATE USER
        STATE (in a directory of root's alone) and its subdirectories, owned by USER, mode 0750
    python3 -I -m vatools.control.provision password STATE USER < password
        STATE/admin-password: the password read on stdin, stored as a hash, written as USER
    python3 -I -m vatools.control.provision session-key STATE USER
        STATE/session-key: the key that signs session cookies, made once (kept on upgrades;
        a link or an empty file in its place is replaced), written as USER

USER owns STATE and may plant a symlink, FIFO or other file under any name in it at any time.
So root creates and changes STATE's directories through descriptors opened with O_NOFOLLOW
(a symlink is refused) and writes no file there at all: the hash is written by a process that
has become USER first, and can reach nothing USER could not.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
import sys
from pathlib import Path

from vatools.control.rootfs import open_dir
from vatools.errors import VatoolsError

SUBDIRS = ("backups",)
MODE = 0o750
PASSWORD_FILE = "admin-password"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _own_dir(parent: int, name: str, shown: Path, account: pwd.struct_passwd) -> int:
    """Directory `name` in `parent`, created if missing, owned by `account`, mode MODE; one
    that is a symlink, not a directory, or someone else's is refused."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, MODE, dir_fd=parent)
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as e:
        what = "is a symlink" if stat.S_ISLNK(os.lstat(name, dir_fd=parent).st_mode) \
            else f"cannot be opened as a directory ({e.strerror})"
        raise VatoolsError(f"{shown} {what}: refused", hint=f"remove {shown}, then run "
                           "dpkg --configure appliance-control again") from None
    try:
        owner = os.fstat(fd).st_uid
        if owner not in (0, account.pw_uid):
            raise VatoolsError(f"{shown} belongs to uid {owner}, neither root nor "
                               f"{account.pw_name}: refused", hint=f"remove {shown}")
        os.fchown(fd, account.pw_uid, account.pw_gid)
        os.fchmod(fd, MODE)
        return fd
    except BaseException:
        os.close(fd)
        raise


def make_state(state: Path, user: str) -> None:
    """STATE and its SUBDIRS for `user` (run as root)."""
    account = pwd.getpwnam(user)
    parent = open_dir(state.parent, root_only=True)
    try:
        top = _own_dir(parent, state.name, state, account)
    finally:
        os.close(parent)
    try:
        for name in SUBDIRS:
            os.close(_own_dir(top, name, state / name, account))
    finally:
        os.close(top)


def become(user: str) -> None:
    """Drop root for good: `user`'s uid and gid, no supplementary groups."""
    account = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)


def store_password(state: Path, user: str, password: str) -> None:
    """The password's hash in STATE/admin-password, written as `user` (this process becomes
    `user` and stays so)."""
    from vatools.control import auth

    become(user)
    salt = auth.reproducible_salt(password) if os.environ.get("SOURCE_DATE_EPOCH") else None
    auth.write_hash(state / PASSWORD_FILE, auth.hash_password(password, salt=salt))


def make_session_key(state: Path, user: str) -> None:
    """STATE/session-key, made once by the package rather than raced by the web server's
    workers at start; written as `user` (this process becomes `user` and stays so)."""
    from vatools.control import sessions

    become(user)
    path = state / sessions.KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        found = os.lstat(path)
        if stat.S_ISLNK(found.st_mode) or (stat.S_ISREG(found.st_mode) and found.st_size == 0):
            os.unlink(path)
    sessions.signing_key(path)


COMMANDS = ("state", "password", "session-key")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] not in COMMANDS or not args[1].startswith("/"):
        print("usage: python3 -I -m vatools.control.provision state|password|session-key"
              " /STATE USER",
              file=sys.stderr)
        return 2
    what, state, user = args[0], Path(args[1]), args[2]
    try:
        if what == "state":
            make_state(state, user)
            return 0
        if what == "session-key":
            make_session_key(state, user)
            return 0
        password = sys.stdin.read().rstrip("\n")
        if not password:
            print("no password on stdin: nothing stored", file=sys.stderr)
            return 1
        store_password(state, user, password)
        return 0
    except (VatoolsError, KeyError, OSError) as e:
        message = e.message if isinstance(e, VatoolsError) else str(e)
        hint = f"\nhint: {e.hint}" if isinstance(e, VatoolsError) and e.hint else ""
        print(f"appliance-control: {message}{hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
