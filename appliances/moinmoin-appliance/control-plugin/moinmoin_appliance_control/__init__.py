"""moinmoin-appliance's plugin for appliance-control: wiki statistics, backup and restore of
the wiki (through the backup library, run by the root helper), and a link to the wiki.
Entry point group vatools.control.plugins; see docs/control-plugins.md."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from vatools import appliance
from vatools.control.client import HelperError
from vatools.control.pages import client, job_json
from vatools.control.pages.backups import listing
from vatools.control.plugins import MenuEntry, Plugin, Widget
from vatools.control.sysinfo import Cached
from vatools.errors import VatoolsError
from vatools.run import HOST

bp = Blueprint("moinmoin", __name__, template_folder="templates")
# Reading every revision's metadata: at most once a minute.
_stats = Cached(60, lambda: client().call("appliance-stats"))


def wiki_url() -> str:
    """The wiki at the root of this host's port 80 (the interface is on another port)."""
    host = request.host
    if not host.endswith("]"):
        host = host.rpartition(":")[0] or host
    return f"http://{host}/"


@bp.route("/")
def wiki() -> Any:
    stats: dict[str, str] = {}
    error = ""
    try:
        stats = _stats.get()
    except HelperError as e:
        error = e.describe()
    return render_template("moinmoin_wiki.html", stats=stats, error=error, wiki=wiki_url(),
                           backups=listing(), job=job_json("backups"))


def widgets() -> list[Widget]:
    stats = _stats.get()
    return [Widget("Wiki items", stats.get("items", "?")),
            Widget("Revisions", stats.get("revisions", "?")),
            Widget("Wiki", "Open the wiki", wiki_url())]


def plugin() -> Plugin | None:
    """The plugin, when moinmoin-appliance is the appliance installed (a replaced appliance's
    plugin package may stay behind)."""
    try:
        if appliance.installed(HOST).name != "moinmoin-appliance":
            return None
    except VatoolsError:
        return None
    return Plugin(name="moinmoin", title="MoinMoin wiki",
                  menu=(MenuEntry("Wiki", "moinmoin.wiki"),), blueprint=bp,
                  widgets=widgets)
