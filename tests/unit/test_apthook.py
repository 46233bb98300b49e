"""The apt hook's own logic: apt's protocol, the switch, what a transaction calls for, its apt.conf."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import apt_pkg
import pytest

from vatools import apthook, credentials
from vatools.apthook import Action, decide, parse_info, switch
from vatools.seed.file import parse_seed
from vatools.target import Target

TOP = Path(__file__).resolve().parents[2]
CONFFILE = TOP / "apthook" / "69vatools"

# What apt 2.6 wrote to a version 3 hook for `apt-get install ./hello-x.deb` (trimmed).
APT_INFO = """VERSION 3
APT::Architecture=amd64
DPkg::Pre-Install-Pkgs::=VATOOLS_APT_HOOK=/usr/lib/vatools/apt-hook%20sh%20-c%20'if'
DPkg::Tools::Options::VATOOLS_APT_HOOK%3d/usr/lib/vatools/apt-hook::InfoFD=20

hello-x - - none < 1.0 all none /tmp/hello-x.deb
libold 2.0 amd64 same < 2.1 amd64 same /var/cache/apt/archives/libold_2.1_amd64.deb
gone 1.0 all none > - - none **REMOVE**
hello-x - - none < 1.0 all none **CONFIGURE**
"""


def test_apt_protocol_version_3_is_parsed() -> None:
    info = parse_info(APT_INFO)
    assert info.config["APT::Architecture"] == "amd64"
    assert info.config["DPkg::Tools::Options::VATOOLS_APT_HOOK=/usr/lib/vatools/apt-hook::InfoFD"] == "20"
    assert info.actions[0] == Action("hello-x", None, "1.0", "/tmp/hello-x.deb")
    assert info.actions[1].old_version == "2.0" and info.actions[1].new_version == "2.1"
    assert info.actions[2].removes and info.actions[2].new_version is None
    assert info.debs == [Path("/tmp/hello-x.deb"), Path("/var/cache/apt/archives/libold_2.1_amd64.deb")]


def test_apt_protocol_version_2_is_parsed() -> None:
    info = parse_info("VERSION 2\nA::B=c\n\nwiki - < 1.0 /c/wiki_1.0_all.deb\n")
    assert info.actions == (Action("wiki", None, "1.0", "/c/wiki_1.0_all.deb"),)


def test_version_1_input_is_refused() -> None:
    with pytest.raises(ValueError, match="version 2 or 3"):
        parse_info("/var/cache/apt/archives/wiki_1.0_all.deb\n")


@pytest.mark.parametrize("value, state", [
    ("", "on"), ("true", "on"), ("false", "off"), ("False", "off"), ("no", "off"), ("0", "off"),
    ("vainstall", "vainstall"),
])
def test_the_switch(value: str, state: str) -> None:
    assert switch({"Vatools::Apt-Hook": value} if value else {}) == state


def test_vainstall_marks_its_apt_get_runs_for_the_hook() -> None:
    from vatools.aptrun import SEEDED_BY_VAINSTALL

    option, setting = SEEDED_BY_VAINSTALL
    key, value = setting.split("=", 1)
    assert option == "-o" and switch({key: value}) == apthook.VAINSTALL


NEW = Action("wiki", None, "1.0", "/c/wiki_1.0_all.deb")
UPGRADED = Action("wiki", "1.0", "1.1", "/c/wiki_1.1_all.deb")
LIB = Action("libx", None, "2", "/c/libx_2_all.deb")
REMOVED = Action("blog", "1.0", None, "**REMOVE**")


@pytest.mark.parametrize("installed, actions, appliances, kind, name", [
    ([], [NEW, LIB], {"wiki"}, "install", "wiki"),
    ([], [LIB], set(), "nothing", ""),
    (["blog"], [NEW, REMOVED], {"wiki"}, "refuse", "wiki"),
    (["blog"], [NEW], {"wiki"}, "refuse", "wiki"),
    (["wiki"], [UPGRADED, LIB], {"wiki"}, "upgrade", "wiki"),
    (["blog"], [LIB], set(), "upgrade", "blog"),  # a dependency may come in a step of its own
    (["blog"], [REMOVED], set(), "nothing", ""),  # removing the appliance is the admin's call
    (["blog"], [Action("libx", "1", None, "**REMOVE**")], set(), "nothing", ""),
])
def test_what_a_transaction_calls_for(installed: list[str], actions: list[Action],
                                      appliances: set[str], kind: str, name: str) -> None:
    decision = decide(installed, actions, appliances)
    assert (decision.kind, decision.appliance) == (kind, name)
    if kind == "refuse":
        assert "vainstall --replace wiki" in decision.hint


def _deb(tmp_path: Path, name: str, fields: str) -> Path:
    tree = tmp_path / name
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\n"
        f"{fields}Description: test\n")
    deb = tmp_path / f"{name}_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(deb)],
                   check=True, capture_output=True)
    return deb


def test_appliances_are_recognised_by_their_provides(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apthook, "_log_target", Target(tmp_path))  # it logs the unreadable one
    debs = [
        _deb(tmp_path, "wiki-appliance", "Provides: virtual-appliance\nConflicts: virtual-appliance\n"),
        _deb(tmp_path, "helper", "Provides: virtual-appliance-helper\n"),
        _deb(tmp_path, "plain", ""),
    ]
    assert apthook._appliances_in(debs + [tmp_path / "missing.deb"]) == {"wiki-appliance"}
    assert "missing.deb" in (tmp_path / "var/log/vatools/apt-hook.log").read_text()


def _run_main(info: str, tmp_path: Path) -> int:
    read, write = os.pipe()
    os.write(write, info.encode())
    os.close(write)
    os.environ["APT_HOOK_INFO_FD"] = str(read)
    try:
        return apthook.main(Target(tmp_path))
    finally:
        del os.environ["APT_HOOK_INFO_FD"]
        os.close(read)


def test_vainstall_runs_and_unreadable_input_never_stop_apt(tmp_path: Path) -> None:
    assert _run_main("VERSION 3\nVatools::Apt-Hook=vainstall\n\n" + APT_INFO.split("\n\n")[1],
                     tmp_path) == 0
    assert _run_main("garbage\n", tmp_path) == 0


def test_generated_passwords_fill_a_pair_with_one_value() -> None:
    seed = parse_seed("p p/password password\np p/confirm password\n", "s")
    values = credentials.generate_for(seed, ["p/password", "p/confirm"])
    assert values["p/password"] == values["p/confirm"] and len(values["p/password"]) >= 20
    filled = credentials.with_values(seed, values)
    assert filled.answers()["p/confirm"].value == values["p/password"]


def test_the_conffile_keys_its_options_by_its_own_first_word() -> None:
    config = apt_pkg.Configuration()
    apt_pkg.read_config_file(config, str(CONFFILE))
    commands = config.value_list("DPkg::Pre-Install-Pkgs")
    assert len(commands) == 1
    first_word = commands[0].split()[0]
    assert first_word.startswith("VATOOLS_APT_HOOK=")  # no other hook starts like this
    options = f"DPkg::Tools::Options::{first_word}"
    assert config.find_i(f"{options}::Version") == 3
    assert config.find_i(f"{options}::InfoFD") > 2
    # Guarded: a conffile left behind runs nothing once the program is gone.
    assert "if [ -x $VATOOLS_APT_HOOK ]; then exec $VATOOLS_APT_HOOK; fi" in commands[0]
    # Last before debconf's preconfiguration (70debconf), after hooks that may still stop apt.
    assert "20listchanges" < CONFFILE.name < "70debconf"


def test_the_hook_program_is_installed_beside_the_conffile() -> None:
    lines = (TOP / "debian" / "vatools.install").read_text().splitlines()
    assert "apthook/69vatools etc/apt/apt.conf.d/" in lines
    assert "apthook/apt-hook usr/lib/vatools/" in lines
    assert os.access(TOP / "apthook" / "apt-hook", os.X_OK)


def test_generated_passwords_are_forgotten_once_their_package_is_configured(tmp_path: Path) -> None:
    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_text("Package: done\nStatus: install ok installed\nVersion: 1\n\n"
                      "Package: waiting\nStatus: install ok unpacked\nVersion: 1\n")
    pending = tmp_path / apthook.TO_FORGET.lstrip("/")
    assert apthook.main(Target(tmp_path), [apthook.AFTER_DPKG]) == 0  # nothing pending
    pending.parent.mkdir(parents=True)
    # debconf holds no value for done/password any more: nothing to blank, the line is done.
    pending.write_text("done done/password\nwaiting waiting/password\n")
    assert apthook.main(Target(tmp_path), [apthook.AFTER_DPKG]) == 0
    assert pending.read_text() == "waiting waiting/password\n"  # its package is not configured yet
