"""vatools.aptq against a small Debian tree (tests/support/fake_debian.py), with the real python-apt.

apt_pkg's configuration is global to a process and aptq configures it once for one target, so
every case runs in its own interpreter: the test process's apt_pkg is never pointed at a tree
(other tests may need it for this system) and each case gets a fresh tree.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_debian import SEED_SHA256, make_tree, use_file_repository
from vatools import aptq  # imports apt_pkg only: configures nothing

REPO = Path(__file__).resolve().parents[2]

PRELUDE = """\
import json, sys
from pathlib import Path
from vatools import aptq
from vatools.errors import VatoolsError
from vatools.target import Target

target = Target(Path(sys.argv[1]))
cache = aptq.open_cache(target)

def refusal(call):
    try:
        call()
    except VatoolsError as exc:
        return {"message": exc.message, "hint": exc.hint}
    return None
"""


def in_tree(root: Path, code: str) -> Any:
    """Run `code` (which prints one JSON value) in a fresh interpreter with `cache` open on root."""
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code), str(root)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "root")


def test_installed_appliances_are_the_installed_versions_providing_virtual_appliance(tree):
    # Not old-appliance (config files only), gone-appliance (not-installed), blog-appliance
    # (available only), nor notes (its installed version provides nothing; its candidate does).
    assert in_tree(tree, "print(json.dumps(aptq.installed_appliances(cache)))") == [
        "wiki-appliance"
    ]


def test_no_appliance_installed(tmp_path):
    root = make_tree(tmp_path / "root", status="")
    assert in_tree(root, "print(json.dumps(aptq.installed_appliances(cache)))") == []


def test_candidate_of_an_installed_appliance_is_the_newer_version_with_its_record_fields(tree):
    got = in_tree(
        tree,
        """
        c = aptq.candidate(cache, "wiki-appliance")
        print(json.dumps([c.name, c.version, c.description, c.uri, c.seed_sha256,
                          c.provides_appliance]))
        """,
    )
    assert got == [
        "wiki-appliance",
        "1.1",
        "A wiki appliance, newer",
        "http://127.0.0.1/repo/pool/main/w/wiki-appliance/wiki-appliance_1.1_all.deb",
        SEED_SHA256,
        True,
    ]


def test_candidate_is_the_highest_version_and_a_missing_seed_hash_is_none(tree):
    got = in_tree(
        tree,
        """
        c = aptq.candidate(cache, "blog-appliance")
        print(json.dumps([c.version, c.seed_sha256, c.provides_appliance]))
        """,
    )
    assert got == ["2.0", None, True]


def test_candidate_of_a_package_that_is_no_appliance(tree):
    got = in_tree(
        tree,
        """
        c = aptq.candidate(cache, "libblog")
        print(json.dumps([c.version, c.provides_appliance]))
        """,
    )
    assert got == ["3", False]


def test_candidate_refuses_a_name_apt_does_not_know(tree):
    got = in_tree(
        tree, 'print(json.dumps(refusal(lambda: aptq.candidate(cache, "no-such-appliance"))))'
    )
    assert got["message"] == "unknown package 'no-such-appliance': apt knows no package of that name"
    assert "valist" in got["hint"]


def test_candidate_refuses_a_package_dpkg_has_config_files_of_but_no_source_has(tree):
    got = in_tree(tree, 'print(json.dumps(refusal(lambda: aptq.candidate(cache, "old-appliance"))))')
    assert got["message"] == "old-appliance has no installation candidate"
    assert "apt-get update" in got["hint"]


def test_candidate_refuses_the_virtual_package_itself_as_unknown(tree):
    got = in_tree(
        tree, 'print(json.dumps(refusal(lambda: aptq.candidate(cache, "virtual-appliance"))))'
    )
    assert got["message"].startswith("unknown package 'virtual-appliance'")


def test_mark_install_plans_the_appliance_its_dependencies_and_the_replaced_appliance(tree):
    got = in_tree(
        tree,
        """
        changes = aptq.mark_install(cache, "blog-appliance", "wiki-appliance")
        print(json.dumps([changes.install, changes.remove]))
        """,
    )
    assert got == [[["blog-appliance", "2.0"], ["libblog", "3"]], ["wiki-appliance"]]


def test_mark_install_of_an_upgrade(tree):
    got = in_tree(
        tree,
        """
        changes = aptq.mark_install(cache, "wiki-appliance", None)
        print(json.dumps([changes.install, changes.remove]))
        """,
    )
    assert got == [[["wiki-appliance", "1.1"]], []]


def test_mark_install_refuses_unmet_dependencies_naming_them(tree):
    got = in_tree(
        tree,
        """
        print(json.dumps(refusal(
            lambda: aptq.mark_install(cache, "broken-appliance", "wiki-appliance"))))
        """,
    )
    assert got["message"] == (
        "apt cannot install broken-appliance: unmet dependencies (nothing provides no-such-package)"
    )
    assert got["hint"] == "see: apt-get install --simulate broken-appliance"


def test_mark_all_marks_every_package_with_its_dependencies(tree):
    # blog-appliance conflicts with the installed wiki-appliance: apt's resolver removes that.
    got = in_tree(
        tree,
        """
        aptq.mark_all(cache, ["blog-appliance", "libblog"])
        print(json.dumps(sorted((p.name, p.marked_install, p.marked_delete)
                                for p in cache.get_changes())))
        """,
    )
    assert got == [
        ["blog-appliance", True, False],
        ["libblog", True, False],
        ["wiki-appliance", False, True],
    ]


def test_mark_all_refuses_unmet_dependencies(tree):
    got = in_tree(
        tree,
        'print(json.dumps(refusal(lambda: aptq.mark_all(cache, ["libblog", "broken-appliance"]))))',
    )
    assert got["message"] == (
        "apt cannot install libblog broken-appliance: unmet dependencies"
        " (nothing provides no-such-package)"
    )


def test_mark_all_refuses_appliances_that_conflict_and_says_so(tree):
    # Both provide and conflict with virtual-appliance: nothing is missing and nothing broken.
    got = in_tree(
        tree,
        'print(json.dumps(refusal(lambda: aptq.mark_all(cache, ["blog-appliance", "notes"]))))',
    )
    assert got["message"].startswith("apt cannot install blog-appliance notes: unmet dependencies (")
    assert not got["message"].endswith("()")  # it used to say nothing at all
    assert got["hint"] == "see: apt-get install --simulate blog-appliance notes"


def test_the_tree_alone_is_read_and_nothing_is_written_into_it(tree):
    before = sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
    # This system's packages (python3-apt runs this test) come from its own lists, not the tree's.
    got = in_tree(tree, 'print(json.dumps(["python3-apt" in cache, "libblog" in cache]))')
    assert got == [False, True]
    assert sorted(str(p.relative_to(tree)) for p in tree.rglob("*")) == before


def test_open_cache_turns_apt_errors_into_a_refusal_naming_the_tree(tree):
    (tree / "etc/apt/sources.list.d/test.list").write_text("deb [trusted=yes]\n")
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE, str(tree)], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert f"VatoolsError: cannot read apt's package lists of {tree}: " in proc.stderr
    assert "test.list" in proc.stderr  # apt's own words name the file at fault


@pytest.fixture
def file_repository(tmp_path: Path) -> tuple[Path, Path]:
    """A tree with nothing installed whose one source is a file: repository (root, repository)."""
    root = make_tree(tmp_path / "root", status="")
    repository = tmp_path / "repo"
    use_file_repository(root, repository, {"tinyapp": b"tinyapp's bytes"})
    (repository / "tinyapp.seed").write_text("tinyapp tinyapp/title string T\n")
    return root, repository


FETCH = """
import apt.progress.base
aptq.mark_all(cache, ["tinyapp"])
def fetch():
    paths = aptq.fetch_archives(cache, apt.progress.base.AcquireProgress())
    print(json.dumps({name: str(path) for name, path in paths.items()}))
