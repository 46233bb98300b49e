"""appliance-control-helper: the root side. Serves the allow-listed operations (protocol.py,
performed by ops.py) on a Unix socket to one uid, the web process's user, checked with
SO_PEERCRED. The protocol's encoding is protocol.py's; an error goes back with its hint.
An operation runs to its end even if the client goes away (the web page picks it up again).

No client can stall it: a request must arrive within REQUEST_TIMEOUT seconds, an answer line
that cannot be sent within SEND_TIMEOUT gives the client up (the operation goes on), at most
MAX_CLIENTS connections are served at once, and a silent operation sends a heartbeat every
protocol.HEARTBEAT seconds. Operations that change the system take one lock, one at a time;
read-only ones (protocol.Operation.exclusive = False) never wait for it.

Under systemd the socket comes from appliance-control-helper.socket (LISTEN_FDS); without
it (a chroot, a test) the helper binds the configured path itself.
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import logging
import os
import pwd
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any, ContextManager

from vatools.control.config import Config
from vatools.control.ops import Operations, unbound
from vatools.control.protocol import (HEARTBEAT, MAX_REQUEST, OPERATIONS, BadRequest,
                                      decode_request, encode_alive, encode_error,
                                      encode_progress, encode_result)
from vatools.errors import VatoolsError

log = logging.getLogger("appliance-control-helper")
SD_LISTEN_FDS_START = 3
# Operations that change the system run one at a time.
_exclusive = threading.Lock()
REQUEST_TIMEOUT = 10.0  # seconds for a client to send its request line
SEND_TIMEOUT = 30.0  # seconds for one answer line to leave; then the client is given up
MAX_CLIENTS = 32  # connections served at once; more are refused at once
_clients = threading.BoundedSemaphore(MAX_CLIENTS)
_active_count = [0]  # connections being served
_active_lock = threading.Lock()


def peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


class _Reply:
    """Writes answer lines to the client (one line at a time: the heartbeat thread writes
    too); a client gone away, or not reading, does not stop the operation."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.gone = False
        self._lock = threading.Lock()

    def send(self, line: bytes) -> None:
        with self._lock:
            if self.gone:
                return
            try:
                self.conn.sendall(line)
            except OSError:  # socket.timeout included: a client that does not read
                self.gone = True


@contextlib.contextmanager
def _heartbeat(reply: _Reply) -> Any:
    """An "alive" line every HEARTBEAT seconds while the block runs."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT):
            reply.send(encode_alive())
    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()


def _read_request(conn: socket.socket) -> bytes:
    """The request line, which must be complete within REQUEST_TIMEOUT (a byte now and then
    does not keep the connection)."""
    data = b""
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while not data.endswith(b"\n"):
        try:
            conn.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = conn.recv(4096)
        except socket.timeout:
            raise BadRequest(f"no request within {REQUEST_TIMEOUT:g} seconds",
                             hint="send one JSON line, then read the answer") from None
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            raise BadRequest("request too long")
    return data


def handle(conn: socket.socket, allowed_uid: int, operations: Operations) -> None:
    reply = _Reply(conn)
    conn.settimeout(SEND_TIMEOUT)
    try:
        uid = peer_uid(conn)
        if uid != allowed_uid:
            log.warning("refused a connection from uid %d", uid)
            raise BadRequest(f"uid {uid} may not use this helper",
                             hint=f"only the web interface's user (uid {allowed_uid}) may")
        op, args = decode_request(_read_request(conn))
        conn.settimeout(SEND_TIMEOUT)
        log.info("uid %d: %s %s", uid, op, args)
        lock: ContextManager[Any] = contextlib.nullcontext()
        if OPERATIONS[op].exclusive:
            lock = _exclusive
        with _heartbeat(reply):
            if OPERATIONS[op].exclusive and _exclusive.locked():
                reply.send(encode_progress(0, "waiting for the running operation to end"))
            with lock:
                result = operations.perform(
                    op, args, lambda pct, text: reply.send(encode_progress(pct, text)))
        reply.send(encode_result(result))
    except Exception as e:  # noqa: BLE001 - a bug must reach the UI, not kill the helper
        if not isinstance(e, VatoolsError):
            log.exception("operation failed")
        reply.send(encode_error(e))
    finally:
        _hang_up(conn)


def _hang_up(conn: socket.socket) -> None:
    """Close after the answer. Input still queued is read away first (at most 64 KiB): on a
    Unix socket, closing with unread input makes the client's read fail (ECONNRESET) before
    it gets the answer, e.g. the error that its request never ended."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
        conn.setblocking(False)
        for _ in range(16):
            if not conn.recv(4096):
                break
    conn.close()


