"""Pure parts of building and publishing: names, parsing, copying rules, source discovery, CLI."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

import vatools.packaging.build
import vatools.packaging.repo
from vatools.packaging.build import (build_depends, check_suite, copy_source, is_junk, mounts_under,
                           needs_chroot, source_name)
from vatools.cli.main import main as vatools_main, vatools as vatools_group
from vatools.cli.repo import DEFAULT_KEY_DIR, build_handler
from vatools.errors import VatoolsError
from vatools.packaging.repo import (find_sources, secret_fingerprint_from_colons, seed_file_name,
                          sources_entry)

CONTROL = """\
Source: {name}
Build-Depends: debhelper-compat (= 13),
               python3-venv,
Build-Depends-Indep: python3-all

Package: {name}
Architecture: all
Description: x
 y
"""


def source_dir(path: Path, name: str) -> Path:
    (path / "debian").mkdir(parents=True)
    (path / "debian" / "control").write_text(CONTROL.format(name=name))
    return path


def test_docstring_examples() -> None:
    for module in (vatools.packaging.build, vatools.packaging.repo):
        assert doctest.testmod(module).failed == 0


@pytest.mark.parametrize("deb, seed", [
    ("dokuwiki-appliance_1.0_all.deb", "dokuwiki-appliance_1.0_all.seed"),
    ("x_1.0+deb12u1_amd64.deb", "x_1.0+deb12u1_amd64.seed"),
    ("a.deb.deb", "a.deb.seed"),  # only the last .deb is replaced
])
def test_seed_file_name(deb: str, seed: str) -> None:
    assert seed_file_name(deb) == seed


def test_seed_file_name_refuses_non_deb() -> None:
    with pytest.raises(VatoolsError, match="x.udeb is not a .deb"):
        seed_file_name("x.udeb")


def test_secret_fingerprint_takes_the_primary_key_not_a_subkey() -> None:
    listing = ("sec:u:255:22:1111:1::::::scESC:::+:::ed25519:::0:\n"
               "fpr:::::::::PRIMARY1111:\n"
               "grp:::::::::AAAA:\n"
               "uid:u::::1::X::vatools <v@l>::::::::::0:\n"
               "ssb:u:255:18:2222:1::::::e:::+:::cv25519::\n"
               "fpr:::::::::SUBKEY2222:\n")
    assert secret_fingerprint_from_colons(listing) == "PRIMARY1111"
    assert secret_fingerprint_from_colons("ssb:u\nfpr:::::::::SUB:\n") is None


def test_sources_entry_is_a_flat_deb822_source_with_signed_by() -> None:
    text = sources_entry(Path("/srv/repo/trixie"))
    fields = dict(line.split(": ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert fields == {"Types": "deb", "URIs": "file:/srv/repo/trixie", "Suites": "./",
                      "Signed-By": "/etc/apt/keyrings/vatools-archive-keyring.gpg"}


# (not named "suite": conftest runs every test with a `suite` argument once per suite)
@pytest.mark.parametrize("codename", ["bookworm", "trixie", "bookworm-backports", "sid"])
def test_check_suite_accepts_debian_names(codename: str) -> None:
    assert check_suite(codename) == codename


@pytest.mark.parametrize("codename", ["", "../etc", "Bookworm", "a/b", "trixie ", "-x"])
def test_check_suite_refuses_names_that_are_not_suites(codename: str) -> None:
    with pytest.raises(VatoolsError, match="invalid suite name"):
        check_suite(codename)


@pytest.mark.parametrize("name, junk", [
    (".git", True), ("build", True), ("__pycache__", True), ("vatools.egg-info", True),
    ("x.pyc", True), ("debian", False), ("builder", False), ("vatools", False),
])
def test_is_junk(name: str, junk: bool) -> None:
    assert is_junk(name) is junk


def test_copy_source_dereferences_symlinks_and_skips_junk(tmp_path: Path) -> None:
    top = tmp_path / "top"
    (top / "seeds").mkdir(parents=True)
    (top / "seeds" / "app.seed").write_text("a a/b string c\n")
    app = source_dir(top / "appliances" / "app", "app")
    (app / "app.seed").symlink_to("../../seeds/app.seed")
    (app / ".git").mkdir()
    (app / "build").mkdir()
    (app / "debian" / "__pycache__").mkdir()

    copy_source(app, tmp_path / "copy")

    seed = tmp_path / "copy" / "app.seed"
    assert seed.is_file() and not seed.is_symlink()
    assert seed.read_text() == "a a/b string c\n"
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["app.seed", "debian"]
    assert sorted(p.name for p in (tmp_path / "copy" / "debian").iterdir()) == ["control"]


def test_copy_source_names_a_dangling_symlink(tmp_path: Path) -> None:
    app = source_dir(tmp_path / "app", "app")
    (app / "app.seed").symlink_to("../../seeds/missing.seed")
    with pytest.raises(VatoolsError, match=r"app\.seed is a dangling symlink"):
        copy_source(app, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def test_source_name_and_build_depends(tmp_path: Path) -> None:
    src = source_dir(tmp_path / "s", "vatools-moin")
    assert source_name(src) == "vatools-moin"
    assert build_depends(src) == ("build-essential, debhelper-compat (= 13), python3-venv, "
                                  "python3-all")
    assert not needs_chroot(src)
    (src / "debian" / "vatools-build-in-chroot").write_text("")
    assert needs_chroot(src)


def test_source_name_refuses_a_dir_without_control(tmp_path: Path) -> None:
    with pytest.raises(VatoolsError, match="debian/control is missing"):
        source_name(tmp_path)


def test_find_sources_lists_each_source_once_toolkit_first(tmp_path: Path) -> None:
    top = source_dir(tmp_path / "top", "vatools")
    source_dir(top / "appliances" / "b-appliance", "b-appliance")
    source_dir(top / "appliances" / "a-appliance", "a-appliance")
    source_dir(top / "packages" / "vatools-moin", "vatools-moin")
    extra = source_dir(tmp_path / "probe", "probe")
    found = find_sources(top, [extra, top / "appliances" / "a-appliance", extra])
    assert [p.name for p in found] == ["top", "a-appliance", "b-appliance", "vatools-moin", "probe"]


def test_find_sources_names_an_appliance_dir_without_control(tmp_path: Path) -> None:
    top = source_dir(tmp_path / "top", "vatools")
    (top / "appliances" / "half-done").mkdir(parents=True)
    with pytest.raises(VatoolsError, match="half-done is not a Debian source dir"):
        find_sources(top)


def test_mounts_under_lists_only_that_tree(tmp_path: Path) -> None:
    assert mounts_under(tmp_path) == []
    assert "/" not in mounts_under(tmp_path)


def parse(argv: list[str]):  # type: ignore[no-untyped-def]
    """The command `vatools GROUP COMMAND ARGS...` runs, and its parameters as click parses them."""
    group, name, *args = argv
    command = vatools_group.commands[group].commands[name]  # type: ignore[attr-defined]
    return command, command.make_context(name, args).params


def test_cli_defaults() -> None:
    command, params = parse(["repo", "build", "out"])
    assert command is build_handler
    assert (params["dir"], params["suites"], params["key_dir"], params["top"],
            params["extra_sources"]) == (Path("out"), (), DEFAULT_KEY_DIR, Path("."), ())


def test_cli_repeatable_options() -> None:
    command, params = parse(["repo", "build", "out", "--suite", "trixie", "--suite", "bookworm",
                             "--key-dir", "/k", "--top", "/t", "--extra-source", "/a",
                             "--extra-source", "/b"])
    assert params["suites"] == ("trixie", "bookworm")
    assert (params["key_dir"], params["top"]) == (Path("/k"), Path("/t"))
    assert params["extra_sources"] == (Path("/a"), Path("/b"))


def test_cli_requires_a_repo_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert vatools_main(["repo"]) == 2
    assert "Missing command" in capsys.readouterr().err


def test_read_seed_names_a_file_that_is_not_a_deb(tmp_path: Path) -> None:
    junk = tmp_path / "x_1.0_all.deb"
    junk.write_text("not an ar archive\n")
    with pytest.raises(VatoolsError, match=r"x_1.0_all.deb is not a readable .deb"):
        vatools.packaging.repo.read_seed(junk)
