"""vatools.dpkgstatus: dpkg's status file of a tree, read directly (no apt, no dpkg)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fake_debian import make_tree, native_architecture
from vatools.dpkgstatus import (installed_versions, parse_status, present_versions,
                                read_status)
from vatools import dpkgstatus
from vatools.target import Target


def entry(status: str, name: str = "p", extra: str = "") -> str:
    return f"Package: {name}\nStatus: {status}\nArchitecture: all\nVersion: 1\n{extra}"


@pytest.fixture
def target(tmp_path: Path) -> Target:
    return Target(make_tree(tmp_path / "root"))


def test_read_status_gives_every_entry_dpkg_keeps_in_order(target):
    assert [(p.name, p.version, p.status) for p in read_status(target)] == [
        ("base-files", "12.4", "install ok installed"),
        ("wiki-appliance", "1.0", "install ok installed"),
        ("old-appliance", "0.9", "deinstall ok config-files"),
        ("gone-appliance", "", "unknown ok not-installed"),
        ("notes", "1.0", "install ok installed"),
    ]


@pytest.mark.parametrize(
    "status, installed",
    [
        ("install ok installed", True),
        ("hold ok installed", False),  # held: dpkg's want is "hold", not "install"
        ("deinstall ok config-files", False),
        ("install ok not-installed", False),
        ("unknown ok not-installed", False),
        ("install ok half-configured", False),
        ("install ok unpacked", False),
        ("install reinstreq half-installed", False),
    ],
)
def test_only_install_ok_installed_counts_as_installed(status, installed):
    (pkg,) = parse_status(entry(status))
    assert pkg.installed is installed


@pytest.mark.parametrize(
    "provides, expected",
    [
        ("virtual-appliance", True),
        ("virtual-appliance (= 1.0)", True),
        ("httpd, virtual-appliance", True),
        ("httpd,virtual-appliance(=2)", True),
        ("virtual-appliance-extra", False),
        ("my-virtual-appliance", False),
        ("", False),
    ],
)
def test_provides_matches_whole_package_names_with_or_without_a_version(provides, expected):
    (pkg,) = parse_status(entry("install ok installed", extra=f"Provides: {provides}\n"))
    assert pkg.provides("virtual-appliance") is expected


def test_no_provides_field_provides_nothing():
    (pkg,) = parse_status(entry("install ok installed"))
    assert not pkg.provides("virtual-appliance")


def test_description_is_the_synopsis_and_custom_fields_are_kept(target):
    wiki = next(p for p in read_status(target) if p.name == "wiki-appliance")
    assert wiki.description == "A wiki appliance"
    assert wiki.fields["Vatools-Services"] == "apache2"
    assert wiki.fields["Conflicts"] == "virtual-appliance"


def test_a_package_without_a_description_has_an_empty_one():
    (pkg,) = parse_status(entry("install ok installed"))
    assert pkg.description == ""


def test_fields_after_a_multi_line_field_are_still_read():
    text = entry(
        "install ok installed",
        extra=(
            "Conffiles:\n /etc/wiki/a.conf 0123456789abcdef0123456789abcdef\n"
            " /etc/wiki/b.conf 0123456789abcdef0123456789abcdef\n"
            "Provides: virtual-appliance\n"
            "Description: A wiki\n Long text.\n .\n More.\n"
        ),
    )
    (pkg,) = parse_status(text)
    assert pkg.provides("virtual-appliance")
    assert pkg.description == "A wiki"


def test_paragraphs_without_a_package_field_are_skipped():
    text = "Status: install ok installed\n\n" + entry("install ok installed", name="a") + "\n\n\n"
    assert [p.name for p in parse_status(text)] == ["a"]


def test_installed_versions_are_keyed_by_package_and_architecture(target):
    assert installed_versions(target) == {
        f"base-files:{native_architecture()}": "12.4",
        "wiki-appliance:all": "1.0",
        "notes:all": "1.0",
    }


def test_present_versions_count_everything_but_not_installed(target, tmp_path):
    status = target.path("/var/lib/dpkg/status")
    with status.open("a") as f:
        f.write("\n" + entry("install ok half-configured", name="failed") + "\n")
        f.write("Package: noarch\nStatus: install ok unpacked\nVersion: 3\n")
    assert present_versions(target) == {
        f"base-files:{native_architecture()}": "12.4",
        "wiki-appliance:all": "1.0",
        "old-appliance:all": "0.9",  # config files left: a rollback must see them
        "notes:all": "1.0",
        "failed:all": "1",  # half-configured after a failed install
        "noarch:all": "3",  # no Architecture field: "all"
    }


def test_a_tree_without_a_status_file_has_no_packages(tmp_path):
    empty = Target(tmp_path)
    assert read_status(empty) == []
    assert installed_versions(empty) == {}
    assert present_versions(empty) == {}


def test_bytes_that_are_not_utf8_do_not_stop_the_reading(tmp_path):
    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_bytes(
        entry("install ok installed", name="a", extra="Description: caf\xe9\n").encode("latin-1")
        + b"\n"
        + entry("install ok installed", name="b").encode()
    )
    assert [p.name for p in read_status(Target(tmp_path))] == ["a", "b"]


def test_mentions_parses_only_paragraphs_that_hold_the_string_and_cuts_none(tmp_path: Path) -> None:
    """`valist --installed`'s shortcut: the same appliances as a full parse, folded Provides and
    a separator line of blanks (which dpkg never writes, but the parser accepts) included."""
    from vatools.appliance import VIRTUAL_PACKAGE, is_appliance

    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_text(
        "Package: plain\nStatus: install ok installed\nVersion: 1\n\n"
        "Package: folded\nStatus: install ok installed\nVersion: 1\nProvides: foo,\n"
        " virtual-appliance\n \n"
        "Package: after-blanks\nStatus: install ok installed\nVersion: 2\n"
        "Provides: virtual-appliance\n\n"
        "Package: mentions-only\nStatus: install ok installed\nVersion: 1\n"
        "Description: not a virtual-appliance provider\n"
    )
    target = Target(tmp_path)
    full = [p.name for p in dpkgstatus.read_status(target, is_appliance)]
    fast = [p.name for p in dpkgstatus.read_status(target, is_appliance, mentions=VIRTUAL_PACKAGE)]
    assert fast == full == ["folded", "after-blanks"]
