"""The root helper on a real Unix socket: it serves only the web user's uid (SO_PEERCRED),
only allow-listed operations with valid arguments, and reports errors with their hint and
output, which reach the client's exception and the web page.

Clients are forked children that drop to real other uids with os.setgid/os.setuid (the test
runs as root, as the helper does in production).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from vatools.control import auth
from vatools.control.app import create_app
from vatools.control.client import HelperClient, HelperError
from vatools.control.config import Config
from vatools.control.helper import listening_socket, serve
from vatools.control.ops import Operations

WEB_UID, WEB_GID = 65534, 65534  # nobody:nogroup stands in for the appliance-control user
FOREIGN_UID = 65533


@pytest.fixture
def helper() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("the helper's tests need root (they switch to other uids)", pytrace=False)
    directory = Path(tempfile.mkdtemp(prefix="vatools-helper-"))
    directory.chmod(0o755)
    # The web process's state directory, owned by its user; the helper serves its backups.
    state = directory / "state"
    (state / "backups").mkdir(parents=True)
    for made in (state, state / "backups"):
        os.chown(made, WEB_UID, WEB_GID)
    path = directory / "helper.sock"
    sock = listening_socket(path, "nogroup")
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(sock, WEB_UID,
                                                  Operations(state / "backups", "nobody",
                                                             directory / "helper-state"), stop),
                              daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join()
        sock.close()
        shutil.rmtree(directory)


def as_uid(uid: int, gid: int, work: Any) -> Any:
    """Run work() in a forked child with this uid and gid; return what it returned (JSON)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges for real, then report over the pipe
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            result = {"value": work()}
        except HelperError as e:
            result = {"error": e.message, "hint": e.hint, "output": e.output}
        except BaseException as e:  # noqa: BLE001
            result = {"crash": repr(e)}
        os.write(write_fd, json.dumps(result).encode())
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def raw_request(path: Path, line: bytes) -> list[dict[str, Any]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(path))
        sock.sendall(line)
        with sock.makefile("rb") as answers:
            return [json.loads(answer) for answer in answers]


def test_the_web_uid_may_use_an_allowed_operation(helper: Path) -> None:
    assert as_uid(WEB_UID, WEB_GID, lambda: HelperClient(helper).call("ping")) == {"value": "pong"}


def test_a_foreign_uid_is_refused(helper: Path) -> None:
    # Same group as the socket, so the connect itself succeeds: SO_PEERCRED does the refusing.
    answer = as_uid(FOREIGN_UID, WEB_GID, lambda: HelperClient(helper).call("ping"))
    assert answer == {"error": f"uid {FOREIGN_UID} may not use this helper",
                      "hint": f"only the web interface's user (uid {WEB_UID}) may", "output": ""}
    answer = as_uid(0, 0, lambda: HelperClient(helper).call("ping"))
    assert answer["error"] == "uid 0 may not use this helper"


@pytest.mark.parametrize("request_line, message", [
    (b'{"op": "sh", "args": {"c": "id"}}\n', "unknown operation 'sh'"),
    (b'{"op": "backup-verify", "args": {"name": "../../etc/shadow"}}\n',
     "backup-verify: name '../../etc/shadow' is not valid: a backup file name"),
    (b'{"op": "backup-verify", "args": {}}\n', "backup-verify: name None is not valid"),
    (b'{"op": "apt-update", "args": {"options": "-o APT::Update::Pre-Invoke::=id"}}\n',
     "apt-update: unexpected argument options"),
    (b'{"op": "set-relayhost", "args": {"relayhost": "x; rm -rf /"}}\n',
     "set-relayhost: relayhost 'x; rm -rf /' is not valid"),
    (b'not json\n', "the request is not one JSON line"),
])
def test_unknown_operations_and_bad_arguments_are_refused(helper: Path, request_line: bytes,
                                                          message: str) -> None:
    answers = as_uid(WEB_UID, WEB_GID, lambda: raw_request(helper, request_line))["value"]
    assert len(answers) == 1 and answers[0]["ok"] is False
    assert answers[0]["error"].startswith(message), answers


