"""dokuwiki-appliance's plugin for appliance-control: the wiki's figures on the dashboard and
a link to the wiki (entry point group vatools.control.plugins, see docs/control-plugins.md)."""

from __future__ import annotations

from flask import request

from vatools import appliance
from vatools.control.pages import client
from vatools.control.plugins import Plugin, Widget
from vatools.control.sysinfo import Cached
from vatools.errors import VatoolsError
from vatools.run import HOST

# Counting pages walks the wiki: at most once a minute, not on every dashboard view.
_stats = Cached(60, lambda: client().call("appliance-stats"))


def wiki_url(path: str) -> str:
    """The wiki on this host's port 80 (the interface itself is on another port)."""
    host = request.host
    if not host.endswith("]"):  # an IPv6 literal keeps its brackets
        host = host.rpartition(":")[0] or host
    return f"http://{host}{path}"


def widgets() -> list[Widget]:
    stats = _stats.get()
    return [Widget("Pages", stats.get("pages", "?")),
            Widget("Media files", stats.get("media", "?")),
            Widget("Wiki", "Open the wiki", wiki_url("/dokuwiki/"))]


def plugin() -> Plugin | None:
    """The plugin, when dokuwiki-appliance is the appliance installed (a replaced appliance's
    plugin package may stay behind)."""
    try:
        if appliance.installed(HOST).name != "dokuwiki-appliance":
            return None
    except VatoolsError:
        return None
    return Plugin(name="dokuwiki", title="DokuWiki", widgets=widgets)
