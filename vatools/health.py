"""Health checks: run what an appliance declares to prove it works (vatools.appliance's
HealthChecks, fields Vatools-Check-*), plus `dpkg --audit`, against a target.

    services   `systemctl is-active UNIT` must say "active". In a tree (--root) or on a system
               that systemd does not run, nothing can say: the result is "unknown", never "ok".
    http       GET on a loopback URL must answer the declared status (and text), retried until
               the deadline; no proxy is asked, and a redirect away from loopback is a failure.
    programs   each declared program runs (inside the target) and must exit 0; a program that
               is missing or not executable is a failure, never a pass.
    dpkg       `dpkg --audit` must report nothing (no half-installed or unconfigured package).

Every check gives a typed result: kind, name, status ("ok", "failed" or "unknown") and a
detail in plain words. `vatools check`, appliance-control's dashboard and (later) upgrades
read the same results.

>>> result = CheckResult("http", "http://127.0.0.1/", OK, "answered 200")
>>> Report("wiki", "1.0", (result,)).to_json()["ok"]
True
>>> remap_port("http://127.0.0.1/wiki/", {80: 8123})
'http://127.0.0.1:8123/wiki/'
>>> remap_port("http://[::1]:8080/login", {80: 8123})
'http://[::1]:8080/login'
"""

from __future__ import annotations

import html
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from vatools import appliance
from vatools.appliance import Appliance, HttpProbe
from vatools.errors import VatoolsError
from vatools.run import run, start
from vatools.target import Target

OK, FAILED, UNKNOWN = "ok", "failed", "unknown"
STATUSES = (OK, FAILED, UNKNOWN)
SYSTEMD_RUNNING = "/run/systemd/system"  # sd_booted(3): exists when systemd runs the system
MAX_BODY = 1024 * 1024  # bytes of a probe's answer searched for the text
REQUEST_TIMEOUT = 10.0  # seconds for one attempt (the deadline bounds them all)
RETRY_PAUSE = 1.0
SAY_EVERY = 5.0  # seconds between progress lines while a probe waits
DETAIL_LINES = 20  # lines of a failed command's output kept in the detail

Say = Callable[[str], None]  # progress for long waits (vatools check prints it on stderr)


def _quiet(text: str) -> None:
    pass


@dataclass(frozen=True)
class CheckResult:
    kind: str  # "service", "http", "program" or "dpkg"
    name: str  # the unit, URL, program or command checked
    status: str  # OK, FAILED or UNKNOWN
    detail: str  # what was seen, in plain words

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "status": self.status,
                "detail": self.detail}


@dataclass(frozen=True)
class Report:
    appliance: str
    version: str
    results: tuple[CheckResult, ...]

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.status == FAILED)

    @property
    def unknown(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.status == UNKNOWN)

    @property
    def ok(self) -> bool:
        """No check failed (an unknown one does not fail: it could not be checked here)."""
        return not self.failed

    def to_json(self) -> dict[str, Any]:
        return {"appliance": self.appliance, "version": self.version, "ok": self.ok,
                "checks": [r.to_json() for r in self.results]}


def check_installed(target: Target, *, deadline: float | None = None,
                    ports: Mapping[int, int] | None = None, say: Say = _quiet) -> Report:
    """Run the health checks of the appliance installed in the target."""
    return run_checks(target, appliance.installed(target), deadline=deadline, ports=ports,
                      say=say)


def run_checks(target: Target, declared: Appliance, *, deadline: float | None = None,
               ports: Mapping[int, int] | None = None, say: Say = _quiet) -> Report:
    """Run every check of `declared` in the target. `deadline` (seconds) replaces the declared
    one; `ports` sends probes of a loopback port to another (a tree's servers started on
    other ports than the declared ones)."""
    checks = declared.health
    seconds = float(deadline if deadline is not None else checks.deadline)
    results = [check_dpkg(target)]
    results += check_services(target, checks.services)
    answers = _Answers(target)
    results += [check_http(probe, answers, seconds, ports or {}, say) for probe in checks.http]
    results += [check_program(target, program, seconds, say) for program in checks.programs]
    return Report(declared.name, declared.version, tuple(results))


# --- dpkg -------------------------------------------------------------------------------------


def check_dpkg(target: Target) -> CheckResult:
    """`dpkg --audit` of the target: the host's dpkg reads a tree's database with --root
    (read-only), so a tree needs no working dpkg of its own to be audited."""
    argv = ["dpkg", "--audit"] if target.is_host else ["dpkg", f"--root={target.root}", "--audit"]
    try:
        result = run(argv, check=False)
    except VatoolsError as error:
        return CheckResult("dpkg", "dpkg --audit", FAILED, f"could not run: {error.message}")
    output = result.stdout.strip()
    if result.returncode == 0 and not output:
        return CheckResult("dpkg", "dpkg --audit", OK, "every package is installed completely")
    return CheckResult("dpkg", "dpkg --audit", FAILED,
                       _tail(output) or f"dpkg --audit exited with status {result.returncode}")


# --- services ---------------------------------------------------------------------------------


def check_services(target: Target, units: tuple[str, ...]) -> list[CheckResult]:
    if not target.is_host:
        return [CheckResult("service", unit, UNKNOWN,
                            f"not checked: no systemd runs the tree {target}") for unit in units]
    if units and not os.path.isdir(SYSTEMD_RUNNING):
        return [CheckResult("service", unit, UNKNOWN,
                            "not checked: systemd does not run this system") for unit in units]
    results = []
    for unit in units:
        try:
            result = run(["systemctl", "is-active", unit], check=False)
        except VatoolsError as error:
            results.append(CheckResult("service", unit, UNKNOWN, f"not checked: {error.message}"))
            continue
        state = result.stdout.strip().splitlines()[-1:] or [f"exit status {result.returncode}"]
        if result.returncode == 0 and state == ["active"]:
            results.append(CheckResult("service", unit, OK, "active"))
        else:
            results.append(CheckResult("service", unit, FAILED, f"{state[0]}, not active"))
    return results


