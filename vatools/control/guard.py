"""What every request passes before any page or plugin code sees it: the proxy headers of a
trusted proxy only, the Host header's allow-list, a small body (a large one only for the
backup upload, after login), a live session, the CSRF token.

>>> host_name("Wiki.Example.org.:8080"), host_name("[2001:db8::1]:80"), host_name("x:y:z")
('wiki.example.org', '2001:db8::1', '')
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any, Callable, Iterable

from flask import Request, abort, g, redirect, request, session, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

from vatools.control import auth
from vatools.control.config import Config
from vatools.control.sessions import Sessions

PUBLIC_ENDPOINTS = {"account.login"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Bodies of anonymous requests, and of every form: read into memory, never spooled to disk.
SMALL_BODY = 256 * 1024
# An uploaded backup, only for a logged-in session.
UPLOAD_BODY = 8 * 1024**3
UPLOAD_ENDPOINTS = {"backups.upload"}


class ControlRequest(Request):
    """A request whose body limit is SMALL_BODY until the guard raises it."""

    body_limit: int = SMALL_BODY

    @property  # type: ignore[override]
    def max_content_length(self) -> int | None:
        return self.body_limit


class TrustedProxies:
    """X-Forwarded-For/-Proto believed only from the given proxy addresses (ProxyFix for
    those, the request untouched for any other client)."""

    def __init__(self, app: Any, proxies: Iterable[str]) -> None:
        self.app = app
        self.fixed = ProxyFix(app, x_for=1, x_proto=1)
        self.proxies = {ipaddress.ip_address(p) for p in proxies}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        try:
            trusted = ipaddress.ip_address(environ.get("REMOTE_ADDR", "")) in self.proxies
        except ValueError:
            trusted = False
        return (self.fixed if trusted else self.app)(environ, start_response)


def host_name(header: str) -> str:
    """The name or address of a Host header, lower case, without port ('' if malformed)."""
    header = header.strip().lower()
    if header.startswith("["):
        address, _, rest = header[1:].partition("]")
        return address if not rest or re.fullmatch(r":\d*", rest) else ""
    name, _, port = header.partition(":")
    if ":" in port or (port and not port.isdigit()):
        return ""
    return name.rstrip(".")


def own_names() -> frozenset[str]:
    """The names the appliance is reached by without configuration."""
    names = {"localhost", socket.gethostname().lower()}
    try:
        names.add(socket.getfqdn().lower())
    except OSError:
        pass
    return frozenset(n.rstrip(".") for n in names if n)


def host_allowed(header: str, allowed: tuple[str, ...], names: frozenset[str]) -> bool:
    """An explicit list (or "*"), else any IP address and the machine's own names: a page of
    another site, its name rebound to this machine's address, is refused.

    >>> names = frozenset({"localhost", "box"})
    >>> [host_allowed(h, (), names) for h in ("box:8080", "192.0.2.1", "[::1]:80", "evil.example")]
    [True, True, True, False]
    >>> wiki = ("wiki.example.org",)
    >>> host_allowed("wiki.example.org", wiki, names), host_allowed("box", wiki, names)
    (True, False)
    """
    name = host_name(header)
    if not name:
        return False
    if allowed:
        return "*" in allowed or name in allowed
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name in names


def guard(config: Config, sessions: Sessions, names: frozenset[str]) -> Callable[[], Any]:
    """The check run before any other request hook (ControlFlask.preprocess_request)."""

    def check() -> Any:
        g.config = config
        if not host_allowed(request.host, config.allowed_hosts, names):
            abort(400, f"this interface is not served as {request.host!r}: add the name to "
                       "allowed_hosts in /etc/appliance-control/appliance-control.conf")
        stored = auth.read_hash(config.password_file)
        logged_in = (bool(session.get("admin")) and stored is not None
                     and session.get("pw") == auth.fingerprint(stored) and sessions.valid(session))
        if logged_in and request.endpoint in UPLOAD_ENDPOINTS:
            request.body_limit = UPLOAD_BODY  # type: ignore[attr-defined]
        limit: int = request.body_limit  # type: ignore[attr-defined]
        if request.content_length is None and "Transfer-Encoding" in request.headers:
            abort(411)  # a streamed body of unknown length: browsers never send one
        if request.content_length is not None and request.content_length > limit:
            abort(413)
        if not logged_in:
            for stale in ("admin", "pw", "sid", "seen"):
                session.pop(stale, None)
            if request.endpoint not in PUBLIC_ENDPOINTS:
                if request.method in SAFE_METHODS:
                    return redirect(url_for("account.login", next=request.path))
                abort(401)
        if request.method not in SAFE_METHODS:
            given = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token")
            if not auth.csrf_ok(session.get("csrf"), given):
                abort(400, "the form's security token is missing or stale: reload the page "
                           "and try again")
        return None

    return check
