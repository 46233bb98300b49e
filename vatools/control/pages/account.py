"""Login (rate-limited), logout, password change."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for

from vatools.control import auth
from vatools.control.pages import config
from vatools.control.sessions import Sessions
from vatools.errors import VatoolsError

bp = Blueprint("account", __name__)


def _limit() -> auth.RateLimit:
    value: auth.RateLimit = current_app.extensions["control.ratelimit"]
    return value


def _sessions() -> Sessions:
    value: Sessions = current_app.extensions["control.sessions"]
    return value


def _client() -> str:
    """The rate limit's key of this client (X-Forwarded-For counts only from a trusted proxy:
    guard.TrustedProxies)."""
    return auth.client_key(request.remote_addr or "unknown")


def _start_session(stored: str, csrf: str | None = None) -> None:
    session.clear()  # a fresh session (and CSRF token unless given) on login
    session.update(_sessions().start())
    session["admin"] = True
    session["pw"] = auth.fingerprint(stored)
    session["csrf"] = csrf or auth.new_csrf_token()


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    stored = auth.read_hash(config().password_file)
    if request.method == "GET":
        return render_template("login.html", no_password=stored is None,
                               next=request.args.get("next", ""))
    client = _client()
    # The attempt counts before the password is checked: concurrent guesses cannot pass.
    wait = _limit().attempt(client)
    if wait:
        return render_template(
            "login.html", error=f"Too many failed logins from {request.remote_addr}. "
            f"Try again in {wait} seconds.", next=request.form.get("next", "")), 429
    password = request.form.get("password", "")
    if stored is None or not auth.verify_password(password, stored):
        return render_template("login.html", error="Wrong password.", no_password=stored is None,
                               next=request.form.get("next", "")), 403
    _limit().succeed(client)
    if auth.needs_rehash(stored):  # a hash of weaker parameters: made anew at today's
        stored = auth.hash_password(password)
        auth.write_hash(config().password_file, stored)
    _start_session(stored)
    return redirect(auth.safe_path(request.form.get("next"), url_for("dashboard.index")))


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    _sessions().end(session)  # the cookie, even copied, is no longer valid
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("account.login"))


@bp.route("/password", methods=["GET", "POST"])
def password() -> Any:
    if request.method == "GET":
        return render_template("password.html")
    client = "password " + _client()
    wait = _limit().attempt(client)
    if wait:
        return render_template("password.html", error="Too many wrong current passwords. "
                               f"Try again in {wait} seconds."), 429
    stored = auth.read_hash(config().password_file) or ""
    if not auth.verify_password(request.form.get("current", ""), stored):
        return render_template("password.html", error="The current password is wrong."), 403
    _limit().succeed(client)
    new = request.form.get("new", "")
    try:
        auth.check_new_password(new, request.form.get("again", ""))
    except VatoolsError as e:
        return render_template("password.html", error=f"Not changed: {e.message}."), 400
    hashed = auth.hash_password(new)
    auth.write_hash(config().password_file, hashed)
    _sessions().end_all()  # every session ends, copies of this one's cookie included
    _start_session(hashed, session.get("csrf"))  # this browser goes on in a new session
    flash("Password changed. Other sessions are logged out.")
    return redirect(url_for("dashboard.index"))
