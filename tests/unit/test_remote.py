"""vatools.remote's pure parts: host names, ssh command lines, error classes, apt sources; and the
Ansible collection's documentation as ansible-doc reads it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from vatools import remote
from vatools.cli.vainstall import main as vainstall_main
from vatools.cli.valist import main as valist_main
from vatools.errors import ExitCode, VatoolsError

COLLECTIONS = Path(__file__).resolve().parents[2] / "ansible"


@pytest.mark.parametrize("text, host", [
    ("web1", remote.Host("web1")),
    ("admin@web1:2222", remote.Host("web1", "admin", 2222)),
    ("root@10.0.0.5", remote.Host("10.0.0.5", "root")),
    ("[2001:db8::5]:22", remote.Host("2001:db8::5", None, 22)),
    ("2001:db8::5", remote.Host("2001:db8::5")),
])
def test_hosts_are_parsed(text: str, host: remote.Host) -> None:
    assert remote.Host.parse(text) == host
    assert remote.Host.parse(str(host)) == host


@pytest.mark.parametrize("text", ["", "@web1", "web1:0", "web1:http", "-oProxyCommand=x", "a b"])
def test_bad_hosts_are_refused(text: str) -> None:
    with pytest.raises(VatoolsError, match="--host"):
        remote.Host.parse(text)


def test_the_ssh_command_line_quotes_the_remote_argv_and_is_batch_when_asked() -> None:
    argv = remote.Host("web1", "admin", 2222).ssh_argv(["echo", "a b", "$HOME"], batch=True)
    assert argv[:1] == ["ssh"] and "BatchMode=yes" in argv
    assert argv[argv.index("-p") + 1] == "2222" and argv[argv.index("-l") + 1] == "admin"
    assert argv[-3:-1] == ["--", "web1"]
    assert shlex.split(argv[-1]) == ["echo", "a b", "$HOME"]
    assert "BatchMode=yes" not in remote.Host("web1").ssh_argv(["true"], batch=False)


def test_changes_go_through_sudo_unless_root() -> None:
    as_admin = remote.Facts(root=False, suite="bookworm", has_vatools=True, installed=())
    assert as_admin.privileged(["vainstall"]) == ["sudo", "-n", "--", "vainstall"]
    assert remote.Facts(True, "bookworm", True, ()).privileged(["vainstall"]) == ["vainstall"]


@pytest.mark.parametrize("output, status, kind, code", [
    ("ssh: connect to host 10.1.1.1 port 22: No route to host", 255, remote.HostUnreachable, 10),
    ("ssh: Could not resolve hostname nope: Name or service not known", 255, remote.HostUnreachable, 10),
    ("root@web1: Permission denied (publickey).", 255, remote.LoginRefused, 11),
    ("Host key verification failed.", 255, remote.LoginRefused, 11),
])
def test_ssh_failures_are_named_with_their_exit_code(output: str, status: int, kind: type,
                                                     code: int) -> None:
    error = remote.connection_error(remote.Host("web1"), status, output)
    assert isinstance(error, kind) and int(error.exit_code) == code
    assert error.message.startswith("web1: ") and error.hint


def test_exit_codes_do_not_collide() -> None:
    values = [int(code) for code in ExitCode]
    assert len(values) == len(set(values))


def test_sources_use_the_hosts_release_and_the_keyring_kind() -> None:
    text = remote.sources_text(["http://r/{suite}/", "http://r/tests/{suite}/"],
                               remote.keyring_name(b"\x99\x01binary"), "trixie")
    assert "URIs: http://r/trixie/ http://r/tests/trixie/\n" in text
    assert "Suites: ./\n" in text and "Signed-By: /etc/apt/keyrings/vatools.gpg\n" in text
    assert remote.keyring_name(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n").endswith("vatools.asc")


def test_the_remote_helper_script_compiles() -> None:
    compile(remote.WITH_SECRETS, "<remote>", "exec")


def test_host_options_are_checked_before_any_connection(capsys: pytest.CaptureFixture[str]) -> None:
    assert vainstall_main(["--host", "web1", "--root", "/", "x"]) == 2
    assert "--root and --host exclude each other" in capsys.readouterr().err
    assert vainstall_main(["--host", "web1", "--repository", "http://r/", "--yes", "x"]) == 2
    assert "--repository and --keyring go together" in capsys.readouterr().err
    assert vainstall_main(["--repository", "http://r/", "x"]) == 2
    assert "apply to --host only" in capsys.readouterr().err
    assert vainstall_main(["--host", "a b", "--yes", "x"]) == 2
    assert "expected [USER@]HOST[:PORT]" in capsys.readouterr().err
    assert valist_main(["--host", "web1", "--installed", "--available"]) == 2
    assert vainstall_main(["--json", "x"]) == 2
    assert "--json applies to --dry-run only" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("ansible-doc") is None and not os.environ.get("CI"),
                    reason="ansible-core is not installed (make setup installs it)")
@pytest.mark.parametrize("module", ["appliance", "bootstrap"])
def test_ansible_doc_shows_the_modules(module: str) -> None:
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS), "ANSIBLE_NOCOLOR": "1"}
    done = subprocess.run(["ansible-doc", "--json", f"vatools.appliance.{module}"],
                          capture_output=True, text=True, env=env, check=True)
    doc = json.loads(done.stdout)[f"vatools.appliance.{module}"]["doc"]
    assert doc["short_description"] and doc["options"]
    if module == "appliance":
        assert set(doc["options"]) >= {"name", "state", "seed", "answers", "replace"}
        assert doc["options"]["state"]["choices"] == ["present", "absent"]
