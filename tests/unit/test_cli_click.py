"""The command line as click builds it: global options anywhere, errors and exit codes,
the wrong interpreter named, completion of appliance names from apt's lists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vatools.aptlists import appliance_names, package_names
from vatools.cli import common
from vatools.cli.main import main as vatools_main
from vatools.cli.valist import main as valist_main
from vatools.target import Target

TOP = Path(__file__).resolve().parents[2]
PACKAGES = """\
Package: dokuwiki-appliance
Version: 1.0
Provides: virtual-appliance
Conflicts: virtual-appliance

Package: dokuwiki
Depends: php
Description: mentions virtual-appliance in passing

Package: moinmoin-appliance
Provides: foo, virtual-appliance (= 1)
"""


def tree(tmp_path: Path) -> Path:
    """A Debian tree with a dpkg status and one apt list."""
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text("")
    lists = tmp_path / "var/lib/apt/lists"
    lists.mkdir(parents=True)
    (lists / "example.org_dists_bookworm_main_binary-amd64_Packages").write_text(PACKAGES)
    return tmp_path


@pytest.mark.parametrize("argv", [
    ["--debug", "backup", "verify", "/nonexistent.abf"],
    ["backup", "--debug", "verify", "/nonexistent.abf"],
    ["backup", "verify", "--debug", "/nonexistent.abf"],
    ["backup", "verify", "/nonexistent.abf", "--debug"],
])
def test_debug_is_accepted_before_and_after_the_command(argv: list[str], capsys) -> None:  # type: ignore[no-untyped-def]
    assert vatools_main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err  # --debug took effect wherever it was given
    assert err.rstrip().endswith("vatools: error: /nonexistent.abf: no such file")


def test_root_and_json_before_the_command(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    root = tree(tmp_path)
    assert vatools_main(["--root", str(root), "backup", "recover"]) == 0
    assert "interrupted restore to repair" in capsys.readouterr().out
    assert vatools_main(["--root", str(root), "--json", "backup", "recover"]) == 2
    assert "--json does not apply to 'vatools backup recover'" in capsys.readouterr().err
    # A global option the command does not take is a usage error, not silently dropped.
    assert vatools_main(["--root", str(root), "backup", "verify", "x.abf"]) == 2
    err = capsys.readouterr().err
    assert "vatools: error: --root does not apply to 'vatools backup verify'" in err
    assert "vatools: hint: see 'vatools backup verify --help'" in err
    assert vatools_main(["--json", "repo", "build", "out"]) == 2


def test_root_is_checked_wherever_given(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    for argv in (["--root", str(tmp_path), "seed", "skeleton", "x"],
                 ["seed", "skeleton", "--root", str(tmp_path), "x"]):
        assert vatools_main(argv) == 2
        assert "not a Debian system tree (no var/lib/dpkg/status)" in capsys.readouterr().err


def test_usage_errors_are_one_line_and_a_hint(capsys) -> None:  # type: ignore[no-untyped-def]
    assert valist_main(["--bogus"]) == 2
    error, hint = capsys.readouterr().err.splitlines()
    # click's own wording ("No such option: --bogus" in 8.1, "No such option '--bogus'." later)
    assert error.startswith("valist: error: No such option") and "--bogus" in error
    assert hint == "valist: hint: see 'valist --help'"
    assert vatools_main([]) == 2
    assert vatools_main(["seed"]) == 2
    assert "Missing command" in capsys.readouterr().err
    assert valist_main(["--installed", "--available"]) == 2
    assert "--installed and --available exclude each other" in capsys.readouterr().err


def test_valist_json_of_a_tree(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    root = tree(tmp_path)
    assert valist_main(["--installed", "--json", "--root", str(root)]) == 0
    assert capsys.readouterr().out == "[]\n"


def test_version(capsys) -> None:  # type: ignore[no-untyped-def]
    from vatools import __version__

    assert vatools_main(["--version"]) == 0
    assert capsys.readouterr().out == f"vatools {__version__}\n"


def test_seed_check_takes_several_packages_after_one_against() -> None:
    from vatools.cli.main import vatools

    check = vatools.commands["seed"].commands["check"]  # type: ignore[attr-defined]
    ctx = check.make_context("check", ["x.seed", "--against", "a", "b", "--json"])
    assert ctx.params["against"] == ("a",) and ctx.params["more"] == ("b",)
    assert common.settings(ctx).json


def test_a_python_without_python3_apt_is_named(tmp_path: Path) -> None:
    """As under a pyenv python: the interpreter and what to use instead, exit 3, no traceback."""
    seed = tmp_path / "x.seed"
    seed.write_text("x x/q string y\n")
    code = ("import sys; sys.modules['apt_pkg'] = sys.modules['apt'] = None\n"
            "from vatools.cli.main import main\n"
            f"sys.exit(main(['seed', 'check', {str(seed)!r}, '--against', 'postfix']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=TOP, capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"vatools: error: {sys.executable} (Python " in proc.stderr
    assert "needs Debian's /usr/bin/python3 with python3-apt" in proc.stderr
    assert "internal error" not in proc.stderr


def test_appliance_names_come_from_the_apt_lists(tmp_path: Path) -> None:
    target = Target(tree(tmp_path))
    assert appliance_names(target) == ["dokuwiki-appliance", "moinmoin-appliance"]
    assert package_names(target, "doku") == ["dokuwiki", "dokuwiki-appliance"]


def complete(prog: str, module: str, words: str, cword: int) -> list[str]:
    env = dict(os.environ, COMP_WORDS=words, COMP_CWORD=str(cword),
               **{f"_{prog.upper()}_COMPLETE": "bash_complete"})
    proc = subprocess.run([sys.executable, "-c", f"from vatools.cli.{module} import main; main()"],
                          cwd=TOP, env=env, capture_output=True, text=True, check=True)
    return proc.stdout.splitlines()


def test_completion_of_names_files_and_commands(tmp_path: Path) -> None:
    root = tree(tmp_path)
    assert complete("vainstall", "vainstall", f"vainstall --root {root} mo", 3) == [
        "plain,moinmoin-appliance"]
    assert complete("vatools", "main", "vatools --debug backup verify ", 4) == ["file,"]
    assert complete("vatools", "main", "vatools backup ", 2) == [
        f"plain,{name}" for name in ("create", "inspect", "recover", "restore", "verify")]
    assert complete("vainstall", "vainstall", "vainstall --root ", 2) == ["dir,"]
    assert "plain,--dry-run" in complete("vainstall", "vainstall", "vainstall --d", 1)


def test_cli_imports_no_process_or_apt_module() -> None:
    for module in (TOP / "vatools/cli").glob("*.py"):
        imports = re.findall(r"^\s*(?:import|from)\s+([\w.]+)", module.read_text(), re.M)
        assert not {i.split(".")[0] for i in imports} & {"subprocess", "apt", "apt_pkg", "debian"}, module


@pytest.mark.parametrize("raised, code, message", [
    (KeyboardInterrupt(), 130, "vatools: interrupted; nothing was changed"),
    (RuntimeError("a bug"), 70, "vatools: internal error (a bug in vatools); run again with --debug"
                                " for the traceback"),
])
def test_interrupt_and_bug_exit_codes(tmp_path: Path, monkeypatch, capsys,  # type: ignore[no-untyped-def]
                                      raised: BaseException, code: int, message: str) -> None:
    import vatools.backup.restore

    def recover(target: Target) -> str:
        raise raised

    monkeypatch.setattr(vatools.backup.restore, "recover", recover)
    assert vatools_main(["backup", "recover", "--root", str(tree(tmp_path))]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    # with --debug, a bug shows its traceback and still exits 70
    if code == 70:
        assert vatools_main(["--debug", "backup", "recover", "--root", str(tmp_path)]) == 70
        err = capsys.readouterr().err
        assert "Traceback" in err and "RuntimeError: a bug" in err
