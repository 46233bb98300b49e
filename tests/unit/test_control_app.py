"""appliance-control's web app: every route refuses anonymous requests, every POST without a
valid CSRF token is refused, login is rate-limited, a broken plugin shows on the dashboard.

The app runs with Flask's test client against a real config in a temporary state directory;
the helper is not started (the pages that would call it are not requested here).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Blueprint

from vatools.control import auth
from vatools.control.app import create_app
from vatools.control.config import Config
from vatools.control.plugins import Broken, MenuEntry, Plugin, Widget

PASSWORD = "a-long-admin-password"


def _plugin() -> Plugin:
    bp = Blueprint("demo", __name__)

    @bp.route("/stats")
    def stats() -> str:
        return "demo stats"

    @bp.route("/act", methods=["POST"])
    def act() -> str:
        return "acted"

    return Plugin("demo", "Demo wiki", (MenuEntry("Demo", "demo.stats"),), bp,
                  lambda: [Widget("Pages", "42")])


@pytest.fixture
def app(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = Config(state_dir=tmp_path, socket=tmp_path / "none.sock")
    (tmp_path / "backups").mkdir()
    auth.write_hash(config.password_file, auth.hash_password(PASSWORD, n=2**10))
    app = create_app(config, ([_plugin()], [Broken("kaputt", "ImportError: no module x")]))
    app.config["TESTING"] = True
    return app


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match[1]


def _login(client) -> str:  # type: ignore[no-untyped-def]
    token = _csrf(client.get("/login").get_data(as_text=True))
    answer = client.post("/login", data={"password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return _csrf(client.get("/").get_data(as_text=True))


def _urls(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Every rule of the URL map with a sample URL and each of its methods."""
    found = []
    for rule in app.url_map.iter_rules():
        url = re.sub(r"<(?:int:)?([a-z_]+)>",
                     lambda m: "1" if m[0].startswith("<int:") else "x.abf", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, url, rule.endpoint))
    return found


def test_every_route_refuses_anonymous_requests(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    routes = _urls(app)
    assert len(routes) > 15 and any(e == "demo.stats" for _, _, e in routes)
    for method, url, endpoint in routes:
        answer = client.open(url, method=method)
        if endpoint == "account.login":
            # the one public page: its form, and a POST without a token is refused
            assert answer.status_code == (200 if method == "GET" else 400), (method, url)
            continue
        if method == "GET":
            assert answer.status_code == 302 and "/login" in answer.headers["Location"], \
                (method, url, answer.status_code)
        else:
            assert answer.status_code == 401, (method, url, answer.status_code)


def test_every_post_needs_the_csrf_token(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    token = _login(client)
    posts = [(m, u, e) for m, u, e in _urls(app) if m != "GET"]
    assert len(posts) >= 10
    for method, url, _ in posts:
        for bad in ({}, {"csrf_token": "forged"}, {"csrf_token": token + "x"}):
            answer = client.open(url, method=method, data=bad)
            assert answer.status_code == 400, (method, url, bad, answer.status_code)
            assert "security token" in answer.get_data(as_text=True)
    # the real token passes the guard (a plugin's POST route answers)
    assert client.post("/plugins/demo/act", data={"csrf_token": token}).status_code == 200


def test_cookies_login_logout_and_password_change(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    token = _csrf(client.get("/login").get_data(as_text=True))
    answer = client.post("/login", data={"password": PASSWORD, "csrf_token": token})
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = client.get("/").get_data(as_text=True)
    assert "Dashboard" in page and "Demo wiki" in page and "42" in page
    assert "Plugin kaputt is broken" in page and "ImportError: no module x" in page
    assert "Host name" in page and "Kernel" in page
    token = _csrf(page)

    other = app.test_client()
    _login(other)
    answer = client.post("/password", data={"csrf_token": token, "current": PASSWORD,
                                             "new": "short", "again": "short"})
    assert answer.status_code == 400 and "at least 10" in answer.get_data(as_text=True)
    answer = client.post("/password", data={"csrf_token": token, "current": PASSWORD,
                                             "new": "another-long-one", "again": "another-long-one"})
    assert answer.status_code == 302
    assert client.get("/").status_code == 200  # this session stays
    assert other.get("/").status_code == 302  # the other one ended
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_failed_logins_are_rate_limited(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    token = _csrf(client.get("/login").get_data(as_text=True))
    for _ in range(5):
        answer = client.post("/login", data={"password": "guess", "csrf_token": token})
        assert answer.status_code == 403 and "Wrong password" in answer.get_data(as_text=True)
    answer = client.post("/login", data={"password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 429
    assert re.search(r"Too many failed logins from \S+\. Try again in \d+ seconds",
                     answer.get_data(as_text=True))
