"""Health checks (vatools.appliance.HealthChecks, vatools.health, `vatools check`, the helper's
health-check operation).

The declaration is read from control fields as dpkg writes them (folded lines); the checks run
against real servers (an http.server on 127.0.0.1 started and stopped here), real programs,
the real dpkg --audit on small trees and the real debconf database format.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_debian import make_tree
from tests.support.net import free_port
from tests.unit.test_control_helper import WEB_GID, WEB_UID, as_uid, helper  # noqa: F401
from vatools import appliance, health
from vatools.appliance import Appliance, ApplianceError, HealthChecks, HttpProbe
from vatools.cli.main import main as vatools_main
from vatools.control import ops
from vatools.control.client import HelperClient
from vatools.target import Target

ORIGIN = "wiki-appliance 1.0"


# --- the declaration ----------------------------------------------------------------------------


def test_every_field_is_read_and_folded_values_mean_the_same() -> None:
    checks = HealthChecks.from_fields({
        "Vatools-Check-Services": "apache2\n postfix\n  cron.service",
        "Vatools-Check-Http": "\n http://127.0.0.1/wiki/ 200  Team   Wiki \n"
                              " http://localhost:8080/login 200\n"
                              " http://[::1]:81/ 302",
        "Vatools-Check-Programs": "/usr/share/vatools/appliances/wiki/check-db\n /usr/bin/true",
        "Vatools-Check-Deadline": " 30 ",
    }, ORIGIN)
    assert checks.services == ("apache2", "postfix", "cron.service")
    assert checks.http == (HttpProbe("http://127.0.0.1/wiki/", 200, "Team   Wiki"),
                           HttpProbe("http://localhost:8080/login", 200),
                           HttpProbe("http://[::1]:81/", 302))
    assert checks.programs == ("/usr/share/vatools/appliances/wiki/check-db", "/usr/bin/true")
    assert checks.deadline == 30


def test_no_field_means_no_checks_of_its_own() -> None:
    wiki = Appliance.from_fields({"Package": "wiki", "Version": "1", "Vatools-Services": "apache2"})
    assert wiki.health == HealthChecks() and wiki.health.deadline == appliance.DEFAULT_CHECK_DEADLINE
    assert HealthChecks.from_fields({"Vatools-Check-Http": "\n \n"}, ORIGIN).http == ()


@pytest.mark.parametrize("fields, message", [
    ({"Vatools-Check-Http": "http://wiki.example.org/ 200"},
     "field Vatools-Check-Http: 'http://wiki.example.org/ 200': host 'wiki.example.org' is not a "
     "loopback address"),
    ({"Vatools-Check-Http": "http://10.0.0.1/ 200"}, "host '10.0.0.1' is not a loopback address"),
    ({"Vatools-Check-Http": "http://127.0.0.2/ 200"}, "host '127.0.0.2' is not a loopback address"),
    ({"Vatools-Check-Http": "https://127.0.0.1/ 200"}, "'https://127.0.0.1/' is not an http:// URL"),
    ({"Vatools-Check-Http": "127.0.0.1/ 200"}, "'127.0.0.1/' is not an http:// URL"),
    ({"Vatools-Check-Http": "http://admin:pw@127.0.0.1/ 200"}, "carries no user or password"),
    ({"Vatools-Check-Http": "http://127.0.0.1:99999/ 200"}, "'http://127.0.0.1:99999/' is not a URL"),
    ({"Vatools-Check-Http": "http://127.0.0.1/"}, "a probe needs a URL and an HTTP status"),
    ({"Vatools-Check-Http": "http://127.0.0.1/ OK"}, "'OK' is not an HTTP status"),
    ({"Vatools-Check-Http": "http://127.0.0.1/ 700"}, "'700' is not an HTTP status"),
    ({"Vatools-Check-Http": "\n http://127.0.0.1/ 200\n http://example.org/ 200"},
     "'http://example.org/ 200': host 'example.org'"),
    ({"Vatools-Check-Http": "http://127.0.0.1/ 200 ${title}"},
     "${title} is not ${debconf:OWNER/QUESTION}"),
    ({"Vatools-Check-Http": "http://127.0.0.1/ 200 ${debconf:title}"},
     "${debconf:title} is not ${debconf:OWNER/QUESTION}"),
    ({"Vatools-Check-Http": "http://127.0.0.1/ 200 ${debconf:wiki/title"}, "a '${' is not closed"),
    ({"Vatools-Check-Services": "apache2 post;fix"},
     "field Vatools-Check-Services: 'post;fix' is not a unit name"),
    ({"Vatools-Check-Programs": "check-db"},
     "field Vatools-Check-Programs: 'check-db' is not an absolute path"),
    ({"Vatools-Check-Programs": "/usr/share/../../bin/sh"}, "is not an absolute path"),
    ({"Vatools-Check-Deadline": "0"}, "field Vatools-Check-Deadline: '0' is not a number of seconds"),
    ({"Vatools-Check-Deadline": "soon"}, "'soon' is not a number of seconds from 1 to 3600"),
    ({"Vatools-Check-Deadline": "3601"}, "'3601' is not a number"),
])
def test_bad_values_are_refused_naming_the_field_and_value(fields: dict[str, str],
                                                           message: str) -> None:
    with pytest.raises(ApplianceError) as refused:
        Appliance.from_fields({"Package": "wiki-appliance", "Version": "1.0", **fields})
    assert refused.value.message.startswith(ORIGIN + " field ")
    assert message in refused.value.message
    assert refused.value.hint


def test_the_expected_text_names_debconf_answers() -> None:
    probe = HttpProbe.parse("http://127.0.0.1/ 200 <title>${debconf:wiki/title} "
                            "(${debconf:wiki/owner})</title>", ORIGIN)
    assert probe.questions == ("wiki/title", "wiki/owner")
    assert probe.expected_text({"wiki/title": "Team Wiki", "wiki/owner": "Ops"}) == (
        "<title>Team Wiki (Ops)</title>")
    with pytest.raises(KeyError):
        probe.expected_text({"wiki/title": "Team Wiki"})
    assert HttpProbe.parse("http://127.0.0.1/ 200 costs $5", ORIGIN).text == "costs $5"


def test_the_appliances_of_this_tree_declare_checks() -> None:
    top = Path(__file__).resolve().parents[2]
    from debian.deb822 import Deb822

    for name, services in (("dokuwiki-appliance", ("apache2",)),
                           ("moinmoin-appliance", ("apache2", "postfix"))):
        with (top / f"appliances/{name}/debian/control").open() as handle:
            para = next(p for p in Deb822.iter_paragraphs(handle) if p.get("Package") == name)
        fields = {k.removeprefix("XB-"): v for k, v in para.items()}
        checks = HealthChecks.from_fields(fields, name)
        assert checks.services == services
        assert [p.url for p in checks.http][-1] == "http://127.0.0.1:8080/login"
        assert checks.http[0].questions  # the wiki answers with its seeded name


# --- a server on 127.0.0.1 ------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], str]] = {
        "/": (200, {}, "<title>start [Team Wiki &amp; Co]</title>"),
        "/login": (200, {}, "<h1>Log in</h1>"),
        "/broken": (500, {}, "Internal Server Error"),
        "/moved": (302, {"Location": "/login"}, ""),
        "/away": (302, {"Location": "http://wiki.example.org/"}, ""),
    }

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        status, headers, body = self.routes.get(self.path, (404, {}, "not found"))
        data = body.encode()
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(data))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def serving() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def probe(line: str, answers: dict[str, str] | None = None, deadline: float = 1,
          ports: dict[int, int] | None = None) -> health.CheckResult:
    class Answers(health._Answers):
        def get(self) -> dict[str, str]:
            return answers or {}

    return health.check_http(HttpProbe.parse(line, ORIGIN), Answers(Target()), deadline,
                             ports or {})


def test_http_probes_against_a_real_server() -> None:
    with serving() as port:
        base = f"http://127.0.0.1:{port}"
        passed = probe(f"{base}/ 200 [Team Wiki & Co]")  # the text as the page shows it
        assert passed.status == health.OK and passed.kind == "http" and passed.name == f"{base}/"
        assert "answered 200 with '[Team Wiki & Co]'" in passed.detail
        assert probe(f"{base}/ 200 ${{debconf:wiki/title}}", {"wiki/title": "Team Wiki"}).ok
        assert probe(f"{base}/moved 200 Log in").ok  # a redirect on this machine is followed
        assert probe(f"{base}/login 200").ok

        wrong = probe(f"{base}/ 200 Other Wiki")
        assert wrong.status == health.FAILED
        assert "answered 200 without 'Other Wiki'" in wrong.detail
        failed = probe(f"{base}/broken 200")
        assert failed.status == health.FAILED and "answered 500, expected 200" in failed.detail
        assert probe(f"{base}/nothing 404").ok  # the declared status is what counts
        away = probe(f"{base}/away 200")
        assert away.status == health.FAILED
        assert "away from this machine to http://wiki.example.org/" in away.detail
        unanswered = probe(f"{base}/ 200 ${{debconf:wiki/title}}", {})
        assert unanswered.status == health.FAILED
        assert "debconf has no answer to wiki/title" in unanswered.detail


def test_a_probe_retries_until_its_deadline_then_fails() -> None:
    port = free_port()  # nothing listens there
    said: list[str] = []
    result = health.check_http(HttpProbe.parse(f"http://127.0.0.1:{port}/ 200", ORIGIN),
                               health._Answers(Target()), 2.5, {}, said.append)
    assert result.status == health.FAILED
    assert "no answer:" in result.detail and "attempts in" in result.detail


def test_ports_are_remapped_for_servers_started_elsewhere() -> None:
    with serving() as port:
        result = probe("http://127.0.0.1/login 200 Log in", ports={80: port})
        assert result.ok and f"(asked at http://127.0.0.1:{port}/login)" in result.detail
        assert result.name == "http://127.0.0.1/login"


def test_no_proxy_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9/")
    monkeypatch.setenv("no_proxy", "")
    with serving() as port:
        assert probe(f"http://127.0.0.1:{port}/login 200").ok


# --- debconf answers of a target ------------------------------------------------------------------


def write_debconf(root: Path, answers: dict[str, str], passwords: dict[str, str]) -> None:
    directory = root / "var/cache/debconf"
    directory.mkdir(parents=True, exist_ok=True)
    for name, values in (("config.dat", answers), ("passwords.dat", passwords)):
        (directory / name).write_text("".join(
            f"Name: {q}\nTemplate: {q}\nValue: {v}\nOwners: wiki\nFlags: seen\n\n"
            for q, v in values.items()))


def test_the_targets_debconf_fills_the_text_but_never_a_password(tmp_path: Path) -> None:
    write_debconf(tmp_path, {"wiki/title": "Team Wiki & Co"}, {"wiki/password": "s3cret"})
    answers = health._Answers(Target(tmp_path))
    assert answers.get() == {"wiki/title": "Team Wiki & Co"}
    with serving() as port:
        line = f"http://127.0.0.1:{port}/ 200 ${{debconf:wiki/title}}"
        assert health.check_http(HttpProbe.parse(line, ORIGIN), answers, 1, {}).ok
        secret = f"http://127.0.0.1:{port}/ 200 ${{debconf:wiki/password}}"
        result = health.check_http(HttpProbe.parse(secret, ORIGIN), answers, 1, {})
        assert result.status == health.FAILED and "s3cret" not in result.detail


# --- check programs -------------------------------------------------------------------------------


def script(path: Path, body: str, mode: int = 0o755) -> str:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return str(path)


def test_check_programs_pass_fail_and_a_missing_one_fails(tmp_path: Path) -> None:
    good = script(tmp_path / "good", "echo database reachable")
    bad = script(tmp_path / "bad", "echo 'no database' >&2; exit 3")
    plain = script(tmp_path / "plain", "exit 0", mode=0o644)
    slow = script(tmp_path / "slow", "exec sleep 60")
    host = Target()
    assert health.check_program(host, good, 10) == health.CheckResult(
        "program", good, health.OK, "database reachable")
    failed = health.check_program(host, bad, 10)
    assert failed.status == health.FAILED and failed.detail == "exit status 3: no database"
    missing = health.check_program(host, str(tmp_path / "gone"), 10)
    assert missing.status == health.FAILED and missing.detail == "missing: no such file"
    assert health.check_program(host, plain, 10).status == health.FAILED
    late = health.check_program(host, slow, 1)
    assert late.status == health.FAILED and late.detail == "did not finish in 1 s"


# --- dpkg --audit and services in a tree ----------------------------------------------------------

CLEAN_STATUS = """\
Package: wiki-appliance
Status: install ok installed
Priority: optional
Maintainer: vatools developers <vatools@lists.example.org>
Architecture: all
Version: 1.0
Provides: virtual-appliance
Conflicts: virtual-appliance
Vatools-Services: apache2
Vatools-Check-Services: apache2
Vatools-Check-Http:
 http://127.0.0.1/ 200 [${debconf:wiki/title}]
 http://127.0.0.1:8080/login 200 Log in