def listening_socket(path: Path, group: str | None) -> socket.socket:
    """The systemd-passed socket, or one bound here: mode 0660, group of the web user."""
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS") == "1":
        return socket.socket(fileno=SD_LISTEN_FDS_START)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    if path.is_socket():
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o117)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    if group is not None:
        os.chown(path, 0, grp.getgrnam(group).gr_gid)
    sock.listen(16)
    return sock


def _serve_one(conn: socket.socket, allowed_uid: int, operations: Operations) -> None:
    try:
        handle(conn, allowed_uid, operations)
    finally:
        with _active_lock:
            _active_count[0] -= 1
        _clients.release()


def code_identity() -> tuple[tuple[int, int, int] | None, ...]:
    """The helper's code files as they are on disk now. dpkg installs a new version of a file
    under a temporary name and renames it over the old one, so an upgrade of the helper's
    package (from the web interface or from a shell) changes the inode."""
    from vatools.control import ops, protocol

    identity: list[tuple[int, int, int] | None] = []
    for module in (sys.modules[__name__], ops, protocol):
        try:
            status = os.stat(str(module.__file__))
            identity.append((status.st_dev, status.st_ino, status.st_mtime_ns))
        except OSError:
            identity.append(None)
    return tuple(identity)


def serve(sock: socket.socket, allowed_uid: int, operations: Operations,
          stop: threading.Event | None = None) -> None:
    """Serve until `stop` is set, or, once an upgrade replaced the helper's code on disk
    (operations.restart_wanted), until no connection is left: systemd's socket then starts
    the new helper on the next request. The helper's units are not restarted by the upgrade
    itself (debian/rules), which may run under this very helper."""
    started = code_identity()
    sock.settimeout(0.5)
    while stop is None or not stop.is_set():
        if code_identity() != started:
            operations.restart_wanted = True
        if operations.restart_wanted:
            with _active_lock:
                if _active_count[0] == 0:
                    log.info("the helper's package was upgraded: exiting for the new code")
                    return
        try:
            conn, _ = sock.accept()
        except socket.timeout:
            continue
        if not _clients.acquire(blocking=False):
            conn.settimeout(1.0)
            _Reply(conn).send(encode_error(BadRequest(
                f"the helper serves {MAX_CLIENTS} connections already",
                hint="try again when the running operations have ended")))
            conn.close()
            continue
        with _active_lock:
            _active_count[0] += 1
        threading.Thread(target=_serve_one, args=(conn, allowed_uid, operations),
                         daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="appliance-control-helper",
        description="Root helper of appliance-control: performs the allow-listed operations "
                    "(package updates, backups, service restarts, reboot, mail relay) for the "
                    "web interface's user, on a Unix socket.")
    parser.add_argument("--config", help="configuration file "
                        "(default: /etc/appliance-control/appliance-control.conf)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        config = Config.load(args.config)
        account = pwd.getpwnam(config.user)
    except KeyError:
        print(f"appliance-control-helper: no user {config.user!r}: is appliance-control "
              "installed?", file=sys.stderr)
        return 3
    except VatoolsError as e:
        print(f"appliance-control-helper: {e.message}", file=sys.stderr)
        return 3
    if os.geteuid() != 0:
        print("appliance-control-helper: must run as root", file=sys.stderr)
        return 3
    if unbound():  # a packaging bug: the unit test test_control_protocol catches it first
        print("appliance-control-helper: allow-listed operations without an implementation: "
              + " ".join(unbound()), file=sys.stderr)
        return 70
    sock = listening_socket(config.socket, grp.getgrgid(account.pw_gid).gr_name)
    serve(sock, account.pw_uid, Operations(config.backups_dir, config.user))
    return 0


if __name__ == "__main__":
    sys.exit(main())
