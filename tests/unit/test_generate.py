"""The generator's input checks, refusal to overwrite, and all-or-nothing writing (pure logic)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from debian.deb822 import Deb822

from vatools.packaging import generate
from vatools.cli.main import vatools as vatools_group
from vatools.errors import ExitCode, UsageError, VatoolsError
from vatools.packaging.generate import GeneratedFile, make_spec, render, write_appliance
from vatools.packaging.policy import check_maintainer, check_package_name, check_synopsis, check_version

DATE = datetime(2026, 11, 23, 21, 35, tzinfo=timezone.utc)
JANE = "Jane Doe <jane@example.org>"


def spec(name: str = "mail-appliance", depends: str = "postfix", **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("maintainer", JANE)
    return make_spec(name, depends, date=DATE, environ={}, **kwargs)


@pytest.mark.parametrize("name", ["A-appliance", "x", "-x", "mail_appliance", "mail appliance", "é-x"])
def test_bad_package_names_are_refused_with_the_value(name: str) -> None:
    with pytest.raises(UsageError, match="not a valid Debian package name") as error:
        spec(name=name)
    assert repr(name.strip()) in error.value.message
    assert error.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize("name", ["mail-appliance", "g++-box", "x2", "a.b+c-d"])
def test_good_package_names(name: str) -> None:
    assert check_package_name(name) == name


@pytest.mark.parametrize("version,message", [
    ("1.0-1", "has a Debian revision"),
    ("v1", "not a valid Debian version"),
    ("1.0_beta", "not a valid Debian version"),
    ("", "not a valid Debian version"),
])
def test_bad_versions(version: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        spec(version=version)


@pytest.mark.parametrize("version", ["1.0", "2:1.0~rc1+deb12", "0.1"])
def test_good_native_versions(version: str) -> None:
    assert check_version(version) == version


def test_non_native_versions_in_relations() -> None:
    made = spec(depends="postfix (>= 3.7.11-0+deb12u1)")
    assert made.relations == ("postfix (>= 3.7.11-0+deb12u1)",)


@pytest.mark.parametrize("maintainer,message", [
    ("Jane Doe", "not of the form"),
    ("<jane@example.org>", "not of the form"),
    ("Doe, Jane <jane@example.org>", "not of the form"),
    ("Jane Doe <jane@localhost>", "no usable mail domain"),
    ("Jane Doe <jane@example>", "no usable mail domain"),
    ("J. Doe <jane@example.org>", "contains a full stop"),
])
def test_bad_maintainers(maintainer: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        spec(maintainer=maintainer)


def test_maintainer_from_the_environment_or_a_clear_refusal() -> None:
    env = {"DEBFULLNAME": "Jane Doe", "DEBEMAIL": "jane@example.org"}
    assert make_spec("x-appliance", "postfix", date=DATE, environ=env).maintainer == JANE
    assert make_spec("x-appliance", "postfix", date=DATE,
                     environ={"DEBEMAIL": JANE}).maintainer == JANE
    with pytest.raises(UsageError, match="no maintainer given") as error:
        make_spec("x-appliance", "postfix", date=DATE, environ={})
    assert "--maintainer" in (error.value.hint or "")


@pytest.mark.parametrize("text,message", [
    ("", "is empty"),
    ("x" * 81, "at most 80"),
    ("mail-appliance for you", "starts with the package name"),
    ("Mail appliance", "only repeats the package name"),
    ("A mail server", "starts with an article"),
    ("mail server for an office.", "ends with a full stop"),
])
def test_bad_synopses(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_synopsis(text, "mail-appliance")


@pytest.mark.parametrize("depends,message", [
    ("postfix,,mailx", "an empty entry"),
    ("Postfix", "not a valid Debian package name"),
    ("postfix (>> )", "cannot read"),
    ("postfix (>= x1)", "not a valid Debian version"),
    ("mail-appliance", "names the appliance itself"),
])
def test_bad_depends(depends: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        spec(depends=depends)


def test_web_server_joins_depends_services_and_the_skeleton_packages() -> None:
    made = spec(depends="dokuwiki, php-gd | php8.2-gd", web="nginx")
    assert made.relations == ("dokuwiki", "php-gd | php8.2-gd", "nginx")
    assert made.packages == ("dokuwiki", "php-gd", "nginx")
    assert made.services == ("nginx",)
    already = spec(depends="apache2, dokuwiki", web="apache2", services="apache2.service,cron")
    assert already.relations == ("apache2", "dokuwiki")
    assert already.services == ("apache2", "cron")
    with pytest.raises(UsageError, match="choose one of apache2, nginx"):
        spec(web="lighttpd")


def test_control_is_valid_deb822_without_services_field_when_none() -> None:
    files = {str(f.path): f for f in render(spec(), "")}
    control = files["appliances/mail-appliance/debian/control"].text
    source, binary = [Deb822(p.splitlines()) for p in control.split("\n\n")]
    assert source["Source"] == binary["Package"] == "mail-appliance"
    assert binary["Provides"] == binary["Conflicts"] == "virtual-appliance"
    assert binary["Depends"] == "postfix, ${misc:Depends}"
    assert "XB-Vatools-Services" not in binary
    overrides = files["appliances/mail-appliance/debian/mail-appliance.lintian-overrides"].text
    assert "unknown-field Vatools-Services" not in overrides
    assert files["appliances/mail-appliance/mail-appliance.seed"].link == "../../seeds/mail-appliance.seed"
    # Scripts are executable, the rest is not.
    modes = {path: f.mode for path, f in files.items() if f.link is None}
    assert modes["appliances/mail-appliance/debian/rules"] == 0o755
    assert modes["appliances/mail-appliance/debian/tests/installed"] == 0o755
    assert modes["appliances/mail-appliance/debian/control"] == 0o644


def test_maintainer_scripts_have_set_e_and_debhelper_token() -> None:
    files = {str(f.path): f.text for f in render(spec(), "")}
    for script in ("postinst", "postrm"):
        text = files[f"appliances/mail-appliance/debian/mail-appliance.{script}"]
        assert text.startswith("#!/bin/sh\n")
        assert "\nset -e\n" in text and "\n#DEBHELPER#\n" in text


def test_existing_appliance_is_refused_unless_forced(tmp_path: Path) -> None:
    made = spec()
    write_appliance(render(made, "# first\n"), tmp_path, made.name, force=False)
    seed = tmp_path / "seeds/mail-appliance.seed"
    with pytest.raises(VatoolsError, match="exists already") as error:
        write_appliance(render(made, "# second\n"), tmp_path, made.name, force=False)
    assert error.value.exit_code == ExitCode.REFUSED
    assert "--force" in (error.value.hint or "")
    assert seed.read_text().endswith("# first\n")
    (tmp_path / "appliances/mail-appliance/extra-file").write_text("old")
    write_appliance(render(made, "# second\n"), tmp_path, made.name, force=True)
    assert seed.read_text().endswith("# second\n")
    assert not (tmp_path / "appliances/mail-appliance/extra-file").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["appliances", "seeds"]  # no staging left


def test_refused_when_only_the_seed_exists(tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds/mail-appliance.seed").write_text("mine\n")
    with pytest.raises(VatoolsError, match="exists already"):
        generate.generate(spec(), tmp_path, target=None, skeleton="")  # type: ignore[arg-type]
    assert not (tmp_path / "appliances").exists()


def test_a_failure_while_writing_leaves_nothing_behind(tmp_path: Path) -> None:
    top = tmp_path / "tree"
    files = render(spec(), "") + [GeneratedFile(generate.PurePosixPath("appliances/mail-appliance"),
                                                "a file where a directory is")]
    with pytest.raises(OSError):
        write_appliance(files, top, "mail-appliance", force=False)
    assert not top.exists()


def test_a_failure_while_forcing_puts_the_old_appliance_back(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    made = spec()
    write_appliance(render(made, "# old\n"), tmp_path, made.name, force=False)
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    real_rename = Path.rename

    failures = []

    def failing_rename(self: Path, target):  # type: ignore[no-untyped-def]
        # The new seed's move into place fails, once; putting the old one back works.
        if (str(target).endswith("seeds/mail-appliance.seed") and "/staged/" not in str(self)
                and "/old/" not in str(self) and not failures):
            failures.append(self)
            raise OSError("disk full")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    with pytest.raises(OSError, match="disk full"):
        write_appliance(render(made, "# new\n"), tmp_path, made.name, force=True)
    monkeypatch.undo()
    assert failures
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "seeds/mail-appliance.seed").read_text().endswith("# old\n")


def test_cli_new_is_registered_with_its_options() -> None:
    from vatools.cli import common

    command = vatools_group.commands["new"]
    ctx = command.make_context("new", [
        "mail-appliance", "--depends", "postfix,bsd-mailx", "--web", "apache2",
        "--services", "postfix", "--initial-version", "1.1", "--output", "/tmp/x", "--force",
        "--maintainer", JANE, "--description", "mail server", "--root", "/srv/tree", "--debug",
    ])
    args, settings = ctx.params, common.settings(ctx)
    assert command.callback.__module__ == "vatools.cli.new"
    assert (args["name"], args["depends"], args["web"], args["force"]) == (
        "mail-appliance", "postfix,bsd-mailx", "apache2", True)
    assert args["output"] == Path("/tmp/x") and settings.root == Path("/srv/tree")
    assert settings.debug


def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from vatools.cli.main import main

    code = main(["new", "Bad_Name", "--depends", "postfix", "--maintainer", JANE,
                 "--output", str(tmp_path)])
    assert code == ExitCode.USAGE
    assert "appliance name 'Bad_Name' is not a valid Debian package name" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_check_maintainer_normalises_blanks() -> None:
    assert check_maintainer("  Jane   Doe  <jane@example.org> ") == JANE