def test_a_failing_operation_reports_its_error(helper: Path) -> None:
    answer = as_uid(WEB_UID, WEB_GID,
                    lambda: HelperClient(helper).call("backup-verify", {"name": "none.abf"}))
    assert answer["error"].startswith("no backup named none.abf in ")


def _damaged_backup(helper: Path) -> str:
    """A file in the backups directory that is no backup (as an upload cut short would be)."""
    damaged = helper.parent / "state" / "backups" / "damaged.abf"
    damaged.write_bytes(b"no zip archive")
    os.chown(damaged, WEB_UID, WEB_GID)
    return damaged.name


def test_a_failing_operation_reports_its_hint(helper: Path) -> None:
    answer = as_uid(WEB_UID, WEB_GID,
                    lambda: HelperClient(helper).call("backup-verify", {"name": "none.abf"}))
    assert answer["hint"] == "reload the backups page: it lists the backups there"
    name = _damaged_backup(helper)
    answer = as_uid(WEB_UID, WEB_GID,
                    lambda: HelperClient(helper).call("backup-verify", {"name": name}))
    assert answer["error"].endswith(" is not a readable zip file (File is not a zip file)")
    assert answer["hint"] == "the file is truncated or damaged; use another copy"


def _backups_page_after_verifying(state: Path, socket_path: Path, name: str) -> str:
    """As the web process: log in, verify `name` from the backups page, wait for the job to
    end, and return the backups page that shows its outcome."""
    password = "a-long-admin-password"
    config = Config(state_dir=state, socket=socket_path)
    auth.write_hash(config.password_file, auth.hash_password(password, n=2**10))
    app = create_app(config, ([], []))
    web = app.test_client()

    def csrf(url: str) -> str:
        html = web.get(url).get_data(as_text=True)
        return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]

    assert web.post("/login", data={"password": password,
                                    "csrf_token": csrf("/login")}).status_code == 302
    assert web.post(f"/backups/{name}/verify",
                    data={"csrf_token": csrf("/backups")}).status_code == 302
    jobs = app.extensions["control.jobs"]
    deadline = time.monotonic() + 120  # a bound on waiting, not an assertion on time
    while (job := jobs.latest("backups")) is not None and job.state == "running":
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return str(web.get("/backups").get_data(as_text=True))


def test_the_hint_of_a_failed_job_reaches_the_web_page(helper: Path) -> None:
    name = _damaged_backup(helper)
    page = as_uid(WEB_UID, WEB_GID, lambda: _backups_page_after_verifying(
        helper.parent / "state", helper, name))["value"]
    assert f"Verifying {name}" in page
    assert "Failed: " in page and " is not a readable zip file (File is not a zip file)" in page
    assert ('<p id="job-hint">hint: the file is truncated or damaged; use another copy</p>'
            in page)


# -- the web user attacks the root side (issue #17) -----------------------------------------------
# Each test below plays an attack of the web user (nobody, in a forked child) on the helper and
# checks that root followed none of the web user's paths.
BACKUP_NAME = "wiki_1_20260101T000000Z.abf"


def _root_only_file(directory: Path) -> Path:
    victim = directory / "victim"
    victim.write_text("root's secret\n")
    victim.chmod(0o600)
    return victim


def _as_web_user(work: Any) -> None:
    answer = as_uid(WEB_UID, WEB_GID, work)
    assert "crash" not in answer, answer


class _Appliance:
    """Stands in for the installed appliance (none is installed on a test host)."""

    appliance = "wiki"

    def manifest(self) -> "_Appliance":
        return self


