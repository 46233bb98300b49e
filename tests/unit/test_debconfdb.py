"""vatools.seed.debconfdb on a scratch debconf database, written by the real debconf tools.

The database lives in a tree under tmp_path (var/cache/debconf/{config,passwords,templates}.dat,
where debconfdb looks for it). This system's debconf writes it: DEBCONF_SYSTEMRC points debconf
at a configuration naming the tree's files, a copy of Debian's own /etc/debconf.conf otherwise.

debconfdb.apply runs debconf-set-selections inside the target with chroot, which needs a whole
Debian tree (tests/integration cover that). Here it runs the same program on this system, made to
use the tree's database: only the chroot is left out. This system's own debconf database is
checked to be unchanged after every test.
"""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path
from typing import Iterator

import pytest

import vatools.run
from vatools.errors import VatoolsError
from vatools.seed import debconfdb
from vatools.seed.file import parse_seed
from vatools.target import Target
from tests.support.debconf import HOST_DATABASE_DIR, write_debconf_conf

HOST_DATABASE = [HOST_DATABASE_DIR / name for name in debconfdb.DB_FILES]


SEED = """\
wiki wiki/title string My Wiki
wiki wiki/password password s3cret
wiki wiki/servers multiselect apache2, lighttpd
"""


def digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


@pytest.fixture(autouse=True)
def host_database_unchanged() -> Iterator[None]:
    before = {path: digest(path) for path in HOST_DATABASE}
    yield
    assert {path: digest(path) for path in HOST_DATABASE} == before


class Scratch:
    """A tree with a debconf database directory, and this system's debconf pointed at it."""

    def __init__(self, tmp_path: Path) -> None:
        self.target = Target(tmp_path / "root")
        self.dir = self.target.path(debconfdb.DB_DIR)
        self.dir.mkdir(parents=True)
        self.conf = tmp_path / "debconf.conf"  # outside the tree: not part of its database
        write_debconf_conf(self.conf, self.dir)

    def set_selections(self, text: str) -> str:
        result = vatools.run.run(
            ["debconf-set-selections"], input=text, env={"DEBCONF_SYSTEMRC": str(self.conf)}
        )
        return result.stdout

    def files(self) -> dict[str, tuple[bytes, int] | None]:
        """Bytes and permission bits of the database files (None: missing)."""
        found: dict[str, tuple[bytes, int] | None] = {}
        for name in debconfdb.DB_FILES:
            path = self.dir / name
            found[name] = (
                (path.read_bytes(), stat.S_IMODE(path.stat().st_mode)) if path.exists() else None
            )
        return found

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir() if "vatools" in p.name)


@pytest.fixture
def scratch(tmp_path: Path) -> Scratch:
    return Scratch(tmp_path)


@pytest.fixture
def seeded(scratch: Scratch) -> Scratch:
    assert scratch.set_selections(SEED) == ""
    return scratch


@pytest.fixture
def apply_in_tree(scratch: Scratch, monkeypatch: pytest.MonkeyPatch) -> Scratch:
    """debconfdb.apply runs debconf-set-selections on this system, with the tree's database."""

    def run_here(argv, *, target, input=None, check=True, **kwargs):  # type: ignore[no-untyped-def]
        assert (list(argv), target) == (["debconf-set-selections"], scratch.target)
        return vatools.run.run(
            argv, input=input, check=check, env={"DEBCONF_SYSTEMRC": str(scratch.conf)}, **kwargs
        )

    monkeypatch.setattr(debconfdb, "run", run_here)
    return scratch


def test_the_scratch_database_is_where_debconfdb_looks(seeded):
    assert sorted(p.name for p in seeded.dir.iterdir() if p.name.endswith(".dat")) == sorted(
        debconfdb.DB_FILES
    )


def test_values_reads_answers_and_passwords(seeded):
    assert debconfdb.values(seeded.target) == {
        "wiki/title": "My Wiki",
        "wiki/password": "s3cret",  # from passwords.dat: debconf keeps it out of config.dat
        "wiki/servers": "apache2, lighttpd",
    }
    assert b"s3cret" not in (seeded.dir / "config.dat").read_bytes()


