"""The Flask application: create_app() wires configuration, auth, helper, jobs, pages, plugins.

gunicorn serves it as `vatools.control.app:create_app()` (gunicorn_conf.py).
Every request but the login page needs a logged-in session; every state-changing request
needs the session's CSRF token (form field `csrf_token` or header X-CSRF-Token).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, abort, g, redirect, request, session, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

from vatools.control import auth
from vatools.control.client import HelperClient
from vatools.control.config import Config
from vatools.control.jobs import Jobs
from vatools.control.plugins import Broken, Plugin, load_plugins

PUBLIC_ENDPOINTS = {"account.login"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _session_key(path: Path) -> bytes:
    """The cookie-signing key, made on first start and kept (sessions survive a restart)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        return key


def create_app(config: Config | None = None,
               plugins: tuple[list[Plugin], list[Broken]] | None = None) -> Flask:
    config = config if config is not None else Config.load()
    conf: Config = config  # for the closures below
    app = Flask(__name__, static_folder=None)
    app.config.update(
        SECRET_KEY=_session_key(config.session_key_file),
        SESSION_COOKIE_NAME="appliance_control",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=config.secure_cookies,
        MAX_CONTENT_LENGTH=8 * 1024**3,  # uploaded backups
    )
    if config.behind_proxy:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign,assignment]
    app.extensions["control.config"] = config
    client = HelperClient(config.socket)
    app.extensions["control.client"] = client
    app.extensions["control.jobs"] = Jobs(client, config.jobs_dir)
    app.extensions["control.ratelimit"] = auth.RateLimit(path=config.state_dir / "login-failures")
    loaded, broken = plugins if plugins is not None else load_plugins()
    app.extensions["control.broken"] = list(broken)

    from vatools.control.pages import account, backups, dashboard, services, settings, updates

    for module in (account, dashboard, updates, backups, services, settings):
        app.register_blueprint(module.bp)
    good = []
    for plugin in loaded:
        try:
            if plugin.blueprint is not None:
                app.register_blueprint(plugin.blueprint, url_prefix=f"/plugins/{plugin.name}")
            good.append(plugin)
        except Exception as e:  # noqa: BLE001 - a clash of names must not stop the interface
            app.extensions["control.broken"].append(Broken(plugin.name, f"{type(e).__name__}: {e}"))
    app.extensions["control.plugins"] = good

    @app.before_request
    def guard() -> Any:
        g.config = conf
        if request.endpoint not in PUBLIC_ENDPOINTS:
            stored = auth.read_hash(conf.password_file)
            if (not session.get("admin") or stored is None
                    or session.get("pw") != auth.fingerprint(stored)):
                session.pop("admin", None)
                if request.method in SAFE_METHODS:
                    return redirect(url_for("account.login", next=request.path))
                abort(401)
        if request.method not in SAFE_METHODS:
            given = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token")
            if not auth.csrf_ok(session.get("csrf"), given):
                abort(400, "the form's security token is missing or stale: reload the page "
                           "and try again")
        return None

    @app.after_request
    def headers(response: Any) -> Any:
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.context_processor
    def common() -> dict[str, Any]:
        if "csrf" not in session:
            session["csrf"] = auth.new_csrf_token()
        return {"csrf_token": session["csrf"], "plugins": app.extensions["control.plugins"],
                "logged_in": bool(session.get("admin"))}

    return app