Vatools-Check-Deadline: 2
Description: A wiki appliance
"""


def clean_tree(root: Path, status: str = CLEAN_STATUS) -> Path:
    make_tree(root, status)
    info = root / "var/lib/dpkg/info"
    info.mkdir(parents=True, exist_ok=True)
    for suffix in ("list", "md5sums"):
        (info / f"wiki-appliance.{suffix}").write_text("")
    write_debconf(root, {"wiki/title": "Team Wiki & Co"}, {})
    return root


def test_dpkg_audit_of_a_tree(tmp_path: Path) -> None:
    clean = clean_tree(tmp_path / "clean")
    assert health.check_dpkg(Target(clean)) == health.CheckResult(
        "dpkg", "dpkg --audit", health.OK, "every package is installed completely")
    broken = clean_tree(tmp_path / "broken",
                        CLEAN_STATUS.replace("install ok installed", "install ok half-configured"))
    result = health.check_dpkg(Target(broken))
    assert result.status == health.FAILED and "half configured" in result.detail
    assert "wiki-appliance" in result.detail


def test_services_in_a_tree_are_unknown_never_ok(tmp_path: Path) -> None:
    results = health.check_services(Target(tmp_path), ("apache2", "postfix"))
    assert [(r.name, r.status) for r in results] == [("apache2", "unknown"), ("postfix", "unknown")]
    assert "no systemd runs the tree" in results[0].detail


def test_services_of_this_system(tmp_path: Path) -> None:
    # Whatever runs this test: never "ok" for a unit that does not exist.
    [result] = health.check_services(Target(), ("vatools-no-such-unit",))
    assert result.status in (health.FAILED, health.UNKNOWN)
    if not os.path.isdir(health.SYSTEMD_RUNNING):
        assert result.detail == "not checked: systemd does not run this system"


# --- the whole report, and `vatools check` --------------------------------------------------------


def test_the_installed_appliance_of_a_tree_is_checked(tmp_path: Path) -> None:
    root = clean_tree(tmp_path)
    with serving() as port:
        report = health.check_installed(Target(root), ports={80: port, 8080: port})
    assert (report.appliance, report.version, report.ok) == ("wiki-appliance", "1.0", True)
    assert [(r.kind, r.status) for r in report.results] == [
        ("dpkg", "ok"), ("service", "unknown"), ("http", "ok"), ("http", "ok")]
    assert report.unknown == (report.results[1],)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = vatools_main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_vatools_check_json_and_exit_codes(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    root = str(clean_tree(tmp_path))
    with serving() as port:
        code, out, _ = run_cli(["check", "--json", "--root", root, "--http-port", f"80={port}",
                                "--http-port", f"8080={port}"], capsys)
        assert code == 0, out
        report = json.loads(out)
        assert set(report) == {"appliance", "version", "ok", "checks"}
        assert report["ok"] is True and report["appliance"] == "wiki-appliance"
        assert [set(c) for c in report["checks"]] == [{"kind", "name", "status", "detail"}] * 4
        assert [c["status"] for c in report["checks"]] == ["ok", "unknown", "ok", "ok"]

        # The login page is not where the probe looks: the check fails, exit status 1.
        code, out, err = run_cli(["--root", root, "check", "--deadline", "1",
                                  "--http-port", f"80={port}",
                                  "--http-port", f"8080={free_port()}"], capsys)
        assert code == 1, out + err
        assert "FAILED   http http://127.0.0.1:8080/login: no answer" in out
        assert "NOT healthy" not in err and "vatools check: waiting" not in out
        assert "ok       http http://127.0.0.1/: answered 200 with '[Team Wiki & Co]'" in out
        assert "unknown  service apache2: not checked" in out
        assert out.rstrip().endswith("NOT healthy: 2 ok, 1 failed, 1 unknown")


def test_vatools_check_refuses_bad_ports_and_missing_appliances(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = clean_tree(tmp_path / "tree")
    code, _, err = run_cli(["check", "--root", str(root), "--http-port", "80:8080"], capsys)
    assert code == 2 and "--http-port '80:8080' is not DECLARED=ACTUAL" in err
    empty = make_tree(tmp_path / "empty", "")
    code, _, err = run_cli(["check", "--root", str(empty)], capsys)
    assert code == 3 and "no appliance is installed" in err, err


# --- the helper's health-check operation, on its real socket --------------------------------------


def test_the_helper_runs_the_checks_for_the_web_process(
        helper: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(ops, "HEALTH_CACHE", ops.new_health_cache())
    answer = as_uid(WEB_UID, WEB_GID, lambda: HelperClient(helper).call("health-check"))
    if not Path("/var/lib/dpkg/status").is_file() or not appliance.installed_packages(Target()):
        assert answer["error"] == "no appliance is installed on this system", answer

    with serving() as port:
        declared = CLEAN_STATUS.replace("http://127.0.0.1/ ", f"http://127.0.0.1:{port}/ ")
        declared = declared.replace("http://127.0.0.1:8080/login 200 Log in",
                                    f"http://127.0.0.1:{port}/nothing 200")
        root = clean_tree(tmp_path / "tree", declared)
        monkeypatch.setattr(ops, "HOST", Target(root))  # the helper's "this system", here
        monkeypatch.setattr(ops, "HEALTH_CACHE", ops.new_health_cache())
        report = as_uid(WEB_UID, WEB_GID,
                        lambda: HelperClient(helper).call("health-check"))["value"]
    assert report["ok"] is False and report["appliance"] == "wiki-appliance"
    statuses = {(c["kind"], c["name"]): c["status"] for c in report["checks"]}
    assert statuses == {("dpkg", "dpkg --audit"): "ok", ("service", "apache2"): "unknown",
                        ("http", f"http://127.0.0.1:{port}/"): "ok",
                        ("http", f"http://127.0.0.1:{port}/nothing"): "failed"}
    # Cached: the server is gone, yet the same results come back.
    again = as_uid(WEB_UID, WEB_GID, lambda: HelperClient(helper).call("health-check"))["value"]
    assert again == report


def test_the_dashboard_lists_the_checks_in_plain_words(
        helper: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from vatools.control import auth
    from vatools.control.app import create_app
    from vatools.control.config import Config

    def dashboard() -> str:
        config = Config(state_dir=helper.parent / "state", socket=helper)
        auth.write_hash(config.password_file, auth.hash_password("a-long-password", n=2**10))
        web = create_app(config, ([], [])).test_client()
        page = web.get("/login").get_data(as_text=True)
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        web.post("/login", data={"password": "a-long-password", "csrf_token": token})
        return str(web.get("/").get_data(as_text=True))

    with serving() as port:
        declared = CLEAN_STATUS.replace("http://127.0.0.1/ ", f"http://127.0.0.1:{port}/ ")
        declared = declared.replace("http://127.0.0.1:8080/login 200 Log in",
                                    f"http://127.0.0.1:{port}/nothing 200")
        monkeypatch.setattr(ops, "HOST", Target(clean_tree(tmp_path / "tree", declared)))
        monkeypatch.setattr(ops, "HEALTH_CACHE", ops.new_health_cache())
        page = as_uid(WEB_UID, WEB_GID, dashboard)["value"]
    assert "<h2>Health checks</h2>" in page
    assert "Some checks fail: the appliance may not work as it should." in page
    assert f"<th>http http://127.0.0.1:{port}/nothing</th><td class=\"bad\">FAILS</td>" in page
    assert f"<th>http http://127.0.0.1:{port}/</th><td class=\"ok\">passes</td>" in page
    assert "<td class=\"unknown\">not known</td><td>not checked: no systemd runs the tree" in page