def test_values_leaves_out_questions_without_an_answer(scratch):
    (scratch.dir / "config.dat").write_text(
        "Name: wiki/title\nTemplate: wiki/title\nValue: T\nOwners: wiki\nFlags: seen\n\n"
        "Name: wiki/admin\nTemplate: wiki/admin\nOwners: wiki\n\n"
        "Name: wiki/empty\nTemplate: wiki/empty\nValue: \nOwners: wiki\n"
    )
    assert debconfdb.values(scratch.target) == {"wiki/title": "T", "wiki/empty": ""}


def test_values_of_a_tree_without_a_database_is_empty(scratch):
    assert debconfdb.values(scratch.target) == {}


def test_snapshot_keeps_bytes_and_modes(seeded):
    snap = debconfdb.snapshot(seeded.target)
    files = seeded.files()
    assert [name for name, _, _ in snap.files] == list(debconfdb.DB_FILES)
    assert {name: (data, mode) for name, data, mode in snap.files} == files
    assert files["passwords.dat"][1] == 0o600  # type: ignore[index]
    assert files["config.dat"][1] == 0o644  # type: ignore[index]


def test_restore_undoes_new_answers_byte_for_byte(seeded):
    before = seeded.files()
    snap = debconfdb.snapshot(seeded.target)
    seeded.set_selections(
        "wiki wiki/title string Changed\nwiki wiki/password password other\n"
        "wiki wiki/new boolean true\n"
    )
    assert seeded.files() != before
    debconfdb.restore(seeded.target, snap)
    assert seeded.files() == before
    assert debconfdb.values(seeded.target)["wiki/title"] == "My Wiki"
    assert seeded.leftovers() == []


def test_restore_removes_files_that_did_not_exist(scratch):
    snap = debconfdb.snapshot(scratch.target)
    assert [(name, data) for name, data, _ in snap.files] == [
        (name, None) for name in debconfdb.DB_FILES
    ]
    scratch.set_selections(SEED)
    debconfdb.restore(scratch.target, snap)
    assert scratch.files() == {name: None for name in debconfdb.DB_FILES}
    assert debconfdb.values(scratch.target) == {}


def test_restore_brings_back_a_deleted_file_with_its_mode(seeded):
    before = seeded.files()
    snap = debconfdb.snapshot(seeded.target)
    (seeded.dir / "passwords.dat").unlink()
    (seeded.dir / "config.dat").chmod(0o600)
    debconfdb.restore(seeded.target, snap)
    assert seeded.files() == before


def test_a_restored_database_is_debconfs_again(seeded):
    snap = debconfdb.snapshot(seeded.target)
    seeded.set_selections("wiki wiki/title string Changed\n")
    debconfdb.restore(seeded.target, snap)
    # debconf reads and rewrites the restored files as its own.
    assert seeded.set_selections("wiki wiki/servers multiselect apache2\n") == ""
    assert debconfdb.values(seeded.target) == {
        "wiki/title": "My Wiki",
        "wiki/password": "s3cret",
        "wiki/servers": "apache2",
    }


def test_apply_loads_a_seed(apply_in_tree):
    seed = parse_seed(SEED + "wiki wiki/title seen false\n", "wiki.seed")
    debconfdb.apply(apply_in_tree.target, seed)
    assert debconfdb.values(apply_in_tree.target) == {
        "wiki/title": "My Wiki",
        "wiki/password": "s3cret",
        "wiki/servers": "apache2, lighttpd",
    }


def test_apply_refuses_a_seed_debconf_only_warns_about(apply_in_tree):
    # debconf-set-selections skips the line, warns and exits 0: a validated seed loads silently.
    seed = parse_seed("wiki wiki/flag bool yes\nwiki wiki/title string T\n", "wiki.seed")
    with pytest.raises(VatoolsError) as refused:
        debconfdb.apply(apply_in_tree.target, seed)
    assert refused.value.message.startswith("debconf-set-selections did not accept the seed:\n")
    assert "Unknown type bool, skipping line 1" in refused.value.message


def test_apply_refuses_a_seed_debconf_cannot_parse(apply_in_tree):
    # A value holding a newline (no parsed seed has one) makes debconf fail with an exit status.
    seed = parse_seed("wiki wiki/title string T\n", "wiki.seed")
    broken = seed.with_value("wiki/title", "T\ngarbage", seed.selections[0].location)
    with pytest.raises(VatoolsError) as refused:
        debconfdb.apply(apply_in_tree.target, broken)
    assert "parse error on line 2: 'garbage'" in refused.value.message
