"""Login (rate-limited), logout, password change."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for

from vatools.control import auth
from vatools.control.pages import config
from vatools.errors import VatoolsError

bp = Blueprint("account", __name__)


def _safe_next(target: str | None) -> str:
    # Only a path on this site: never an absolute URL (no open redirect).
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return url_for("dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    stored = auth.read_hash(config().password_file)
    if request.method == "GET":
        return render_template("login.html", no_password=stored is None,
                               next=request.args.get("next", ""))
    limit: auth.RateLimit = current_app.extensions["control.ratelimit"]
    client = request.remote_addr or "unknown"
    wait = limit.wait(client)
    if wait:
        return render_template(
            "login.html", error=f"Too many failed logins from {client}. Try again in {wait} "
            "seconds.", next=request.form.get("next", "")), 429
    if stored is None or not auth.verify_password(request.form.get("password", ""), stored):
        limit.fail(client)
        return render_template("login.html", error="Wrong password.", no_password=stored is None,
                               next=request.form.get("next", "")), 403
    limit.succeed(client)
    session.clear()  # a fresh session (and CSRF token) on login
    session["admin"] = True
    session["pw"] = auth.fingerprint(stored)
    session["csrf"] = auth.new_csrf_token()
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("account.login"))


@bp.route("/password", methods=["GET", "POST"])
def password() -> Any:
    if request.method == "GET":
        return render_template("password.html")
    stored = auth.read_hash(config().password_file) or ""
    if not auth.verify_password(request.form.get("current", ""), stored):
        return render_template("password.html", error="The current password is wrong."), 403
    new = request.form.get("new", "")
    try:
        auth.check_new_password(new, request.form.get("again", ""))
    except VatoolsError as e:
        return render_template("password.html", error=f"Not changed: {e.message}."), 400
    hashed = auth.hash_password(new)
    auth.write_hash(config().password_file, hashed)
    session["pw"] = auth.fingerprint(hashed)  # this session stays; every other one ends
    flash("Password changed. Other sessions are logged out.")
    return redirect(url_for("dashboard.index"))
