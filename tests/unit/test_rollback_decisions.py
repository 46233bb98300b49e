"""What a rollback decides from the states before and after a failed install (vatools.rollback).

The states are what vatools.dpkgstatus reads from dpkg's status file: "package:arch" ->
version, for packages present in any state and for packages fully installed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from vatools import dpkgstatus, rollback
from vatools.seed.debconfdb import DebconfSnapshot
from vatools.target import Target


def status(*entries: tuple[str, str, str]) -> str:
    return "\n".join(
        f"Package: {name}\nStatus: {state}\nVersion: {version}\nArchitecture: all\n"
        for name, version, state in entries
    )


def states(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(present, installed) of a system with this dpkg status, as the rollback reads them."""
    with tempfile.TemporaryDirectory() as root:
        target = Target(Path(root))
        target.path(dpkgstatus.STATUS_FILE).parent.mkdir(parents=True)
        target.path(dpkgstatus.STATUS_FILE).write_text(text)
        return dpkgstatus.present_versions(target), dpkgstatus.installed_versions(target)


INSTALLED = "install ok installed"
BEFORE_TEXT = status(
    ("base", "1", INSTALLED),
    ("old-appliance", "1", INSTALLED),
    ("leftover", "1", "deinstall ok config-files"),
    ("gone-long-ago", "1", "purge ok not-installed"),
)
BEFORE = rollback.Snapshot(DebconfSnapshot(()), *states(BEFORE_TEXT))


def test_nothing_to_undo_when_nothing_changed():
    present, installed = states(BEFORE_TEXT)
    assert rollback.to_purge(BEFORE, present) == []
    assert rollback.to_reinstate(BEFORE, installed) == []


def test_packages_the_install_added_are_purged_half_installed_ones_included():
    present, _ = states(
        BEFORE_TEXT
        + "\n"
        + status(
            ("new-appliance", "2", "install ok installed"),
            ("new-dep", "3", "install ok half-configured"),
            ("unpacked-dep", "4", "install ok unpacked"),
            ("never-got-far", "5", "install ok not-installed"),
        )
    )
    assert rollback.to_purge(BEFORE, present) == ["new-appliance:all", "new-dep:all", "unpacked-dep:all"]


def test_packages_present_before_are_never_purged_whatever_their_state_now():
    present, _ = states(
        status(
            ("base", "1", INSTALLED),
            ("old-appliance", "1", "deinstall ok config-files"),  # removed by --replace
            ("leftover", "1", INSTALLED),  # reinstalled from its config files
        )
    )
    assert rollback.to_purge(BEFORE, present) == []


def test_packages_installed_before_and_not_now_are_reinstated_at_their_old_version():
    # The replaced appliance was removed; "base" was left half-configured by a failed upgrade.
    _, installed = states(
        status(
            ("base", "2", "install ok half-configured"),
            ("old-appliance", "1", "deinstall ok config-files"),
        )
    )
    assert rollback.to_reinstate(BEFORE, installed) == ["base=1", "old-appliance=1"]


def test_a_package_still_installed_at_another_version_is_left_for_the_final_comparison():
    # Not downgraded: roll_back then reports "the set of installed packages differs".
    _, installed = states(status(("base", "2", INSTALLED), ("old-appliance", "1", INSTALLED)))
    assert rollback.to_reinstate(BEFORE, installed) == []
    assert installed != BEFORE.installed


def test_packages_that_were_only_config_files_before_are_not_reinstated():
    _, installed = states(status(("base", "1", INSTALLED), ("old-appliance", "1", INSTALLED)))
    assert "leftover:all" not in BEFORE.installed
    assert rollback.to_reinstate(BEFORE, installed) == []
