"""Sessions that end: the live session ids kept server-side, idle and absolute expiry, and the
key that signs the session cookie.

The cookie (signed, not secret) carries a session id and the time of its last request; the
id is valid only while it is listed in the sessions file, shared by the worker processes.
Logout removes the id, a password change removes every id (the changing session gets a new
one), so a cookie copied before either no longer works.

>>> now = [1000.0]
>>> live = Sessions(None, idle=60, lifetime=600, clock=lambda: now[0])
>>> cookie = live.start()
>>> live.valid(cookie), live.valid({"sid": "forged", "seen": 1000.0})
(True, False)
>>> now[0] = 1100.0; live.valid(cookie)  # 100 s idle
False
>>> cookie = live.start(); live.end(cookie); live.valid(cookie)
False
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, MutableMapping

from vatools.control.statefile import locked_json
from vatools.errors import VatoolsError

KEY_BYTES = 32
KEY_FILE = "session-key"  # in the state directory
MAX_SESSIONS = 64  # the oldest live sessions end first beyond this


class Sessions:
    def __init__(self, path: Path | None, idle: float, lifetime: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.idle = idle
        self.lifetime = lifetime
        self.clock = clock
        self._memory: dict[str, float] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _live(self, write: bool) -> Iterator[dict[str, float]]:
        """The live session ids with their login times, locked for this thread and process."""
        with self._lock:
            if self.path is None:
                yield self._memory
                return
            with locked_json(self.path, write) as live:
                yield live

    def _prune(self, live: dict[str, float], now: float) -> None:
        for sid, started in list(live.items()):
            if not isinstance(started, (int, float)) or now - started >= self.lifetime:
                del live[sid]
        for sid in sorted(live, key=live.__getitem__)[:max(0, len(live) - MAX_SESSIONS + 1)]:
            del live[sid]

    def start(self) -> dict[str, Any]:
        """A new live session: the values its cookie carries."""
        now = self.clock()
        sid = secrets.token_urlsafe(24)
        with self._live(write=True) as live:
            self._prune(live, now)
            live[sid] = now
        return {"sid": sid, "seen": now}

    def valid(self, cookie: MutableMapping[str, Any]) -> bool:
        """True while the cookie's session is live, not idle too long and not too old; a
        valid cookie's last request becomes now."""
        now = self.clock()
        sid, seen = cookie.get("sid"), cookie.get("seen")
        if not isinstance(sid, str) or not isinstance(seen, (int, float)):
            return False
        if now - seen >= self.idle:
            return False
        with self._live(write=False) as live:
            started = live.get(sid)
        if not isinstance(started, (int, float)) or now - started >= self.lifetime:
            return False
        cookie["seen"] = now
        return True

    def end(self, cookie: MutableMapping[str, Any]) -> None:
        with self._live(write=True) as live:
            live.pop(str(cookie.get("sid")), None)

    def end_all(self) -> None:
        with self._live(write=True) as live:
            live.clear()


def signing_key(path: Path) -> bytes:
    """The cookie-signing key. The package's postinst makes it; without it (a developer's run,
    the tests), the first process makes it: written whole to a temporary file, then linked
    into place, so a second process starting at the same time reads that key, never a
    half-written one, and never makes its own."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = secrets.token_bytes(KEY_BYTES)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(key)
            try:
                os.link(tmp, path)
            except FileExistsError:
                key = path.read_bytes()
        finally:
            os.unlink(tmp)
    if len(key) < KEY_BYTES:
        raise VatoolsError(f"{path} holds {len(key)} bytes, not a session key of {KEY_BYTES}",
                           hint=f"remove {path} and restart appliance-control: a new key is "
                                "made (every session ends)")
    return key
