"""appliance-control's web side under attack (issue #17): each test reproduces an attack that
worked before the fix. The app runs with Flask's test client against a real config in a
temporary state directory; concurrency with real threads and processes.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import re
import threading
from pathlib import Path
from typing import Any

import flask
import pytest
from flask import Blueprint

from vatools.control import auth
from vatools.control.app import create_app
from vatools.control.config import Config
from vatools.control.plugins import MenuEntry, Plugin, Widget, load_plugins
from vatools.control.sessions import signing_key
from vatools.errors import VatoolsError

PASSWORD = "a-long-admin-password"
COOKIE = "appliance_control"


def _make_app(tmp_path: Path, plugins: list[Plugin] | None = None, n: int = 2**10,
              **settings: Any) -> flask.Flask:
    config = Config(state_dir=tmp_path, socket=tmp_path / "none.sock", **settings)
    (tmp_path / "backups").mkdir(parents=True, exist_ok=True)
    auth.write_hash(config.password_file, auth.hash_password(PASSWORD, n=n))
    app = create_app(config, (plugins or [], []))
    app.config["TESTING"] = True
    return app


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Today's scrypt costs 128 MiB and ~0.5 s a hash: the tests but one hash cheaply."""
    monkeypatch.setattr(auth, "SCRYPT_N", 2**10)


@pytest.fixture
def app(tmp_path: Path) -> flask.Flask:
    return _make_app(tmp_path)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match[1]


def _login(client: Any, **kwargs: Any) -> str:
    token = _csrf(client.get("/login", **kwargs).get_data(as_text=True))
    answer = client.post("/login", data={"password": PASSWORD, "csrf_token": token}, **kwargs)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return _csrf(client.get("/", **kwargs).get_data(as_text=True))


def _session_cookie(answer: Any) -> str:
    for header in answer.headers.getlist("Set-Cookie"):
        if header.startswith(COOKIE + "="):
            return str(header.split(";")[0])
    raise AssertionError(answer.headers)


class CountingInput(io.BytesIO):
    """A request body that counts the bytes the server reads of it."""

    read_bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.read_bytes += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data = super().readline(size)
        self.read_bytes += len(data)
        return data


# 4: anonymous requests cost nothing

