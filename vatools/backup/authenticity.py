"""Whether a backup was made by this system: an HMAC-SHA256 with a key only root reads.

A restore writes configuration files that run as the appliance's service user (PHP, Python)
or as root (web server directives), so root restores a backup it did not make only when told
to (`--foreign`, or the web interface's second confirmation). The key is the target's
KEY_PATH (0600, root's, made on the first backup with O_EXCL|O_NOFOLLOW); the code is
over the sums member (`sha256sums`), which lists the SHA-256 of every other member and is
checked anyway, so authenticating costs nothing extra; it is kept in the zip comment as
`COMMENT_PREFIX HEX` (older vatools ignore the comment). A backup without it (made by an
older vatools, a format 1 backup, one made by hand) or with a code made with another key
(another system, or changed after it was made) is *foreign*.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import stat
from dataclasses import dataclass

from vatools.backup.info import BadBackup
from vatools.errors import VatoolsError
from vatools.target import Target

KEY_PATH = "/var/lib/vatools/backup-key"
COMMENT_PREFIX = b"vatools-hmac-sha256 "
KEY_BYTES = 32
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# What the web interface and the CLI say about a foreign backup (the web page looks for
# FOREIGN in the helper's message to offer the second confirmation).
FOREIGN = "is a foreign backup"
RISK = ("restoring it puts its configuration files in place, which run with the rights of the "
        "appliance's services and, for web server directives, of root: only restore a backup "
        "whose origin you trust")


class ForeignBackup(BadBackup):
    """A restore refused because the backup is not authenticated by this system's key."""


@dataclass(frozen=True)
class Authenticity:
    authenticated: bool
    reason: str  # why it is (or is not) authenticated, in plain words

    def describe(self) -> str:
        return f"authenticated: {'yes' if self.authenticated else 'no, foreign'} ({self.reason})"


def _key_dir(target: Target, create: bool) -> int | None:
    """A descriptor of the key's directory, reached from the target's root without following
    a symlink (made, mode 0755 like the restore journal's, when `create`); None if missing."""
    fd = os.open(target.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in KEY_PATH.strip("/").split("/")[:-1]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    os.close(fd)
                    return None
                os.mkdir(part, 0o755, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                raise VatoolsError(f"{target.path(KEY_PATH).parent}: {part} is not a plain "
                                   f"directory ({e.strerror}): refused",
                                   hint="it must be a directory, not a symlink") from None
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def _read_key(directory: int, where: str) -> bytes | None:
    try:
        fd = os.open(os.path.basename(KEY_PATH), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                     | os.O_CLOEXEC, dir_fd=directory)
    except FileNotFoundError:
        return None
    except OSError as e:  # ELOOP: a symlink
        raise VatoolsError(f"{where} cannot be opened ({e.strerror}): refused",
                           hint="it must be a regular file of root's, mode 0600; remove it and "
                           "a new key is made (backups made before become foreign)") from None
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid()
                or stat.S_IMODE(st.st_mode) & 0o077):
            raise VatoolsError(f"{where} is not a regular file of root's readable by root alone "
                               f"(mode {stat.S_IMODE(st.st_mode):04o}, owner uid {st.st_uid}): "
                               "refused", hint=f"chown root: {where}; chmod 600 {where}")
        text = os.read(fd, 4 * KEY_BYTES).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    if not re.fullmatch(f"[0-9a-f]{{{2 * KEY_BYTES}}}", text):
        raise VatoolsError(f"{where} does not hold a key ({2 * KEY_BYTES} hex digits)",
                           hint="remove it and a new key is made (backups made before become "
                           "foreign)")
    return bytes.fromhex(text)


def backup_key(target: Target, create: bool = False) -> bytes | None:
    """The target's backup key; made (with O_EXCL|O_NOFOLLOW, mode 0600) if missing and
    `create`, else None when there is none."""
    where = str(target.path(KEY_PATH))
    directory = _key_dir(target, create)
    if directory is None:
        return None
    try:
        key = _read_key(directory, where)
        if key is not None or not create:
            return key
        try:
            fd = os.open(os.path.basename(KEY_PATH), os.O_WRONLY | os.O_CREAT | os.O_EXCL
                         | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=directory)
        except FileExistsError:  # made meanwhile by another backup
            return _read_key(directory, where)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, (secrets.token_hex(KEY_BYTES) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.fsync(directory)
        return _read_key(directory, where)
    finally:
        os.close(directory)


def code(key: bytes, sums: bytes) -> str:
    """The HMAC-SHA256 of the sums member, in hex."""
    return hmac.new(key, sums, "sha256").hexdigest()


def comment(key: bytes, sums: bytes) -> bytes:
    """The zip comment that authenticates a backup whose sums member is `sums`."""
    return COMMENT_PREFIX + code(key, sums).encode()


def check(target: Target, sums: bytes | None, zip_comment: bytes) -> Authenticity:
    """Whether the backup with this sums member (None: format 1) and zip comment was made
    with the target's key. Its members must still match the sums (verify, or staging)."""
    if sums is None:
        return Authenticity(False, "a format 1 backup, made before backups were authenticated")
    if not zip_comment.startswith(COMMENT_PREFIX):
        return Authenticity(False, "it carries no authentication code: made by an older "
                            "vatools, by hand or by another tool")
    key = backup_key(target)
    if key is None:
        return Authenticity(False, f"{target} has no backup key ({target.path(KEY_PATH)}), so it "
                            "made no authenticated backup")
    given = zip_comment[len(COMMENT_PREFIX):].decode("ascii", "replace").strip()
    if not hmac.compare_digest(given, code(key, sums)):
        return Authenticity(False, "its authentication code does not match this system's key: "
                            "made on another system, or changed since it was made")
    return Authenticity(True, f"made by {target} (its key {target.path(KEY_PATH)})")


def refuse_foreign(path: object, authenticity: Authenticity) -> None:
    """Raise ForeignBackup, naming the risk, unless the backup is authenticated."""
    if not authenticity.authenticated:
        raise ForeignBackup(f"{path} {FOREIGN} ({authenticity.reason}); {RISK}",
                            hint="if you trust where it comes from, restore it with --foreign "
                            "(on the web interface: tick \"restore a foreign backup\")")
