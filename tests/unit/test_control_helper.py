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
                                                  Operations(state / "backups", "nobody"), stop),
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