def test_anonymous_large_post_is_refused_unread_and_unspooled(
        app: flask.Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    spooled: list[Any] = []
    original = flask.Request._get_file_stream

    def spool(self: Any, *args: Any, **kwargs: Any) -> Any:
        spooled.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(flask.Request, "_get_file_stream", spool)
    client = app.test_client()
    token = _csrf(client.get("/login").get_data(as_text=True))
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"
            f"{token}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() \
        + b"x" * (10 * 1024**2) + f"\r\n--{boundary}--\r\n".encode()
    stream = CountingInput(body)
    answer = client.post("/login", input_stream=stream, content_length=len(body),
                         content_type=f"multipart/form-data; boundary={boundary}")
    assert answer.status_code == 413
    assert stream.read_bytes == 0 and spooled == []

    # a streamed body of unknown length is not read either
    stream = CountingInput(body)
    answer = client.post("/login", input_stream=stream,
                         content_type=f"multipart/form-data; boundary={boundary}",
                         headers={"Transfer-Encoding": "chunked"},
                         environ_overrides={"wsgi.input_terminated": True})
    assert answer.status_code == 411
    assert stream.read_bytes == 0 and spooled == []


def test_only_the_logged_in_backup_upload_takes_a_large_body(app: flask.Flask) -> None:
    anonymous = app.test_client()
    big = b"x" * (1024**2)
    upload: dict[str, Any] = {"backup": (io.BytesIO(big), "appliance-20261129-000000.abf")}
    assert anonymous.post("/backups/upload", data=upload).status_code == 413
    client = app.test_client()
    token = _login(client)
    assert client.post("/settings/relayhost", data={"csrf_token": token,
                                                    "relayhost": "x" * len(big)}).status_code == 413
    upload = {"csrf_token": token, "backup": (io.BytesIO(big), "appliance-20261129-000000.abf")}
    answer = client.post("/backups/upload", data=upload)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert (app.extensions["control.config"].backups_dir
            / "appliance-20261129-000000.abf").read_bytes() == big


# 5: sessions end

def test_a_cookie_copied_before_logout_or_password_change_is_dead(app: flask.Flask) -> None:
    client = app.test_client()
    token = _csrf(client.get("/login").get_data(as_text=True))
    copied = _session_cookie(client.post("/login", data={"password": PASSWORD,
                                                         "csrf_token": token}))
    thief = app.test_client(use_cookies=False)
    assert thief.get("/", headers={"Cookie": copied}).status_code == 200
    token = _csrf(client.get("/").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert thief.get("/", headers={"Cookie": copied}).status_code == 302

    token = _login(client)
    copied = _session_cookie(client.get("/"))
    assert thief.get("/", headers={"Cookie": copied}).status_code == 200
    answer = client.post("/password", data={"csrf_token": token, "current": PASSWORD,
                                             "new": "another-long-one",
                                             "again": "another-long-one"})
    assert answer.status_code == 302
    assert client.get("/").status_code == 200  # the changing browser goes on
    assert thief.get("/", headers={"Cookie": copied}).status_code == 302


def test_sessions_end_when_idle_and_when_old(app: flask.Flask) -> None:
    now = [1_000_000.0]
    app.extensions["control.sessions"].clock = lambda: now[0]
    client = app.test_client()
    _login(client)
    now[0] += 29 * 60
    assert client.get("/").status_code == 200
    now[0] += 30 * 60  # 30 minutes without a request
    assert client.get("/").status_code == 302

    _login(client)
    for _ in range(12 * 3 - 1):  # busy: a request every 20 minutes, for 11 h 40 min
        now[0] += 20 * 60
        assert client.get("/").status_code == 200
    now[0] += 20 * 60  # 12 hours after login
    assert client.get("/").status_code == 302


def test_session_key_an_empty_file_is_refused(tmp_path: Path) -> None:
    # what a second worker read while the first had created, not yet written, the file
    (tmp_path / "session-key").write_bytes(b"")
    with pytest.raises(VatoolsError, match="holds 0 bytes"):
        signing_key(tmp_path / "session-key")


def _key_when_released(path: Path, gate: Any, keys: Any) -> None:
    gate.wait()
    keys.put(signing_key(path).hex())


def test_worker_processes_starting_together_share_one_session_key(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for round_ in range(5):
        path = tmp_path / f"key-{round_}"
        gate, keys = context.Barrier(6), context.Queue()
        workers = [context.Process(target=_key_when_released, args=(path, gate, keys))
                   for _ in range(6)]
        for worker in workers:
            worker.start()
        found = {keys.get(timeout=60) for _ in workers}
        for worker in workers:
            worker.join()
        assert found == {path.read_bytes().hex()} and len(path.read_bytes()) == 32
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# 6: the login rate limit holds

def test_concurrent_guesses_do_not_pass_the_limit(tmp_path: Path) -> None:
    app = _make_app(tmp_path, n=2**14)  # a verification slow enough for guesses to overlap
    token = _csrf(app.test_client().get("/login").get_data(as_text=True))
    gate = threading.Barrier(16)
    answers: list[int] = []

    def guess() -> None:
        client = app.test_client()
        client.get("/login")
        with client.session_transaction() as cookie:
            cookie["csrf"] = token
        gate.wait()
        answers.append(client.post("/login", data={"password": "guess",
                                                   "csrf_token": token}).status_code)

    threads = [threading.Thread(target=guess) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [403] * 5 + [429] * 11


def _guess(client: Any, token: str, address: str, forwarded: str = "") -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return int(client.post("/login", data={"password": "guess", "csrf_token": token},
                           headers=headers, environ_base={"REMOTE_ADDR": address}).status_code)


def test_forwarded_addresses_count_only_from_the_trusted_proxy(tmp_path: Path) -> None:
    app = _make_app(tmp_path, behind_proxy=True, trusted_proxies=("127.0.0.1",))
    client = app.test_client()
    token = _csrf(client.get("/login").get_data(as_text=True))
    # a client that names another address on every guess is still one client
    answers = [_guess(client, token, "203.0.113.9", f"198.51.100.{i}") for i in range(6)]
    assert answers == [403] * 5 + [429]
    # the proxy's forwarded addresses are the clients
    assert [_guess(client, token, "127.0.0.1", "192.0.2.1") for _ in range(6)] == [403] * 5 + [429]
    assert _guess(client, token, "127.0.0.1", "192.0.2.2") == 403
    # IPv6: one /64 is one client
    answers = [_guess(client, token, f"2001:db8:0:1::{i + 1}") for i in range(6)]
    assert answers == [403] * 5 + [429]
    assert _guess(client, token, "2001:db8:0:2::1") == 403


def test_guesses_from_many_addresses_meet_a_global_cap() -> None:
    limit = auth.RateLimit(attempts=5, window=300, total=20)
    assert [limit.attempt(f"10.0.0.{i}", now=0.0) for i in range(20)] == [0] * 20
    assert limit.attempt("10.0.1.1", now=1.0) == 299
    assert limit.attempt("10.0.1.1", now=300.0) == 0


def test_old_entries_are_pruned(tmp_path: Path) -> None:
    path = tmp_path / "login-failures"
    path.write_text(json.dumps({f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}": [1000.0]
                                for i in range(200_000)}))
    limit = auth.RateLimit(path=path)
    assert limit.attempt("192.0.2.1", now=5000.0) == 0
    assert json.loads(path.read_text()) == {"192.0.2.1": [5000.0]}


def test_the_password_change_is_rate_limited(app: flask.Flask) -> None:
    client = app.test_client()
    token = _login(client)
    for _ in range(5):
        answer = client.post("/password", data={"csrf_token": token, "current": "guess",
                                                 "new": "another-long-one",
                                                 "again": "another-long-one"})
        assert answer.status_code == 403
    answer = client.post("/password", data={"csrf_token": token, "current": PASSWORD,
                                             "new": "another-long-one",
                                             "again": "another-long-one"})
    assert answer.status_code == 429 and "Try again in" in answer.get_data(as_text=True)


# 8: plugins can't bypass auth or take the UI down

def test_the_guard_runs_before_every_plugin_hook(tmp_path: Path) -> None:
    ran: list[str] = []
    bp = Blueprint("hooky", __name__)

    @bp.before_app_request
    def before() -> None:
        ran.append("before_app_request")

    @bp.app_url_value_preprocessor
    def values(endpoint: str | None, values: dict[str, Any] | None) -> None:
        ran.append("app_url_value_preprocessor")

    @bp.url_value_preprocessor
    def own_values(endpoint: str | None, values: dict[str, Any] | None) -> None:
        ran.append("url_value_preprocessor")

    @bp.route("/secret")
    def secret() -> str:
        return "secret"

    app = _make_app(tmp_path, [Plugin("hooky", "Hooky", blueprint=bp)])
    client = app.test_client()
    assert client.get("/plugins/hooky/secret").status_code == 302
    assert client.post("/plugins/hooky/secret").status_code in (401, 405)
    assert ran == []
    _login(client)
    ran.clear()
    assert client.get("/plugins/hooky/secret").get_data(as_text=True) == "secret"
    assert "before_app_request" in ran


def _exit() -> Any:
    raise SystemExit(3)


def test_broken_plugins_do_not_take_the_interface_down(tmp_path: Path) -> None:
    bp = Blueprint("exiting", __name__)
    bp.route("/page")(_exit)
    plugins = [
        Plugin("badmenu", "Bad menu", (MenuEntry("Nowhere", "nowhere.page"),)),
        Plugin("exiting", "Exiting", (MenuEntry("Exit", "exiting._exit"),), bp, _exit),
        Plugin("links", "Links", widgets=lambda: [Widget("Wiki", "open", "javascript:alert(1)")]),
        Plugin("good", "Good", widgets=lambda: [Widget("Wiki", "open", "https://wiki.example/")]),
    ]
    app = _make_app(tmp_path, plugins)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    _login(client)
    for url in ("/", "/password", "/backups"):
        assert client.get(url).status_code == 200, url
    page = client.get("/").get_data(as_text=True)
    assert "Plugin badmenu is broken" in page and "nowhere.page" in page
    assert "Nowhere" not in page
    assert "SystemExit: 3" in page  # the exiting plugin's widgets
    assert 'href="javascript:' not in page
    assert "is not http(s)" in page
    assert 'href="https://wiki.example/"' in page
    assert client.get("/plugins/exiting/page").status_code == 500


def test_a_plugin_exiting_while_loaded_is_reported(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "exiting_plugin.py").write_text("def plugin():\n    raise SystemExit(1)\n")
    info = tmp_path / "exiting_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: exiting-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[vatools.control.plugins.test]\nexiting = exiting_plugin:plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins, broken = load_plugins("vatools.control.plugins.test")
    assert plugins == [] and [(b.name, b.error) for b in broken] == [("exiting", "SystemExit: 1")]


# 9 (web): scrypt's cost, the Host header, no open redirect

def test_scrypt_at_todays_cost_and_old_hashes_renewed_at_login(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # today's cost
    app = _make_app(tmp_path)
    assert auth.hash_password("x").startswith(f"scrypt${2**17}$8$1$")
    password_file = app.extensions["control.config"].password_file
    assert auth.read_hash(password_file).startswith(f"scrypt${2**10}$")  # type: ignore[union-attr]
    _login(app.test_client())
    renewed = auth.read_hash(password_file)
    assert renewed is not None and renewed.startswith(f"scrypt${2**17}$8$1$")
    assert auth.verify_password(PASSWORD, renewed)


def test_the_host_header_is_checked(tmp_path: Path) -> None:
    app = _make_app(tmp_path)
    client = app.test_client()
    assert client.get("/login", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/login", headers={"Host": "192.0.2.1:8080"}).status_code == 200
    assert client.get("/login", headers={"Host": "[2001:db8::1]:8080"}).status_code == 200
    assert client.get("/login").status_code == 200  # localhost

    strict = _make_app(tmp_path / "strict", allowed_hosts=("wiki.example.org",))
    client = strict.test_client()
    assert client.get("/login", headers={"Host": "wiki.example.org:8080"}).status_code == 200
    assert client.get("/login", headers={"Host": "192.0.2.1"}).status_code == 400


def test_the_back_field_redirects_on_this_site_only(app: flask.Flask) -> None:
    client = app.test_client()
    token = _login(client)
    for back in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        answer = client.post("/backups/create", data={"csrf_token": token, "back": back})
        assert answer.status_code == 302
        assert "evil" not in answer.headers["Location"], back
    answer = client.post("/backups/create", data={"csrf_token": token, "back": "/plugins/x"})
    assert answer.headers["Location"].endswith("/plugins/x")