# --- HTTP probes ------------------------------------------------------------------------------


class _Answers:
    """The target's debconf answers, read once and only when a probe names one. Passwords are
    left out: a probe's text is shown on the dashboard and in `vatools check`."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._values: dict[str, str] | None = None

    def get(self) -> dict[str, str]:
        if self._values is None:
            from vatools.seed import debconfdb

            self._values = debconfdb.values(self.target, passwords=False)
        return self._values


def remap_port(url: str, ports: Mapping[int, int]) -> str:
    """The URL with its port replaced when `ports` maps it to another."""
    parts = urlsplit(url)
    port = parts.port or 80
    if port not in ports:
        return url
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return urlunsplit(parts._replace(netloc=f"{host}:{ports[port]}"))


class _LeftLoopback(urllib.error.URLError):
    """A redirect away from this machine: not followed, and not retried either."""


class _LoopbackRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to another loopback URL: a probe never leaves this machine."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> urllib.request.Request | None:
        parts = urlsplit(newurl)
        if parts.scheme != "http" or parts.hostname not in appliance.LOOPBACK_HOSTS:
            raise _LeftLoopback(f"redirected ({code}) away from this machine to {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


# No proxy (an http_proxy in the environment must not see loopback probes), loopback redirects.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _LoopbackRedirects())


def _fetch(url: str, timeout: float) -> tuple[int, str]:
    """One GET: the status and the body (an HTTP error status is an answer too)."""
    request = urllib.request.Request(url, headers={"User-Agent": "vatools-check"})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, response.read(MAX_BODY).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        body = error.read(MAX_BODY).decode("utf-8", "replace") if error.fp else ""
        return error.code, body


def check_http(probe: HttpProbe, answers: _Answers, deadline: float, ports: Mapping[int, int],
               say: Say = _quiet) -> CheckResult:
    """GET the probe's URL until it answers as declared or the deadline passes."""
    name = probe.url
    try:
        text = probe.expected_text(answers.get()) if probe.questions else probe.text
    except KeyError as missing:
        return CheckResult("http", name, FAILED,
                           f"debconf has no answer to {missing.args[0]} in {answers.target} "
                           "(the probe's expected text names it)")
    url = remap_port(probe.url, ports)
    via = "" if url == probe.url else f" (asked at {url})"
    start_time = time.monotonic()
    last_said = start_time
    attempts = 0
    while True:
        attempts += 1
        remaining = deadline - (time.monotonic() - start_time)
        try:
            status, body = _fetch(url, max(0.5, min(REQUEST_TIMEOUT, remaining)))
            if status != probe.status:
                problem = f"answered {status}, expected {probe.status}"
            elif text and text not in body and text not in html.unescape(body):
                problem = f"answered {status} without {text!r}"
            else:
                found = f" with {text!r}" if text else ""
                return CheckResult("http", name, OK, f"answered {status}{found}{via}")
        except _LeftLoopback as error:
            return CheckResult("http", name, FAILED, f"{error.reason}{via}")
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = error.reason if isinstance(error, urllib.error.URLError) else error
            problem = f"no answer: {reason}"
        now = time.monotonic()
        if now - start_time + RETRY_PAUSE > deadline:
            tries = f"{attempts} attempt{'s' if attempts != 1 else ''} in {now - start_time:.0f} s"
            return CheckResult("http", name, FAILED, f"{problem}{via} ({tries})")
        if now - last_said >= SAY_EVERY:
            say(f"waiting for {url}: {problem} (for up to {deadline - (now - start_time):.0f} s "
                "more)")
            last_said = now
        time.sleep(RETRY_PAUSE)


# --- check programs ---------------------------------------------------------------------------


def check_program(target: Target, program: str, deadline: float, say: Say = _quiet) -> CheckResult:
    """Run a declared check program inside the target; exit 0 is healthy, anything else
    (missing, not executable, a failure, no end before the deadline) is not."""
    where = "" if target.is_host else f" in {target}"
    if not os.path.lexists(target.path(program)):
        return CheckResult("program", program, FAILED, f"missing: no such file{where}")
    say(f"running {program}")
    try:
        proc = start([program], target=target, stdout=subprocess.PIPE)
    except (VatoolsError, OSError) as error:
        reason = error.message if isinstance(error, VatoolsError) else str(error)
        return CheckResult("program", program, FAILED, f"could not run: {reason}")
    try:
        output, _ = proc.communicate(timeout=max(deadline, 1.0))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own process group (run.start)
        proc.communicate()
        return CheckResult("program", program, FAILED, f"did not finish in {deadline:.0f} s")
    text = output.decode("utf-8", "replace").strip()
    if proc.returncode == 0:
        return CheckResult("program", program, OK, text.splitlines()[-1] if text else "exit 0")
    if proc.returncode in (126, 127) and not target.is_host:  # chroot's own codes
        why = "not executable" if proc.returncode == 126 else "not found"
        return CheckResult("program", program, FAILED, f"{why}{where}: {_tail(text)}")
    return CheckResult("program", program, FAILED,
                       f"exit status {proc.returncode}" + (f": {_tail(text)}" if text else ""))


def _tail(text: str) -> str:
    lines = text.strip().splitlines()
    return "\n".join(lines[-DETAIL_LINES:])
