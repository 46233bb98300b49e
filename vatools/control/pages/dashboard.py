"""The dashboard (the appliance and the machine at a glance) and the jobs' JSON state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, render_template

from vatools.control import sysinfo
from vatools.control.client import HelperError
from vatools.control.pages import client, jobs
from vatools.control.plugins import widgets_of

bp = Blueprint("dashboard", __name__)

_appliance = sysinfo.Cached(10, sysinfo.appliance)
# The machine's figures at most every 2 s: a dashboard reloaded by many clients reads /proc once.
_machine = sysinfo.Cached(2, sysinfo.machine)


def _services() -> list[tuple[str, str]]:
    return [(unit, sysinfo.service_state(unit)) for unit in _appliance.get().services]


_service_states = sysinfo.Cached(5, _services)

# The health checks run as root in the helper (they read debconf, run the appliance's check
# programs); the page asks for the results at most every HEALTH_SECONDS (per app).
HEALTH_SECONDS = 10
HEALTH_WORDS = {"ok": "passes", "failed": "FAILS", "unknown": "not known"}


@dataclass(frozen=True)
class Health:
    checks: tuple[dict[str, str], ...] = ()
    ok: bool = False
    error: str = ""


def _ask_health() -> Health:
    try:
        report = client().call("health-check")
        return Health(tuple(report["checks"]), bool(report["ok"]))
    except HelperError as e:
        return Health(error=e.describe())


def _health() -> Health:
    cache = current_app.extensions.setdefault(
        "control.health", sysinfo.Cached(HEALTH_SECONDS, _ask_health))
    found: Health = cache.get()
    return found


@bp.route("/")
def index() -> Any:
    widgets = []
    for plugin in current_app.extensions["control.plugins"]:
        found, error = widgets_of(plugin)
        widgets.append((plugin, found, error))
    return render_template("dashboard.html", appliance=_appliance.get(),
                           machine=_machine.get(), services=_service_states.get(),
                           health=_health(), health_words=HEALTH_WORDS,
                           widgets=widgets, broken=current_app.extensions["control.broken"])


@bp.route("/jobs/<job_id>")
def job(job_id: str) -> Any:
    found = jobs().get(job_id)
    if found is None:
        abort(404)
    return jsonify(found.to_json())
