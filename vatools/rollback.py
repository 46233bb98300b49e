"""Undo a failed install: purge what it added, reinstate what it removed, restore debconf.

A snapshot taken before the first change holds the packages dpkg had (installed, and present in
any state) and debconf's database files; rolling back compares against it.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Mapping, NoReturn

from vatools import dpkgstatus
from vatools.seed import debconfdb
from vatools.aptrun import APT_ENV, SEEDED_BY_VAINSTALL
from vatools.errors import RollbackIncomplete, RolledBack
from vatools.progress import step
from vatools.run import Target, run


@dataclass(frozen=True)
class Snapshot:
    debconf: debconfdb.DebconfSnapshot
    present: dict[str, str]  # "package:arch" -> version, in any state but not-installed
    installed: dict[str, str]  # fully installed only


def take(target: Target) -> Snapshot:
    return Snapshot(
        debconfdb.snapshot(target),
        dpkgstatus.present_versions(target),
        dpkgstatus.installed_versions(target),
    )


def roll_back(
    target: Target, before: Snapshot, what: str, cause: BaseException, log_file: str
) -> NoReturn:
    """Put the system back as `before`, then raise RolledBack (or RollbackIncomplete)."""
    reason = "interrupted" if isinstance(cause, KeyboardInterrupt) else str(cause)
    # A second Ctrl-C must not cut the rollback short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    step("Rolling back")
    problems: list[str] = []
    added = to_purge(before, dpkgstatus.present_versions(target))
    if added and not _purge(target, added):
        problems.append(f"purging {' '.join(added)} failed")
    # Read again after the purge: what it took away must come back too.
    specs = to_reinstate(before, dpkgstatus.installed_versions(target))
    if specs:
        argv = ["apt-get", "install", "--yes", "--no-remove", *SEEDED_BY_VAINSTALL, *specs]
        if run(argv, target=target, env=APT_ENV, check=False).returncode != 0:
            problems.append(f"reinstalling {' '.join(specs)} failed")
    debconfdb.restore(target, before.debconf)
    if not problems and dpkgstatus.installed_versions(target) != before.installed:
        problems.append("the set of installed packages differs from before")
    if problems:
        raise RollbackIncomplete(
            f"{what} failed ({reason}), and rolling back failed: " + "; ".join(problems),
            hint=f"repair with: dpkg --configure -a && apt-get --fix-broken install; the log is {log_file}",
        ) from cause
    raise RolledBack(
        f"{what} failed: {reason}\nEverything was rolled back:"
        " the installed packages and the debconf database are as before.",
        hint=f"apt's output is in {log_file}",
    ) from cause


def to_purge(before: Snapshot, present_now: Mapping[str, str]) -> list[str]:
    """Packages dpkg has anything of now ("package:arch", half-installed ones included) and
    had nothing of before: the failed install added them.

    A package that was present before stays, whatever its version or state now.
    """
    return sorted(set(present_now) - set(before.present))


def to_reinstate(before: Snapshot, installed_now: Mapping[str, str]) -> list[str]:
    """apt-get specs ("package=version", the version installed before) of the packages fully
    installed before and not now.  A package still installed, even at another version, is not
    touched: the final comparison with the snapshot reports it."""
    return [
        f"{pkg.rsplit(':', 1)[0]}={version}"
        for pkg, version in before.installed.items()
        if pkg not in installed_now
    ]


def _purge(target: Target, packages: list[str]) -> bool:
    """Purge packages, half-installed ones included; dpkg first, since apt refuses to work
    after an interrupted dpkg until `dpkg --configure -a`, which would rerun what failed."""
    for argv in (
        ["dpkg", "--purge", "--force-remove-reinstreq", *packages],
        ["apt-get", "purge", "--yes", *SEEDED_BY_VAINSTALL, *packages],
    ):
        run(argv, target=target, env=APT_ENV, check=False)
        if not set(packages) & set(dpkgstatus.present_versions(target)):
            return True
    return False
