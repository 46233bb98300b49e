"""Plugins: what an appliance adds to the interface, found through Python entry points.

An appliance's plugin package declares, in its dist-info entry_points.txt:

    [vatools.control.plugins]
    dokuwiki = dokuwiki_appliance_control:plugin

and the named callable returns a `Plugin`, or None when its appliance is not the one installed
(a plugin left behind by a replaced appliance). See docs/control-plugins.md for the whole API.
A plugin declares no backup paths: the appliance package's control fields do
(vatools.backup.manifest), read by the root helper, which never runs plugin code.
A plugin that fails to load, or whose widgets fail, is shown on the dashboard as broken; the
interface itself keeps working.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Callable

from vatools.appliance import PLUGIN_ENTRY_POINTS
from vatools.control.protocol import HelperError

if TYPE_CHECKING:
    from flask import Blueprint

GROUP = PLUGIN_ENTRY_POINTS  # the entry point group appliance plugin packages register in
log = logging.getLogger("appliance-control")


@dataclass(frozen=True)
class Widget:
    """One line of the dashboard: a label, a value, and an optional link."""

    label: str
    value: str
    link: str = ""


@dataclass(frozen=True)
class MenuEntry:
    label: str
    endpoint: str  # a Flask endpoint of the plugin's blueprint, e.g. "moinmoin.stats"


@dataclass(frozen=True)
class Plugin:
    name: str  # short, [a-z0-9-]: the URL prefix /plugins/NAME
    title: str
    menu: tuple[MenuEntry, ...] = ()
    blueprint: Blueprint | None = None
    widgets: Callable[[], list[Widget]] = field(default=lambda: list[Widget]())


@dataclass(frozen=True)
class Broken:
    name: str
    error: str


def load_plugins(group: str = GROUP) -> tuple[list[Plugin], list[Broken]]:
    plugins: list[Plugin] = []
    broken: list[Broken] = []
    for entry in metadata.entry_points(group=group):
        try:
            made = entry.load()()
            if made is None:
                continue
            if not isinstance(made, Plugin):
                raise TypeError(f"{entry.value} returned {type(made).__name__}, not a Plugin")
            plugins.append(made)
        # any failure of foreign code is reported, an exit included
        except (Exception, SystemExit) as e:  # noqa: BLE001
            log.exception("plugin %s failed to load", entry.name)
            broken.append(Broken(entry.name, f"{type(e).__name__}: {e}"))
    return plugins, broken


def link_allowed(link: str) -> bool:
    """A widget's link: an http(s) URL or a path of this site, never javascript: or data:.

    >>> [link_allowed(x) for x in ("https://w.example/", "/plugins/x", "javascript:alert(1)",
    ...                            "//evil.example", " JavaScript:x", "data:text/html,x")]
    [True, True, False, False, False, False]
    """
    if link.startswith("/"):
        return not link.startswith(("//", "/\\"))
    scheme, colon, rest = link.partition(":")
    return bool(colon) and scheme.lower() in ("http", "https") and rest.startswith("//")


def widgets_of(plugin: Plugin) -> tuple[list[Widget], str]:
    """The plugin's widgets as plain strings, or the error that stopped them (a widget that
    is not a Widget, a link that is not http(s), SystemExit included)."""
    try:
        found = []
        for widget in plugin.widgets():
            if not isinstance(widget, Widget):
                raise TypeError(f"{type(widget).__name__} is not a Widget")
            label, value, link = str(widget.label), str(widget.value), str(widget.link or "")
            if link and not link_allowed(link):
                raise ValueError(f"widget {label!r}: link {link!r} is not http(s)")
            found.append(Widget(label, value, link))
        return found, ""
    except HelperError as e:  # the helper said what failed and what to do
        log.warning("plugin %s: widgets failed: %s", plugin.name, e.message)
        return [], e.describe()
    except (Exception, SystemExit) as e:  # noqa: BLE001
        log.exception("plugin %s: widgets failed", plugin.name)
        return [], f"{type(e).__name__}: {e}"
