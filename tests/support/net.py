"""Loopback networking for tests: free ports, a static file server, plain HTTP GETs."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Mapping

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 30) -> tuple[int, str]:
    """(status, body) of a GET; HTTP errors are answers too, not exceptions."""
    status, _, body = http_fetch(url, timeout)
    return status, body


def http_fetch(url: str, timeout: float = 30) -> tuple[int, str, str]:
    """(status, final URL after redirects, body) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.geturl(), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.geturl() or url, error.read().decode("utf-8", "replace")


def wait_for_port(port: int, timeout: float = 30) -> None:
    """Return once something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {LOOPBACK}:{port} after {timeout:.0f} s")
            time.sleep(0.1)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib's name)
        pass  # apt's requests would drown the test output


class _MountsHandler(_QuietHandler):
    """Serves several directories, each under its own URL prefix ("" is the top)."""

    mounts: dict[str, Path] = {}

    def translate_path(self, path: str) -> str:
        first, _, rest = path.lstrip("/").partition("/")
        if first and first in self.mounts:
            self.directory = str(self.mounts[first])
            return super().translate_path("/" + rest)
        self.directory = str(self.mounts[""])
        return super().translate_path(path)


@contextlib.contextmanager
def serve_directory(directory: Path | Mapping[str, Path]) -> Iterator[str]:
    """Serve `directory` over HTTP on 127.0.0.1 (a free port) in a thread; yields the base URL.

    Given a mapping of URL prefix -> directory, serves each under its prefix ("" is the top).
    """
    mounts = {"": directory} if isinstance(directory, Path) else dict(directory)
    handler = type("Handler", (_MountsHandler,), {"mounts": mounts})
    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="repo-server", daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
