"""moinmoin-appliance end to end: vainstall on a fresh server, then the wiki over real HTTP.

Apache runs inside the chroot on a loopback port (tests/support/apache.py); the browser is urllib
with a cookie jar. MoinMoin 2's edit form is read from the page itself (html.parser), so the test
follows the form's own field names instead of hard-coding them.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest

from tests.support.apache import serve_apache
from tests.support.chroot import Chroot
from tests.support.commands import secrets_of, valist_json, vainstall
from tests.support.net import free_port

pytestmark = pytest.mark.integration

APPLIANCE = "moinmoin-appliance"
SITE_NAME = "Crew Wiki E2E"  # differs from the seed's "Team Wiki": the --set override must win
SMARTHOST = "relay.e2e.example.net"
ADMIN = "WikiAdmin"
PASSWORD_QUESTION = f"{APPLIANCE}/admin-password"
STATS_HOOK = f"/usr/share/vatools/appliances/{APPLIANCE}/control-stats"
CONTROL_CHECK = """import sys
from pathlib import Path
from vatools.control.auth import read_hash, verify_password
from vatools.control.plugins import load_plugins
print(verify_password(sys.stdin.read(), read_hash(Path("/var/lib/appliance-control/admin-password"))))
plugins, broken = load_plugins()
print(str([p.name for p in plugins]).replace(" ", ""), str(broken).replace(" ", ""))
"""
PAGE = "E2eTestPage"
# A new item: the default item type with moin wiki markup, created from scratch (no template).
NEW_PAGE_QUERY = urllib.parse.urlencode(
    {"itemtype": "default", "contenttype": "text/x.moin.wiki;charset=utf-8", "template": ""}
)


@dataclass(frozen=True)
class Answer:
    status: int
    url: str
    body: str


class Browser:
    """urllib with a cookie jar; HTTP errors are answers, not exceptions."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> Answer:
        return self._open(urllib.request.Request(self.base_url + path))

    def post(self, path: str, fields: list[tuple[str, str]]) -> Answer:
        data = urllib.parse.urlencode(fields).encode()
        return self._open(urllib.request.Request(self.base_url + path, data=data, method="POST"))

    def _open(self, request: urllib.request.Request) -> Answer:
        try:
            with self.opener.open(request, timeout=120) as response:
                body = response.read().decode("utf-8", "replace")
                return Answer(response.status, response.geturl(), body)
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.geturl() or request.full_url,
                          error.read().decode("utf-8", "replace"))


@dataclass
class Form:
    """One HTML form: its action and its successful controls (name, value) in order."""

    action: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    textareas: list[str] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.fields]

    def with_values(self, values: dict[str, str]) -> list[tuple[str, str]]:
        missing = set(values) - set(self.names())
        assert not missing, f"form {self.action} has no field {sorted(missing)}: {self.names()}"
        return [(name, values.get(name, value)) for name, value in self.fields]


class _FormParser(HTMLParser):
    """Collects forms with what a browser would send when pressing the unnamed default submit
    button: inputs (checked ones for checkbox/radio), textareas, selected options; named submit
    buttons (cancel, preview) are left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._textarea: str | None = None
        self._text: list[str] = []
        self._select: str | None = None
        self._first_option: str | None = None
        self._selected = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", "")))
        if not self.forms:
            return
        form = self.forms[-1]
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            form.fields.append((name, a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []
        elif tag == "select" and name:
            self._select, self._first_option, self._selected = name, None, False
        elif tag == "option" and self._select:
            value = a.get("value", "")
            if self._first_option is None:
                self._first_option = value
            if "selected" in a and not self._selected:
                form.fields.append((self._select, value))
                self._selected = True

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea" and self._textarea is not None:
            text = "".join(self._text).removeprefix("\n")  # HTML drops one leading newline
            self.forms[-1].fields.append((self._textarea, text))
            self.forms[-1].textareas.append(self._textarea)
            self._textarea = None
        elif tag == "select" and self._select is not None:
            if not self._selected and self._first_option is not None:
                self.forms[-1].fields.append((self._select, self._first_option))
            self._select = None


def edit_form(page: Answer) -> Form:
    """The form on a +modify page that carries the item's text (a textarea named ...data_text)."""
    parser = _FormParser()
    parser.feed(page.body)
    for form in parser.forms:  # the action is empty: the form posts back to its own URL
        if any(name.endswith("data_text") for name in form.textareas):
            return form
    raise AssertionError(f"no edit form with a data_text textarea on {page.url}:\n{page.body[:3000]}")


def text_field(form: Form) -> str:
    return next(name for name in form.textareas if name.endswith("data_text"))


def save(browser: Browser, path: str, text: str, comment: str) -> Answer:
    """Fetch the edit form at `path`, fill in text and comment, press the save button."""
    page = browser.get(path)
    assert page.status == 200, f"GET {path}: {page.status}\n{page.body[:2000]}"
    form = edit_form(page)
    fields = form.with_values({text_field(form): text, "comment": comment})
    target = urllib.parse.urljoin(page.url, form.action) if form.action else page.url
    return browser.post(urllib.parse.urlsplit(target).path + _query(target), fields)


def _query(url: str) -> str:
    query = urllib.parse.urlsplit(url).query
    return f"?{query}" if query else ""


