"""Services: restart the application's services; reboot or shut down, after confirmation."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from vatools.control.client import HelperError
from vatools.control.pages import client

bp = Blueprint("services", __name__)

ACTIONS = {"restart": ("restart-services", "Restart the application"),
           "reboot": ("reboot", "Reboot the machine"),
           "poweroff": ("poweroff", "Shut down the machine")}


@bp.route("/services")
def index() -> Any:
    from vatools.control.pages.dashboard import _service_states

    return render_template("services.html", services=_service_states.get())


@bp.route("/services/<action>", methods=["POST"])
def act(action: str) -> Any:
    if action not in ACTIONS:
        return redirect(url_for("services.index"))
    op, title = ACTIONS[action]
    if action != "restart" and request.form.get("confirm") != "yes":
        flash(f"{title}: not done, tick the box to confirm.")
        return redirect(url_for("services.index"))
    try:
        flash(str(client().call(op)))
    except HelperError as e:
        flash(f"{title} failed: {e.describe()}")
    return redirect(url_for("services.index"))
