"""The helper protocol (vatools/control/protocol.py): every allow-listed operation has exactly
one implementation and every implementation an allow-list entry; the web process imports
nothing of the root side; errors keep their hint and output through the encoding.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vatools.control import ops
from vatools.control.protocol import (OPERATIONS, BadRequest, HelperError, Progress, Result,
                                      decode_reply, decode_request, encode_error,
                                      encode_progress, encode_request, encode_result)
from vatools.errors import CommandFailed, VatoolsError

REPO = Path(__file__).resolve().parents[2]
ROOT_SIDE = ("vatools.control.ops", "vatools.control.helper", "vatools.control.rootfs",
             "vatools.control.provision")
PLUGIN_DIRS = sorted(REPO.glob("appliances/*/control-plugin"))


# -- schema and implementation ---------------------------------------------------------------------
def test_every_allow_listed_operation_has_one_implementation_and_no_other() -> None:
    assert ops.unbound() == []
    assert set(ops.IMPLEMENTATIONS) == set(OPERATIONS)
    methods = {name: method for name, method in vars(ops.Operations).items()
               if name.startswith("op_")}
    # Every op_ method is bound to an operation; nothing bound lives outside Operations.
    assert sorted(m.__name__ for m in ops.IMPLEMENTATIONS.values()) == sorted(methods)
    for name, method in ops.IMPLEMENTATIONS.items():
        assert methods[method.__name__] is method, name


def test_each_implementation_takes_exactly_its_operations_arguments() -> None:
    for name, method in ops.IMPLEMENTATIONS.items():
        parameters = list(inspect.signature(method).parameters)
        assert parameters[:2] == ["self", "emit"], name
        assert sorted(parameters[2:]) == sorted(OPERATIONS[name].args), name


def test_binding_refuses_unlisted_names_wrong_parameters_and_duplicates() -> None:
    before = dict(ops.IMPLEMENTATIONS)

    def op_shell(self: ops.Operations, emit: ops.Emit, command: str) -> str:
        return command

    with pytest.raises(TypeError, match="'shell' is not an allow-listed operation"):
        ops.implements("shell")(op_shell)

    def op_verify(self: ops.Operations, emit: ops.Emit, path: str) -> str:
        return path

    with pytest.raises(TypeError, match=r"parameters \(path\) are not backup-verify's "
                                        r"arguments \(name\)"):
        ops.implements("backup-verify")(op_verify)

    def op_verify_too(self: ops.Operations, emit: ops.Emit, name: str = "x.abf") -> str:
        return name

    with pytest.raises(TypeError, match="are not backup-verify's arguments"):  # no defaults
        ops.implements("backup-verify")(op_verify_too)

    def op_ping_again(self: ops.Operations, emit: ops.Emit) -> str:
        return "pong"

    with pytest.raises(TypeError, match="ping is implemented already by Operations.op_ping"):
        ops.implements("ping")(op_ping_again)
    assert ops.IMPLEMENTATIONS == before


# -- the web process imports nothing of the root side ---------------------------------------------
WEB_PROCESS = """
import json, sys
from pathlib import Path
sys.path[:0] = json.loads(sys.argv[2])
import vatools.control.gunicorn_conf
from vatools.control.app import create_app
from vatools.control.config import Config
import dokuwiki_appliance_control, moinmoin_appliance_control
state = Path(sys.argv[1])
app = create_app(Config(state_dir=state, socket=state / "none.sock"), ([], []))
app.test_client().get("/login")
print(json.dumps(sorted(sys.modules)))
"""


def test_the_web_process_loads_no_root_side_module(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO),
               APPLIANCE_CONTROL_CONFIG=str(tmp_path / "no-such.conf"))
    done = subprocess.run([sys.executable, "-c", WEB_PROCESS, str(tmp_path),
                           json.dumps([str(d) for d in PLUGIN_DIRS])],
                          cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    # The check sees the web side at all: its pages, the protocol, both plugins.
    assert {"vatools.control.pages.backups", "vatools.control.protocol",
            "vatools.control.client", "moinmoin_appliance_control"} <= loaded
    assert loaded.isdisjoint(ROOT_SIDE), sorted(loaded & set(ROOT_SIDE))


def _module_file(name: str) -> Path | None:
    base = REPO / name.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """Every module an import statement of the file names, in function bodies too, and the
    packages around it (importing a.b.c runs a and a.b first)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {name for name in found if _module_file(name) is not None}


