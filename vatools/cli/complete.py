"""Shell completion of values: appliance and package names from apt's lists.

Called by click when the shell asks (`_VAINSTALL_COMPLETE=bash_complete`); file and
directory names are completed by the shell itself (common.FILE and common.DIR parameters).
"""

from __future__ import annotations

from pathlib import Path

import click
from click.shell_completion import CompletionItem

from vatools.cli import common
from vatools.target import Target


def _target(ctx: click.Context) -> Target:
    root = common.settings(ctx).root
    return Target(Path(root).absolute()) if root else Target()


def appliances(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from vatools.aptlists import appliance_names

    try:
        names = appliance_names(_target(ctx))
    except Exception:  # a TAB press must never print a traceback into the shell
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


def packages(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Package names; after a comma (--depends a,b) the last one, keeping what comes before."""
    from vatools.aptlists import package_names

    done, comma, last = incomplete.rpartition(",")
    if not last:
        return []
    try:
        names = package_names(_target(ctx), last)
    except Exception:
        return []
    return [CompletionItem(done + comma + name) for name in names]