def log_in(browser: Browser, password: str) -> None:
    answer = browser.post(
        "/+login",
        [("login_username", ADMIN), ("login_password", password),
         ("login_submit", "1"), ("login_nexturl", "")],
    )
    assert answer.status == 200, f"login: HTTP {answer.status}\n{answer.body[:2000]}"
    assert "invalid" not in answer.body.lower(), answer.body[:3000]


def test_moinmoin_install_browse_log_in_edit_and_relay(server_root: Chroot) -> None:
    chroot = server_root
    result = vainstall(
        chroot, "--yes",
        "--set", f"{APPLIANCE}/sitename={SITE_NAME}",
        "--set", f"{APPLIANCE}/smarthost={SMARTHOST}",
        "--set", f"postfix/relayhost={SMARTHOST}",
        APPLIANCE,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    # The generated admin password: kept in the secrets file, shown once on stdout.
    password = secrets_of(chroot, APPLIANCE)[PASSWORD_QUESTION]
    assert len(password) >= 12
    assert password in result.stdout

    # postfix, a satellite: all mail goes to the (overridden) smarthost.
    relayhost = chroot.run(["postconf", "-h", "relayhost"]).stdout.strip()
    assert relayhost == SMARTHOST
    assert re.search(rf"^relayhost\s*=\s*{re.escape(SMARTHOST)}\s*$",
                     chroot.read_text("/etc/postfix/main.cf"), re.M)

    with serve_apache(chroot, free_port()) as base_url:
        anonymous = Browser(base_url)
        front = anonymous.get("/")
        assert front.status == 200, front.body[:2000]
        assert SITE_NAME in front.body
        assert anonymous.get("/+admin/userbrowser").status == 403

        admin = Browser(base_url)
        log_in(admin, password)
        assert admin.get("/+admin/userbrowser").status == 200

        # Create the page, then edit it: two revisions in its history.
        created = save(admin, f"/+modify/{PAGE}?{NEW_PAGE_QUERY}", "First words.\n", "e2e first")
        assert created.status == 200, f"{created.status} {created.url}\n{created.body[:3000]}"
        shown = admin.get(f"/{PAGE}")
        assert shown.status == 200 and "First words." in shown.body
        edited = save(admin, f"/+modify/{PAGE}", "Second words.\n", "e2e second")
        assert edited.status == 200, f"{edited.status} {edited.url}\n{edited.body[:3000]}"
        shown = admin.get(f"/{PAGE}")
        assert "Second words." in shown.body and "First words." not in shown.body
        history = admin.get(f"/+history/{PAGE}")
        assert history.status == 200
        revisions = re.findall(r'<input type="radio" name="rev1" value="([0-9a-f]+)"', history.body)
        assert len(set(revisions)) == 2, history.body
        assert "e2e first" in history.body and "e2e second" in history.body
        assert 'title="WikiAdmin @ [127.0.0.1]"' in history.body  # the editor, logged in

        # Anonymous visitors read, never write: no edit form, a forged POST changes nothing.
        assert anonymous.get(f"/{PAGE}").status == 200
        assert anonymous.get(f"/+modify/{PAGE}").status == 403
        assert anonymous.get(f"/+modify/AnonPage?{NEW_PAGE_QUERY}").status == 403
        forged = anonymous.post(
            f"/+modify/{PAGE}",
            [("content_form_data_text", "Vandalised.\n"), ("comment", "forged-by-anon"),
             ("meta_form_acl", "None")],
        )
        assert forged.status == 403
        assert "Vandalised." not in admin.get(f"/{PAGE}").body
        assert "forged-by-anon" not in admin.get(f"/+history/{PAGE}").body

    # appliance-control's plugin: its root-run statistics hook sees the wiki's revisions
    stats = json.loads(chroot.run([STATS_HOOK]).stdout)
    assert int(stats["items"]) >= 1 and int(stats["revisions"]) >= 2, stats


@pytest.mark.suite("bookworm")
def test_moinmoin_replaces_dokuwiki(server_root: Chroot) -> None:
    chroot = server_root
    result = vainstall(chroot, "--yes", "dokuwiki-appliance")
    assert result.returncode == 0, result.stdout + result.stderr
    result = vainstall(chroot, "--yes", "--replace", APPLIANCE)
    assert result.returncode == 0, result.stdout + result.stderr

    listing = valist_json(chroot)
    assert listing[APPLIANCE]["state"] == "installed"
    assert listing["dokuwiki-appliance"]["state"] == "available"

    with serve_apache(chroot, free_port()) as base_url:
        front = Browser(base_url).get("/")
        assert front.status == 200, front.body[:2000]
        assert "Team Wiki" in front.body  # the seed's own site name

    # appliance-control was installed with dokuwiki: the password vainstall generated now for
    # moinmoin is the one that works (the plugin's trigger took it), and only moinmoin's
    # plugin is active (dokuwiki's stays installed but steps aside).
    password = secrets_of(chroot, APPLIANCE)["appliance-control/admin-password"]
    assert password in result.stdout
    check = chroot.run(["python3", "-c", CONTROL_CHECK], input=password).stdout.split()
    assert check == ["True", "['moinmoin']", "[]"], check
