"""The web side of the helper protocol (protocol.py): send one operation, follow its progress."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Callable

from vatools.control.protocol import HelperError, Progress, decode_reply, encode_request

__all__ = ["HelperClient", "HelperError", "ProgressCallback"]

ProgressCallback = Callable[[float, str], None]


class HelperClient:
    def __init__(self, path: Path) -> None:
        self.path = path

    def call(self, op: str, args: dict[str, str] | None = None,
             progress: ProgressCallback | None = None) -> Any:
        """The operation's result; its failure (message, hint, output) as HelperError."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                sock.connect(str(self.path))
            except OSError as e:
                raise HelperError(f"the root helper is not reachable at {self.path}: "
                                  f"{e.strerror}",
                                  hint="is appliance-control-helper.socket running? "
                                       "(systemctl status appliance-control-helper.socket)"
                                  ) from None
            try:
                sock.sendall(encode_request(op, args))
            except BrokenPipeError:
                pass  # the helper answered and hung up first (a refusal): read its answer
            with sock.makefile("rb") as lines:
                for raw in lines:
                    reply = decode_reply(raw)
                    if isinstance(reply, Progress):
                        if progress is not None:
                            progress(reply.percent, reply.text)
                        continue
                    return reply.value
        finally:
            sock.close()
        raise HelperError(f"the root helper closed the connection during {op}",
                          hint="its log says why: journalctl -u appliance-control-helper")