@pytest.fixture
def fake_backup(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """backup-create with the backup module's writer replaced by one that writes NAME.partial
    and renames it, as create_backup does, and lets the test attack in between (attacks[0])."""
    from vatools import appliance
    from vatools.backup import create, manifest

    attacks: list[Any] = []

    def create_backup(target: Any, output: Path, progress: Any = None) -> Any:
        partial = output.with_name(output.name + ".partial")
        with open(partial, "xb") as handle:
            handle.write(b"the backup")
            for attack in attacks:
                attack()
        os.rename(partial, output)
        return create.Created(output, None)  # type: ignore[arg-type]

    monkeypatch.setattr(create, "create_backup", create_backup)
    monkeypatch.setattr(create, "default_output", lambda m, now: Path(BACKUP_NAME))
    monkeypatch.setattr(appliance, "installed", lambda target: _Appliance())
    monkeypatch.setattr(manifest.BackupManifest, "of", staticmethod(lambda declared: declared))
    return attacks


def test_backup_create_follows_no_symlink_planted_for_its_partial_file(
        helper: Path, fake_backup: list[Any]) -> None:
    backups = helper.parent / "state" / "backups"
    victim = _root_only_file(helper.parent)

    def plant() -> None:  # while root writes: NAME.partial becomes a link to a root-only file
        partial = backups / (BACKUP_NAME + ".partial")
        if os.path.lexists(partial):
            partial.unlink()
        partial.symlink_to(victim)

    fake_backup.append(lambda: _as_web_user(plant))
    answer = as_uid(WEB_UID, WEB_GID, lambda: HelperClient(helper).call("backup-create"))
    assert answer == {"value": {"name": BACKUP_NAME}}
    status = victim.lstat()
    assert (status.st_uid, status.st_gid, status.st_mode & 0o777) == (0, 0, 0o600)
    assert victim.read_text() == "root's secret\n"
    made = (backups / BACKUP_NAME).lstat()
    assert stat.S_ISREG(made.st_mode) and made.st_uid == WEB_UID and made.st_mode & 0o777 == 0o640
    assert (backups / BACKUP_NAME).read_bytes() == b"the backup"


def _backups_dir_is_a_link_to(helper: Path, directory: Path) -> None:
    state = helper.parent / "state"

    def swap() -> None:
        (state / "backups").rename(state / "moved")
        (state / "backups").symlink_to(directory)
    _as_web_user(swap)


def test_backup_create_refuses_a_backups_directory_replaced_by_a_symlink(
        helper: Path, fake_backup: list[Any]) -> None:
    root_only = helper.parent / "root-only"
    root_only.mkdir(mode=0o700)
    _backups_dir_is_a_link_to(helper, root_only)
    answer = as_uid(WEB_UID, WEB_GID, lambda: HelperClient(helper).call("backup-create"))
    assert "symlink" in answer["error"], answer
    assert list(root_only.iterdir()) == []


def test_backup_verify_reads_no_backup_through_a_symlinked_backups_directory(
        helper: Path) -> None:
    root_only = helper.parent / "root-only"
    root_only.mkdir(mode=0o700)
    (root_only / "secret.abf").write_bytes(b"root's backup")
    _backups_dir_is_a_link_to(helper, root_only)
    answer = as_uid(WEB_UID, WEB_GID,
                    lambda: HelperClient(helper).call("backup-verify", {"name": "secret.abf"}))
    assert "symlink" in answer["error"], answer
    assert "zip" not in answer["error"]  # it never opened the file


def test_a_planted_fifo_is_refused_without_blocking(helper: Path) -> None:
    fifo = helper.parent / "state" / "backups" / "fifo.abf"
    _as_web_user(lambda: os.mkfifo(fifo))
    for op in ("backup-verify", "backup-restore"):
        answer = as_uid(WEB_UID, WEB_GID,
                        lambda: HelperClient(helper).call(op, {"name": "fifo.abf"}))
        assert "not a regular file" in answer["error"], answer


def _ask(path: Path, line: bytes, wait: float = 60) -> list[dict[str, Any]]:
    """raw_request with a bound on waiting: a helper that never answers fails the test."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(wait)
        sock.connect(str(path))
        sock.sendall(line)
        with sock.makefile("rb") as answers:
            return [json.loads(answer) for answer in answers]


def test_a_silent_client_is_dropped_and_does_not_block_others(
        helper: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vatools.control import helper as helper_module

    monkeypatch.setattr(helper_module, "REQUEST_TIMEOUT", 0.5, raising=False)
    answer = as_uid(WEB_UID, WEB_GID, lambda: _ask(helper, b""))["value"]
    assert answer[-1]["ok"] is False and "no request" in answer[-1]["error"], answer
    assert as_uid(WEB_UID, WEB_GID, lambda: HelperClient(helper).call("ping")) == {"value": "pong"}


def test_read_only_operations_do_not_wait_for_the_exclusive_lock(helper: Path) -> None:
    from vatools.control import helper as helper_module
    from vatools.control.protocol import OPERATIONS

    assert not OPERATIONS["backup-verify"].exclusive
    assert not OPERATIONS["appliance-stats"].exclusive
    with helper_module._exclusive:  # as if a restore were running
        answer = as_uid(WEB_UID, WEB_GID, lambda: _ask(
            helper, b'{"op": "backup-verify", "args": {"name": "none.abf"}}\n', wait=20))
    assert answer["value"][-1]["error"].startswith("no backup named none.abf"), answer


def test_the_client_gives_up_on_a_helper_that_never_answers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from vatools.control import client as client_module

    monkeypatch.setattr(client_module, "IDLE_TIMEOUT", 0.5, raising=False)
    directory = Path(tempfile.mkdtemp(prefix="vatools-client-"))
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(str(directory / "mute.sock"))
    mute.listen(1)  # accepts (in the kernel) and never answers
    outcome: list[Any] = []

    def call() -> None:
        try:
            outcome.append(HelperClient(directory / "mute.sock").call("ping"))
        except HelperError as e:
            outcome.append(e)
    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(60)
    mute.close()
    shutil.rmtree(directory)
    assert outcome and isinstance(outcome[0], HelperError), "the client still waits"
    assert "did not answer" in outcome[0].message


def test_heartbeats_keep_a_client_waiting_for_the_lock_from_giving_up(
        helper: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vatools.control import client as client_module
    from vatools.control import helper as helper_module

    monkeypatch.setattr(helper_module, "HEARTBEAT", 0.1)
    monkeypatch.setattr(client_module, "IDLE_TIMEOUT", 0.5)
    helper_module._exclusive.acquire()  # a long operation runs: backup-delete must wait
    releaser = threading.Timer(2.0, helper_module._exclusive.release)
    releaser.start()
    try:
        answer = as_uid(WEB_UID, WEB_GID, lambda: HelperClient(helper).call(
            "backup-delete", {"name": "none.abf"}))
    finally:
        releaser.join()
    assert answer["error"].startswith("no backup named none.abf"), answer


def test_a_client_sending_a_byte_now_and_then_is_dropped_too(
        helper: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vatools.control import helper as helper_module

    monkeypatch.setattr(helper_module, "REQUEST_TIMEOUT", 1.0)

    def trickle() -> dict[str, Any]:
        """Sends a byte every 0.1 s (never the newline) until the helper hangs up."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(60)
            sock.connect(str(helper))
            sent = 0
            try:
                for byte in b'{"op": "ping", "args": {}}' + b" " * 300:
                    sock.sendall(bytes([byte]))
                    sent += 1
                    time.sleep(0.1)
            except OSError:
                pass  # the helper hung up
            with sock.makefile("rb") as answers:
                return {"sent": sent, "answers": [json.loads(answer) for answer in answers]}
    result = as_uid(WEB_UID, WEB_GID, trickle)
    assert "value" in result, result
    answer = result["value"]
    assert answer["sent"] < 326, "the helper kept reading a request that never ends"
    assert "no request" in answer["answers"][-1]["error"], answer
