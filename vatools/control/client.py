"""The web side of the helper protocol (see helper.py): send one operation, follow its progress."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Callable

from vatools.errors import VatoolsError

Progress = Callable[[float, str], None]


class HelperError(VatoolsError):
    """The helper refused or failed an operation; `output` is the command's output, if any."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class HelperClient:
    def __init__(self, path: Path) -> None:
        self.path = path

    def call(self, op: str, args: dict[str, str] | None = None,
             progress: Progress | None = None) -> Any:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                sock.connect(str(self.path))
            except OSError as e:
                raise HelperError(f"the root helper is not reachable at {self.path}: "
                                  f"{e.strerror} (is appliance-control-helper.socket "
                                  "running?)") from None
            try:
                sock.sendall(json.dumps({"op": op, "args": args or {}}).encode() + b"\n")
            except BrokenPipeError:
                pass  # the helper answered and hung up first (a refusal): read its answer
            with sock.makefile("rb") as lines:
                for raw in lines:
                    message = json.loads(raw)
                    if "progress" in message:
                        if progress is not None:
                            progress(float(message["progress"]), str(message.get("text", "")))
                        continue
                    if message.get("ok"):
                        return message.get("result")
                    raise HelperError(str(message.get("error", "failed")),
                                      str(message.get("output", "")))
        finally:
            sock.close()
        raise HelperError(f"the root helper closed the connection during {op}")