failed = refusal(fetch)
if failed:
    print(json.dumps(failed))
"""


def test_fetch_archives_gives_the_file_apt_verified_for_each_package(file_repository):
    root, repository = file_repository
    assert in_tree(root, FETCH) == {"tinyapp": str(repository / "tinyapp_1.0_all.deb")}


def test_fetch_archives_refuses_a_file_whose_hash_is_not_the_index_one(file_repository):
    root, repository = file_repository
    (repository / "tinyapp_1.0_all.deb").write_bytes(b"tinyapp's BYTES")  # same size
    got = in_tree(root, FETCH)
    assert got["message"].startswith(
        f"downloading packages failed: file:{repository}/./tinyapp_1.0_all.deb: Hash Sum mismatch"
    )
    assert got["hint"] == "check the network and apt sources"


def test_acquire_progress_drives_a_progress_bar(file_repository):
    root, _ = file_repository
    got = in_tree(
        root,
        """
        class Bar:
            calls = []
            def update(self, percent, text):
                self.calls.append(["update", percent, text])
            def done(self, text):
                self.calls.append(["done", text])
        bar = Bar()
        aptq.mark_all(cache, ["tinyapp"])
        aptq.fetch_archives(cache, aptq.acquire_progress(bar))
        print(json.dumps(bar.calls))
        """,
    )
    assert got[-1][0] == "done"
    assert got[-1][1].startswith("1 files, ") and got[-1][1].endswith(" MB fetched")
    assert all(0 <= call[1] <= 100 for call in got if call[0] == "update")


def test_fetch_uri_gives_a_files_bytes_or_none_when_it_does_not_exist(file_repository):
    root, repository = file_repository
    got = in_tree(
        root,
        f"""
        found = aptq.fetch_uri("file:{repository}/tinyapp.seed")
        missing = aptq.fetch_uri("file:{repository}/other.seed")
        print(json.dumps([found.decode(), missing]))
        """,
    )
    assert got == ["tinyapp tinyapp/title string T\n", None]


def test_sha256():
    assert aptq.sha256(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
