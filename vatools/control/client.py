"""The web side of the helper protocol (protocol.py): send one operation, follow its progress.

Nothing waits forever: connecting and sending have CONNECT_TIMEOUT seconds, and the helper must
say something (progress, a heartbeat or the result) at least every IDLE_TIMEOUT seconds; it
sends a heartbeat every protocol.HEARTBEAT seconds while it works, however long that takes.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Callable

from vatools.control.protocol import (HEARTBEAT, Alive, HelperError, Progress, decode_reply,
                                      encode_request)

__all__ = ["HelperClient", "HelperError", "ProgressCallback"]

ProgressCallback = Callable[[float, str], None]
CONNECT_TIMEOUT = 10.0
IDLE_TIMEOUT = 8 * HEARTBEAT


class HelperClient:
    def __init__(self, path: Path) -> None:
        self.path = path

    def call(self, op: str, args: dict[str, str] | None = None,
             progress: ProgressCallback | None = None) -> Any:
        """The operation's result; its failure (message, hint, output) as HelperError."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            try:
                sock.connect(str(self.path))
            except OSError as e:
                raise HelperError(f"the root helper is not reachable at {self.path}: "
                                  f"{e.strerror or e}",
                                  hint="is appliance-control-helper.socket running? "
                                       "(systemctl status appliance-control-helper.socket)"
                                  ) from None
            try:
                sock.sendall(encode_request(op, args))
            except BrokenPipeError:
                pass  # the helper answered and hung up first (a refusal): read its answer
            except socket.timeout:
                raise self._silent(op, CONNECT_TIMEOUT) from None
            sock.settimeout(IDLE_TIMEOUT)
            with sock.makefile("rb") as lines:
                try:
                    for raw in lines:
                        reply = decode_reply(raw)
                        if isinstance(reply, Alive):
                            continue
                        if isinstance(reply, Progress):
                            if progress is not None:
                                progress(reply.percent, reply.text)
                            continue
                        return reply.value
                except socket.timeout:
                    raise self._silent(op, IDLE_TIMEOUT) from None
        finally:
            sock.close()
        raise HelperError(f"the root helper closed the connection during {op}",
                          hint="its log says why: journalctl -u appliance-control-helper")

    def _silent(self, op: str, seconds: float) -> HelperError:
        return HelperError(f"the root helper did not answer {op} within {seconds:g} seconds",
                           hint="its log says what it does: journalctl -u "
                                "appliance-control-helper")
