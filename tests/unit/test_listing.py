"""valist (vatools.listing and its command) on a small Debian tree (tests/support/fake_debian.py).

Installed appliances come from dpkg's status file, read in this process. Whatever needs apt's
cache runs `valist --root TREE` as a process of its own, as a user would: apt_pkg's
configuration is global to a process and vatools points it at one target only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fake_debian import make_tree
from vatools import listing
from vatools.target import Target

REPO = Path(__file__).resolve().parents[2]

NOT_RECORDED = "unknown (not installed by vainstall)"


def valist(*args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "vatools.cli.valist", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == expect, proc.stderr
    return proc


def valist_json(root: Path, *args: str) -> list[dict[str, str | None]]:
    return json.loads(valist("--root", str(root), "--json", *args).stdout)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "root")


def record_install(root: Path, name: str, record: object) -> None:
    path = root / "var/lib/vatools/installed" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def test_installed_lists_only_appliances_dpkg_has_installed(tree):
    # Not old-appliance (config files), gone-appliance (not-installed), notes (no appliance yet).
    assert listing.installed(Target(tree)) == [
        listing.ApplianceEntry(
            name="wiki-appliance",
            state="installed",
            version="1.0",
            candidate=None,
            seed=NOT_RECORDED,
            description="A wiki appliance",
        )
    ]


def test_installed_names_the_seed_vainstall_recorded(tree):
    record_install(tree, "wiki-appliance", {"seed": {"source": "file", "where": "/root/wiki.seed"}})
    (entry,) = listing.installed(Target(tree))
    assert entry.seed == "file: /root/wiki.seed"


@pytest.mark.parametrize(
    "record", ["not json", "{}", '{"seed": "x"}', '{"seed": {"source": "file"}}']
)
def test_an_unreadable_install_record_counts_as_not_recorded(tree, record):
    path = tree / "var/lib/vatools/installed/wiki-appliance.json"
    path.parent.mkdir(parents=True)
    path.write_text(record)
    (entry,) = listing.installed(Target(tree))
    assert entry.seed == NOT_RECORDED


def test_as_json_has_every_column():
    entry = listing.ApplianceEntry("a", "available", None, "2", "package", "A")
    assert entry.as_json() == {
        "name": "a",
        "state": "available",
        "version": None,
        "candidate": "2",
        "seed": "package",
        "description": "A",
    }


def test_valist_json_lists_installed_first_then_available_by_name(tree):
    assert valist_json(tree) == [
        {
            "name": "wiki-appliance",
            "state": "installed",
            "version": "1.0",
            "candidate": "1.1",
            "seed": NOT_RECORDED,
            "description": "A wiki appliance",
        },
        {
            "name": "blog-appliance",
            "state": "available",
            "version": None,
            "candidate": "2.0",
            "seed": "package",
            "description": "A blog appliance",
        },
        {
            "name": "broken-appliance",
            "state": "available",
            "version": None,
            "candidate": "1",
            "seed": "package",
            "description": "An appliance apt cannot install",
        },
        {
            # Installed in a version that is no appliance: its candidate is one.
            "name": "notes",
            "state": "available",
            "version": None,
            "candidate": "2.0",
            "seed": "package",
            "description": "Notes, now an appliance",
        },
    ]


def test_valist_available_only_leaves_installed_appliances_out(tree):
    # wiki-appliance 1.1 can be installed, as an upgrade: it is installed, not available.
    assert [e["name"] for e in valist_json(tree, "--available")] == [
        "blog-appliance",
        "broken-appliance",
        "notes",
    ]


def test_valist_installed_only_leaves_the_candidate_out(tree):
    assert valist_json(tree, "--installed") == [
        {
            "name": "wiki-appliance",
            "state": "installed",
            "version": "1.0",
            "candidate": None,
            "seed": NOT_RECORDED,
            "description": "A wiki appliance",
        }
    ]


def test_an_appliance_with_its_seed_hash_in_the_index_has_a_repository_seed(tmp_path):
    root = make_tree(tmp_path / "root", status="")  # wiki-appliance not installed
    (wiki,) = [e for e in valist_json(root) if e["name"] == "wiki-appliance"]
    assert wiki["state"] == "available"
    assert wiki["seed"] == "repository (signed hash)"


def test_an_installed_appliance_no_source_has_any_more_is_still_listed(tmp_path):
    root = make_tree(tmp_path / "root", packages="")
    # apt's candidate of a package no source has is the installed version.
    assert [(e["name"], e["state"], e["version"], e["candidate"]) for e in valist_json(root)] == [
        ("wiki-appliance", "installed", "1.0", "1.0")
    ]


def test_valist_table_has_aligned_columns_and_the_description_last(tree):
    record_install(tree, "wiki-appliance", {"seed": {"source": "file", "where": "/w.seed"}})
    lines = valist("--root", str(tree)).stdout.splitlines()
    assert lines == [
        "NAME              STATE      VERSION  CANDIDATE  SEED           DESCRIPTION",
        "wiki-appliance    installed  1.0      1.1        file: /w.seed  A wiki appliance",
        "blog-appliance    available  -        2.0        package        A blog appliance",
        "broken-appliance  available  -        1          package        "
        "An appliance apt cannot install",
        "notes             available  -        2.0        package        Notes, now an appliance",
    ]


def test_valist_says_so_when_there_is_nothing_to_list(tmp_path):
    root = make_tree(tmp_path / "root", status="", packages="")
    assert valist("--root", str(root)).stdout == "No appliances found.\n"
    assert valist("--root", str(root), "--installed").stdout == "No appliance is installed.\n"
    assert valist("--root", str(root), "--json").stdout == "[]\n"


def test_valist_installed_does_not_load_apt(tree):
    # The fast path: dpkg's status file only (apt's cache costs hundreds of milliseconds).
    code = (
        "import sys\nfrom vatools.cli import valist\n"
        f"rc = valist.main(['--root', {str(tree)!r}, '--installed'])\n"
        "print(rc, 'apt_pkg' in sys.modules, 'apt' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert proc.stdout.splitlines()[-1] == "0 False False"


def test_valist_refuses_a_root_that_is_no_debian_tree(tmp_path):
    proc = valist("--root", str(tmp_path), expect=2)
    assert f"valist: error: --root {tmp_path}: not a Debian system tree" in proc.stderr


def test_installed_and_available_exclude_each_other(tree):
    proc = valist("--root", str(tree), "--installed", "--available", expect=2)
    assert "--installed" in proc.stderr and "--available" in proc.stderr