def test_no_import_of_the_web_side_leads_to_the_root_side() -> None:
    """Statically, lazy imports in functions included: from the app, its pages, the gunicorn
    settings and the shipped plugins, no chain of vatools imports reaches ops or helper."""
    starts: dict[str, Path] = {"vatools.control.app": REPO / "vatools/control/app.py",
                               "vatools.control.gunicorn_conf":
                                   REPO / "vatools/control/gunicorn_conf.py"}
    for page in (REPO / "vatools/control/pages").glob("*.py"):
        starts[f"vatools.control.pages.{page.stem}"] = page
    for plugin in PLUGIN_DIRS:
        for init in plugin.glob("*/__init__.py"):
            starts[init.parent.name] = init
    via: dict[str, str] = {name: "" for name in starts}
    todo = list(starts.items())
    while todo:
        name, path = todo.pop()
        for imported in sorted(_imports(path) - set(via)):
            via[imported] = name
            found = _module_file(imported)
            assert found is not None
            todo.append((imported, found))
    assert "vatools.control.protocol" in via and "vatools.control.settings" in via
    for root_side in ROOT_SIDE:
        chain = [root_side]
        while via.get(chain[-1]):
            chain.append(via[chain[-1]])
        assert root_side not in via, " imported by ".join(chain)


# -- the encoding ----------------------------------------------------------------------------------
def _through(line: bytes) -> HelperError:
    with pytest.raises(HelperError) as caught:
        decode_reply(line)
    return caught.value


def test_requests_round_trip_and_are_validated() -> None:
    assert decode_request(encode_request("backup-verify", {"name": "a.abf"})) == (
        "backup-verify", {"name": "a.abf"})
    assert decode_request(encode_request("ping")) == ("ping", {})
    with pytest.raises(BadRequest, match="the request must be a JSON object"):
        decode_request(b'["ping"]\n')
    with pytest.raises(BadRequest, match="request too long"):
        decode_request(b" " * (64 * 1024 + 1))


def test_progress_and_results_round_trip() -> None:
    assert decode_reply(encode_progress(12.345, "reading")) == Progress(12.3, "reading")
    assert decode_reply(encode_result({"name": "a.abf"})) == Result({"name": "a.abf"})
    assert decode_reply(encode_result(None)) == Result(None)


def test_errors_keep_message_hint_and_output() -> None:
    error = _through(encode_error(VatoolsError("no backup x.abf", hint="upload it first")))
    assert (error.message, error.hint, error.output) == ("no backup x.abf", "upload it first", "")
    assert error.describe() == "no backup x.abf\nhint: upload it first"

    error = _through(encode_error(VatoolsError("plain")))
    assert (error.message, error.hint, error.describe()) == ("plain", None, "plain")

    failed = CommandFailed(["apt-get", "update"], 100, "E: no network\n", hint="check the DNS")
    error = _through(encode_error(failed))
    assert (error.message, error.hint) == ("apt-get exited with status 100:", "check the DNS")
    assert error.output == "E: no network\n"
    assert error.describe() == ("apt-get exited with status 100:\nhint: check the DNS\n"
                                "E: no network\n")

    error = _through(encode_error(KeyError("x")))
    assert error.message == "internal error: KeyError: 'x'"
    assert error.hint is not None and "journalctl -u appliance-control-helper" in error.hint


def test_a_garbled_answer_is_an_error_not_a_crash() -> None:
    assert _through(b"<html>\n").message.startswith("the root helper answered something else")
    assert _through(b"[1]\n").message == "the root helper answered a JSON list, not an object"
