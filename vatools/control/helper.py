"""appliance-control-helper: the root side. Serves the allow-listed operations (ops.py) on a
Unix socket to one uid, the web process's user, checked with SO_PEERCRED.

Protocol: the client sends one JSON line {"op": NAME, "args": {...}}; the helper answers with
JSON lines {"progress": PERCENT, "text": TEXT} while working, then one final line
{"ok": true, "result": ...} or {"ok": false, "error": MESSAGE, "output": COMMAND_OUTPUT}.
An operation runs to its end even if the client goes away (the web page picks it up again).

Under systemd the socket comes from appliance-control-helper.socket (LISTEN_FDS); without
it (a chroot, a test) the helper binds the configured path itself.
"""

from __future__ import annotations

import argparse
import grp
import json
import logging
import os
import pwd
import socket
import struct
import sys
import threading
from pathlib import Path
from typing import Any

from vatools.control.config import Config
from vatools.control.ops import BadRequest, Operations, validate
from vatools.errors import CommandFailed, VatoolsError

log = logging.getLogger("appliance-control-helper")
SD_LISTEN_FDS_START = 3
MAX_REQUEST = 64 * 1024
# Operations that change the system run one at a time.
_exclusive = threading.Lock()


def peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


class _Reply:
    """Writes JSON lines to the client; a client gone away does not stop the operation."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.gone = False

    def send(self, message: dict[str, Any]) -> None:
        if self.gone:
            return
        try:
            self.conn.sendall(json.dumps(message).encode() + b"\n")
        except OSError:
            self.gone = True


def _read_request(conn: socket.socket) -> Any:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            raise BadRequest("request too long")
    try:
        return json.loads(data)
    except ValueError:
        raise BadRequest("the request is not one JSON line") from None


def handle(conn: socket.socket, allowed_uid: int, operations: Operations) -> None:
    reply = _Reply(conn)
    try:
        uid = peer_uid(conn)
        if uid != allowed_uid:
            log.warning("refused a connection from uid %d", uid)
            reply.send({"ok": False, "error": f"uid {uid} may not use this helper", "output": ""})
            return
        request = _read_request(conn)
        if not isinstance(request, dict):
            raise BadRequest("the request must be a JSON object")
        args = validate(request.get("op"), request.get("args", {}))
        op = str(request["op"])
        log.info("uid %d: %s %s", uid, op, args)
        lock: Any = _exclusive if op not in ("ping", "list-upgrades") else _NoLock()
        with lock:
            result = operations.perform(
                op, args, lambda pct, text: reply.send({"progress": round(pct, 1), "text": text}))
        reply.send({"ok": True, "result": result})
    except CommandFailed as e:
        reply.send({"ok": False, "error": e.message.splitlines()[0], "output": e.output})
    except VatoolsError as e:
        message = e.message + (f" ({e.hint})" if e.hint else "")
        reply.send({"ok": False, "error": message, "output": ""})
    except Exception as e:  # noqa: BLE001 - a bug must reach the UI, not kill the helper
        log.exception("operation failed")
        reply.send({"ok": False, "error": f"internal error: {type(e).__name__}: {e}",
                     "output": ""})
    finally:
        conn.close()


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


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


def serve(sock: socket.socket, allowed_uid: int, operations: Operations,
          stop: threading.Event | None = None) -> None:
    sock.settimeout(0.5)
    while stop is None or not stop.is_set():
        try:
            conn, _ = sock.accept()
        except socket.timeout:
            continue
        conn.settimeout(None)
        threading.Thread(target=handle, args=(conn, allowed_uid, operations), daemon=True).start()


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
    sock = listening_socket(config.socket, grp.getgrgid(account.pw_gid).gr_name)
    serve(sock, account.pw_uid, Operations(config.backups_dir, config.user))
    return 0


if __name__ == "__main__":
    sys.exit(main())
