"""Settings: the mail smarthost (postfix relayhost), read here with augeas, written by the
helper with augeas."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from vatools.control import settings as system_settings
from vatools.control.client import HelperError
from vatools.control.pages import client
from vatools.errors import VatoolsError

bp = Blueprint("settings", __name__)


@bp.route("/settings")
def index() -> Any:
    relayhost, error = "", ""
    try:
        relayhost = system_settings.get_relayhost()
    except VatoolsError as e:
        error = e.message
    return render_template("settings.html", relayhost=relayhost, error=error)


@bp.route("/settings/relayhost", methods=["POST"])
def relayhost() -> Any:
    try:
        flash("Saved: " + str(client().call("set-relayhost",
                                            {"relayhost": request.form.get("relayhost", "").strip()})))
    except HelperError as e:
        flash(f"Not saved: {e.describe()}")
    return redirect(url_for("settings.index"))
