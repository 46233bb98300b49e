"""Updates: refresh the package lists, list and install pending upgrades, with apt's progress."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, url_for

from vatools.control.client import HelperError
from vatools.control.pages import client, job_json, jobs

bp = Blueprint("updates", __name__)


@bp.route("/updates")
def index() -> Any:
    job = job_json("updates")
    upgrades, error = None, ""
    if not job or job["state"] != "running":
        try:
            upgrades = client().call("list-upgrades")
        except HelperError as e:
            error = e.describe()
    return render_template("updates.html", job=job, upgrades=upgrades, error=error)


@bp.route("/updates/refresh", methods=["POST"])
def refresh() -> Any:
    jobs().start("updates", "apt-update", "Updating the package lists")
    return redirect(url_for("updates.index"))


@bp.route("/updates/install", methods=["POST"])
def install() -> Any:
    jobs().start("updates", "apt-upgrade", "Installing the updates")
    return redirect(url_for("updates.index"))
