"""The admin password (a salted scrypt hash on disk), CSRF tokens, the login rate limit and
the check of a redirect target.

>>> stored = hash_password("correct horse", n=2**10)
>>> stored.startswith("scrypt$")
True
>>> verify_password("correct horse", stored), verify_password("wrong", stored)
(True, False)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import ipaddress
import os
import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

from vatools.control.statefile import locked_json
from vatools.errors import VatoolsError

# scrypt at OWASP's recommendation (2024): N=2**17, r=8, p=1 costs 128 MiB and ~0.3 s: cheap
# for one login, dear for guessing. Hashes made with other parameters (2**15 before) still
# verify, and are made anew at the next login (needs_rehash).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
MIN_PASSWORD = 10
# At most two scrypt computations at once per process: 128 MiB each, whatever the concurrency.
_SCRYPT_SLOTS = threading.BoundedSemaphore(2)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str, n: int | None = None, salt: bytes | None = None) -> str:
    n = SCRYPT_N if n is None else n
    salt = os.urandom(16) if salt is None else salt
    with _SCRYPT_SLOTS:
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
        with _SCRYPT_SLOTS:
            actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                                    r=int(r), p=int(p), maxmem=2 * 128 * int(n) * int(r),
                                    dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, base64.b64decode(digest))


def needs_rehash(stored: str) -> bool:
    """True for a hash made with weaker parameters than today's (SCRYPT_N, SCRYPT_R, SCRYPT_P).

    >>> needs_rehash(hash_password("x", n=2**10)), needs_rehash(f"scrypt${SCRYPT_N}$8$1$s$d")
    (True, False)
    """
    try:
        kind, n, r, p, _salt, _digest = stored.strip().split("$")
        return kind != "scrypt" or (int(n), int(r), int(p)) < (SCRYPT_N, SCRYPT_R, SCRYPT_P)
    except ValueError:
        return True


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


def safe_path(target: str | None, fallback: str) -> str:
    """`target` when it is a path on this site, else `fallback`: never an absolute or
    scheme-relative URL (no open redirect through a `next` or `back` field).

    >>> [safe_path(t, "/") for t in ("/backups", "//evil.example", "/\\\\evil", "https://x", None)]
    ['/backups', '/', '/', '/', '/']
    """
    if (target and target.startswith("/") and not target.startswith(("//", "/\\"))
            and not any(c in target for c in "\\\r\n\t")):
        return target
    return fallback


def client_key(address: str) -> str:
    """The rate limit's key of a client address: an IPv6 address counts as its /64 (one
    host usually holds the whole /64), an IPv4-mapped one as its IPv4 address.

    >>> client_key("2001:db8:1:2:aaaa::1"), client_key("::ffff:192.0.2.7"), client_key("x")
    ('2001:db8:1:2::/64', '192.0.2.7', 'x')
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


class RateLimit:
    """At most `attempts` login attempts per client key in `window` seconds (a success clears
    that key's), and at most `total` attempts of all clients together (guessing from many
    addresses at once). An attempt is recorded before the password is checked, so concurrent
    guesses cannot slip past the count; a refused attempt is not recorded, and every write
    drops the entries older than the window, so the record stays at most `total` entries.

    With a `path`, the attempts are kept in that file (under a lock), so every worker process
    of the web server counts the same attempts.

    >>> limit = RateLimit(attempts=2, window=60, total=3)
    >>> limit.attempt("a", now=0.0), limit.attempt("a", now=1.0), limit.attempt("a", now=2.0)
    (0, 0, 58)
    >>> limit.attempt("b", now=2.0), limit.attempt("c", now=3.0)
    (0, 57)
    >>> limit.attempt("c", now=61.0)
    0
    """

    def __init__(self, attempts: int = 5, window: float = 300, path: Path | None = None,
                 total: int = 100) -> None:
        self.attempts = attempts
        self.window = window
        self.path = path
        self.total = total
        self._memory: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _failures(self) -> Iterator[dict[str, list[float]]]:
        """The attempts by key, locked for this thread and process; saved afterwards."""
        with self._lock:
            if self.path is None:
                yield self._memory
                return
            with locked_json(self.path) as failures:
                yield failures

    def _prune(self, failures: dict[str, list[float]], now: float) -> None:
        """Drop every key's entries older than the window (not only the asking key's)."""
        for key in list(failures):
            recent = [t for t in failures[key] if now - t < self.window]
            if recent:
                failures[key] = recent
            else:
                del failures[key]

    def _wait(self, failures: dict[str, list[float]], key: str, now: float) -> int:
        recent = failures.get(key, [])
        if len(recent) >= self.attempts:
            return int(recent[0] + self.window - now + 0.999)
        everyone = sorted(t for times in failures.values() for t in times)
        if len(everyone) >= self.total:
            return int(everyone[-self.total] + self.window - now + 0.999)
        return 0

    def attempt(self, key: str, now: float | None = None) -> int:
        """Record an attempt of `key` and return 0, or return the seconds it has to wait
        (nothing recorded)."""
        now = time.time() if now is None else now
        with self._failures() as failures:
            self._prune(failures, now)
            wait = self._wait(failures, key, now)
            if not wait:
                failures.setdefault(key, []).append(now)
            return wait

    def wait(self, key: str, now: float | None = None) -> int:
        """Seconds before `key` may try again (0: now)."""
        now = time.time() if now is None else now
        with self._failures() as failures:
            self._prune(failures, now)
            return self._wait(failures, key, now)

    def fail(self, key: str, now: float | None = None) -> None:
        """Record a failure of `key` without checking the limit."""
        now = time.time() if now is None else now
        with self._failures() as failures:
            self._prune(failures, now)
            failures.setdefault(key, []).append(now)

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
