"""The admin password (a salted scrypt hash on disk), CSRF tokens and the login rate limit.

>>> stored = hash_password("correct horse", n=2**10)
>>> stored.startswith("scrypt$")
True
>>> verify_password("correct horse", stored), verify_password("wrong", stored)
(True, False)
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

from vatools.errors import VatoolsError

# scrypt with n=2**15, r=8 costs 32 MiB and ~50-100 ms: cheap for one login, dear for guessing.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
MIN_PASSWORD = 10


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str, n: int = SCRYPT_N, salt: bytes | None = None) -> str:
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=2 * 128 * n * SCRYPT_R, dklen=32)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def reproducible_salt(password: str) -> bytes:
    """The salt of a reproducible build (SOURCE_DATE_EPOCH set, e.g. an image): the same
    password gives the same file. Every copy of such an image shares the hash anyway, as it
    shares the password; change the password after deployment."""
    return hmac.new(b"appliance-control reproducible salt", password.encode(),
                    hashlib.sha256).digest()[:16]


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.strip().split("$")
        if kind != "scrypt":
            return False
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                                r=int(r), p=int(p), maxmem=2 * 128 * int(n) * int(r), dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, base64.b64decode(digest))


def fingerprint(stored: str) -> str:
    """A short tag of the stored hash: sessions carry it, so a password change ends them all."""
    return hashlib.sha256(stored.encode()).hexdigest()[:16]


def read_hash(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def write_hash(path: Path, stored: str) -> None:
    """Atomically replace the hash file, mode 0600 (only the web user and root read it)."""
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(stored + "\n")
    os.replace(tmp, path)


def check_new_password(password: str, again: str) -> None:
    if password != again:
        raise VatoolsError("the two new passwords differ", hint="type the same password twice")
    if len(password) < MIN_PASSWORD:
        raise VatoolsError(f"the new password has {len(password)} characters; "
                           f"at least {MIN_PASSWORD} are needed")


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


class RateLimit:
    """At most `attempts` failed logins per client address in `window` seconds.

    With a `path`, the failures are kept in that file (under a lock), so every worker process
    of the web server counts the same failures.

    >>> limit = RateLimit(attempts=2, window=60)
    >>> limit.fail("a", now=0.0); limit.fail("a", now=1.0)
    >>> limit.wait("a", now=2.0), limit.wait("b", now=2.0)
    (58, 0)
    """

    def __init__(self, attempts: int = 5, window: float = 300, path: Path | None = None) -> None:
        self.attempts = attempts
        self.window = window
        self.path = path
        self._memory: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _failures(self) -> Iterator[dict[str, list[float]]]:
        """The failures by address, locked for this thread and process; saved afterwards."""
        with self._lock:
            if self.path is None:
                yield self._memory
                return
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            with os.fdopen(fd, "r+") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    failures = json.loads(handle.read() or "{}")
                except ValueError:
                    failures = {}
                yield failures
                handle.seek(0)
                handle.truncate()
                handle.write(json.dumps(failures))

    def _recent(self, failures: dict[str, list[float]], key: str, now: float) -> list[float]:
        recent = [t for t in failures.get(key, []) if now - t < self.window]
        if recent:
            failures[key] = recent
        else:
            failures.pop(key, None)
        return recent

    def wait(self, key: str, now: float | None = None) -> int:
        """Seconds before `key` may try again (0: now)."""
        now = time.time() if now is None else now
        with self._failures() as failures:
            recent = self._recent(failures, key, now)
            if len(recent) < self.attempts:
                return 0
            return int(recent[0] + self.window - now + 0.999)

    def fail(self, key: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._failures() as failures:
            failures[key] = [*self._recent(failures, key, now), now]

    def succeed(self, key: str) -> None:
        with self._failures() as failures:
            failures.pop(key, None)


def main() -> int:
    """`python3 -m vatools.control.auth FILE`: store the password read on stdin as a hash
    (the package's postinst uses this; the password never appears on a command line)."""
    if len(sys.argv) != 2:
        print("usage: python3 -m vatools.control.auth HASH_FILE < password", file=sys.stderr)
        return 2
    password = sys.stdin.read().rstrip("\n")
    if not password:
        print("no password on stdin: nothing stored", file=sys.stderr)
        return 1
    salt = reproducible_salt(password) if os.environ.get("SOURCE_DATE_EPOCH") else None
    write_hash(Path(sys.argv[1]), hash_password(password, salt=salt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
