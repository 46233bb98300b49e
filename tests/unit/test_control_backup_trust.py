"""Through the real helper socket, as the web user: a backup this system did not make is
restored only with trust_foreign=yes, and refused without it by a message naming the risk
(issue #17, item 2). The helper restores onto a tree, not this machine."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_backup_helpers import build_abf, make_target, snapshot
from test_control_helper import WEB_GID, WEB_UID, as_uid

from vatools.backup.create import create_backup
from vatools.control.client import HelperClient
from vatools.control.helper import listening_socket, serve
from vatools.control.ops import Operations
from vatools.control.pages.backups import refused_as_foreign
from vatools.run import Target


@pytest.fixture
def helper_and_tree() -> Iterator[tuple[Path, Path, Path]]:
    """The helper's socket, the web user's backups directory, and the tree it restores onto."""
    if os.geteuid() != 0:
        pytest.fail("the helper's tests need root (they switch to other uids)", pytrace=False)
    directory = Path(tempfile.mkdtemp(prefix="vatools-trust-"))
    directory.chmod(0o755)
    backups = directory / "state" / "backups"
    backups.mkdir(parents=True)
    for made in (backups.parent, backups):
        os.chown(made, WEB_UID, WEB_GID)
    tree = make_target(directory / "tree")
    path = directory / "helper.sock"
    sock = listening_socket(path, "nogroup")
    stop = threading.Event()
    operations = Operations(backups, "nobody", directory / "helper-state", target=Target(tree))
    thread = threading.Thread(target=serve, args=(sock, WEB_UID, operations, stop), daemon=True)
    thread.start()
    try:
        yield path, backups, tree
    finally:
        stop.set()
        thread.join()
        sock.close()
        shutil.rmtree(directory)


def uploaded(backups: Path, source: Path) -> str:
    """`source` as if the web user had uploaded it."""
    shutil.copy(source, backups / source.name)
    os.chown(backups / source.name, WEB_UID, WEB_GID)
    return source.name


def restore(helper: Path, args: dict[str, str]) -> dict:
    return as_uid(WEB_UID, WEB_GID, lambda: HelperClient(helper).call("backup-restore", args))


def test_a_foreign_backup_is_refused_naming_the_risk_then_restored_when_trusted(
        helper_and_tree, tmp_path: Path) -> None:
    helper, backups, tree = helper_and_tree
    name = uploaded(backups, build_abf(tmp_path / "uploaded.abf"))  # made elsewhere
    whole = snapshot(tree)
    for args in ({"name": name}, {"name": name, "trust_foreign": "no"}):
        answer = restore(helper, args)
        assert "is a foreign backup" in answer["error"], answer
        assert "run with the rights of the appliance's services" in answer["error"]
        assert "of root" in answer["error"]
        assert snapshot(tree) == whole
    answer = restore(helper, {"name": name, "trust_foreign": "yes"})
    assert "authenticated: no, foreign" in answer["value"], answer
    assert (tree / "var/lib/wiki/data/pages/start.txt").read_text() == "restored page\n"


def test_a_backup_the_system_made_is_restored_without_the_flag(helper_and_tree,
                                                                 tmp_path: Path) -> None:
    helper, backups, tree = helper_and_tree
    made = create_backup(Target(tree), tmp_path / "own.abf").path
    (tree / "etc/wiki/local.php").write_text("vandalised\n")
    name = uploaded(backups, made)
    verified = as_uid(WEB_UID, WEB_GID,
                      lambda: HelperClient(helper).call("backup-verify", {"name": name}))
    assert "all checksums match; authenticated: yes" in verified["value"], verified
    answer = restore(helper, {"name": name})
    assert "authenticated: yes" in answer["value"], answer
    assert "Before" in (tree / "etc/wiki/local.php").read_text()


def test_a_bad_flag_is_a_bad_request(helper_and_tree) -> None:
    helper, _, _ = helper_and_tree
    answer = restore(helper, {"name": "x.abf", "trust_foreign": "maybe"})
    assert "trust_foreign 'maybe' is not valid" in answer["error"], answer


def test_the_backups_page_offers_the_second_box_only_after_that_refusal() -> None:
    job = {"op": "backup-restore", "state": "failed", "title": "Restoring up.abf",
           "error": "/x/up.abf is a foreign backup (...); restoring it ..."}
    assert refused_as_foreign(job) == "up.abf"
    assert refused_as_foreign({**job, "error": "checksum mismatch"}) == ""
    assert refused_as_foreign({**job, "op": "backup-verify"}) == ""
    assert refused_as_foreign(None) == ""


def test_the_backups_page_asks_the_second_confirmation_and_passes_it_on(tmp_path: Path) -> None:
    """The page's side (the helper is replaced by a recorder of the jobs started)."""
    from test_control_app import PASSWORD, _csrf, _login

    from vatools.control import auth
    from vatools.control.app import create_app
    from vatools.control.config import Config
    from vatools.control.jobs import Job

    config = Config(state_dir=tmp_path, socket=tmp_path / "none.sock")
    (tmp_path / "backups").mkdir()
    (tmp_path / "backups" / "up.abf").write_bytes(b"uploaded")
    auth.write_hash(config.password_file, auth.hash_password(PASSWORD, n=2**10))
    app = create_app(config, ([], []))
    app.config["TESTING"] = True
    jobs = app.extensions["control.jobs"]
    started: list[tuple[str, dict[str, str] | None]] = []
    latest: list[Job] = []
    jobs.start = lambda kind, op, title, args=None: started.append((op, args))
    jobs.latest = lambda kind: latest[-1] if latest else None
    client = app.test_client()
    token = _login(client)

    page = client.get("/backups").get_data(as_text=True)
    assert 'class="foreign"' not in page  # no second box before a refusal
    client.post("/backups/up.abf/restore", data={"csrf_token": token, "confirm": "yes"})
    assert started[-1] == ("backup-restore", {"name": "up.abf", "trust_foreign": "no"})

    latest.append(Job("1", "backups", "backup-restore", "Restoring up.abf", state="failed",
                      error="/b/up.abf is a foreign backup (no code); restoring it puts ..."))
    page = client.get("/backups").get_data(as_text=True)
    assert 'class="foreign"' in page and "runs as root" in page
    token = _csrf(page)
    client.post("/backups/up.abf/restore", data={"csrf_token": token, "confirm": "yes",
                                                 "foreign": "yes"})
    assert started[-1] == ("backup-restore", {"name": "up.abf", "trust_foreign": "yes"})
