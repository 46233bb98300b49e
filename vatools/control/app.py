"""The Flask application: create_app() wires configuration, auth, helper, jobs, pages, plugins.

gunicorn serves it as `vatools.control.app:create_app()` (gunicorn_conf.py).
Every request passes guard.py's checks first (Host header, body size, a live session for
every page but the login page, the CSRF token of every state-changing request: form field
`csrf_token` or header X-CSRF-Token), before any plugin's hook.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, session, url_for

from vatools.control import auth, guard
from vatools.control.client import HelperClient
from vatools.control.config import Config
from vatools.control.jobs import Jobs
from vatools.control.plugins import Broken, Plugin, load_plugins
from vatools.control.sessions import Sessions, signing_key

log = logging.getLogger("appliance-control")


class ControlFlask(Flask):
    """Flask whose guard runs before every other request hook, a plugin's included (its
    before_app_request or url_value_preprocessor would otherwise run first), and where a
    plugin's SystemExit is an error of that request, not the end of the worker."""

    request_class = guard.ControlRequest
    guard_check: Any = None

    def preprocess_request(self) -> Any:
        answer = self.guard_check()
        if answer is not None:
            return answer
        try:
            return super().preprocess_request()
        except SystemExit as e:
            raise RuntimeError(f"a request hook called exit ({e.code})") from e

    def dispatch_request(self) -> Any:
        try:
            return super().dispatch_request()
        except SystemExit as e:
            raise RuntimeError(f"the page called exit ({e.code})") from e


def _menu(app: Flask) -> list[tuple[str, str]]:
    """The plugins' menu entries as (label, URL); a plugin whose entry does not build (an
    unknown endpoint, say) is shown as broken and leaves the menu, not every page failing."""
    entries = []
    broken: list[Broken] = app.extensions["control.broken"]
    for plugin in app.extensions["control.plugins"]:
        if any(b.name == plugin.name for b in broken):
            continue
        try:
            built = [(str(entry.label), url_for(entry.endpoint)) for entry in plugin.menu]
        except (Exception, SystemExit) as e:  # noqa: BLE001 - foreign code
            log.exception("plugin %s: menu failed", plugin.name)
            broken.append(Broken(plugin.name, f"menu: {type(e).__name__}: {e}"))
            continue
        entries.extend(built)
    return entries


def create_app(config: Config | None = None,
               plugins: tuple[list[Plugin], list[Broken]] | None = None) -> Flask:
    config = config if config is not None else Config.load()
    app = ControlFlask(__name__, static_folder=None)
    app.config.update(
        SECRET_KEY=signing_key(config.session_key_file),
        SESSION_COOKIE_NAME="appliance_control",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=config.secure_cookies,
        # Every request's limit is guard.SMALL_BODY, raised after login for the upload only.
        MAX_CONTENT_LENGTH=guard.SMALL_BODY,
    )
    if config.trusted_proxies:
        app.wsgi_app = guard.TrustedProxies(  # type: ignore[method-assign,assignment]
            app.wsgi_app, config.trusted_proxies)
    app.extensions["control.config"] = config
    client = HelperClient(config.socket)
    app.extensions["control.client"] = client
    app.extensions["control.jobs"] = Jobs(client, config.jobs_dir)
    app.extensions["control.ratelimit"] = auth.RateLimit(path=config.state_dir / "login-failures")
    sessions = Sessions(config.sessions_file, config.session_idle, config.session_lifetime)
    app.extensions["control.sessions"] = sessions
    app.guard_check = guard.guard(config, sessions, guard.own_names())
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
        # a clash of names, or any failure of foreign code, must not stop the interface
        except (Exception, SystemExit) as e:  # noqa: BLE001
            app.extensions["control.broken"].append(Broken(plugin.name, f"{type(e).__name__}: {e}"))
    app.extensions["control.plugins"] = good
    with app.test_request_context():
        _menu(app)  # a broken menu shows on the dashboard from the start

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
        broken = {b.name for b in app.extensions["control.broken"]}
        logged_in = bool(session.get("admin"))
        return {"csrf_token": session["csrf"],
                "plugins": [p for p in app.extensions["control.plugins"] if p.name not in broken],
                "plugin_menu": _menu(app) if logged_in else [],
                "logged_in": logged_in}

    return app
