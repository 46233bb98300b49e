#!/usr/bin/python3
"""Benchmark: appliance-control's dashboard under 20 concurrent clients on loopback (wrk).

    /usr/bin/python3 bench/bench_control.py [--seconds 10] [--connections 20]

Starts the interface from this tree with gunicorn (the packaged settings:
vatools.control.gunicorn_conf) on 127.0.0.1, with a fresh state directory and admin
password, logs in, then runs wrk against the dashboard with the session cookie. In the same
run, wrk measures a trivial WSGI app served by the same gunicorn settings: the floor the
server itself sets. Prints p50/p99 latency and requests/s of both, and the ratio.
Target: dashboard p99 <= 50 ms. BENCH_GUNICORN="--threads 4" tries other gunicorn settings
(command-line options override the packaged ones). The machine's load average is printed:
on a shared machine, p99 follows the other work more than the interface. The helper is not started (the dashboard does not use it;
plugins' figures are cached).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP))

from vatools.control import auth  # noqa: E402

PASSWORD = "bench-admin-password"
HELLO = "def app(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'hello']\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def gunicorn(app: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    argv = ["/usr/bin/gunicorn", "-c", "python:vatools.control.gunicorn_conf", *os.environ.get("BENCH_GUNICORN", "").split(), "--access-logfile",
            "/dev/null", app]
    return subprocess.Popen(argv, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)  # the group we started
    proc.wait(timeout=30)


def login(base: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]  # type: ignore[index]
    data = urllib.parse.urlencode({"password": PASSWORD, "csrf_token": token}).encode()
    opener.open(base + "/login", data=data).read()
    cookie = next(c for c in jar if c.name == "appliance_control")
    return f"{cookie.name}={cookie.value}"


def wrk(url: str, seconds: int, connections: int, cookie: str | None) -> dict[str, str]:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if cookie:
        argv[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    result = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s*{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        result[f"p{pct}"] = m[1] if m else "?"
    m = re.search(r"Requests/sec:\s+(\S+)", out)
    result["rps"] = m[1] if m else "?"
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non2xx"] = non2xx[1] if non2xx else "0"
    return result


def ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=20)
    args = parser.parse_args()
    for tool in ("wrk", "/usr/bin/gunicorn"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install wrk gunicorn python3-flask")
    work = Path(tempfile.mkdtemp(prefix="vatools-bench-control-"))
    try:
        port, hello_port = free_port(), free_port()
        (work / "backups").mkdir()
        auth.write_hash(work / "admin-password", auth.hash_password(PASSWORD))
        (work / "control.conf").write_text(f"[web]\nlisten = 127.0.0.1:{port}\nstate_dir = {work}\n"
                                           f"[helper]\nsocket = {work}/none.sock\n")
        (work / "hello.conf").write_text(f"[web]\nlisten = 127.0.0.1:{hello_port}\n")
        (work / "hello_app.py").write_text(HELLO)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
               "PYTHONPATH": f"{TOP}:{work}", "APPLIANCE_CONTROL_CONFIG": str(work / "control.conf")}
        web = gunicorn("vatools.control.app:create_app()", env, work / "web.log")
        hello = gunicorn("hello_app:app", {**env, "APPLIANCE_CONTROL_CONFIG": str(work / "hello.conf")},
                         work / "hello.log")
        try:
            wait_port(port)
            wait_port(hello_port)
            base = f"http://127.0.0.1:{port}"
            cookie = login(base)
            wrk(base + "/", 2, args.connections, cookie)  # warm-up
            load = os.getloadavg()
            dash = wrk(base + "/", args.seconds, args.connections, cookie)
            floor = wrk(f"http://127.0.0.1:{hello_port}/", args.seconds, args.connections, None)
        finally:
            stop(web)
            stop(hello)
        print(f"appliance-control dashboard, {args.connections} concurrent clients, "
              f"{args.seconds} s, loopback (wrk); load average before: "
              + " ".join(f"{x:.2f}" for x in load))
        print(f"  dashboard (logged in): p50 {dash['p50']}  p99 {dash['p99']}  "
              f"{dash['rps']} req/s  non-2xx {dash['non2xx']}")
        print(f"  trivial WSGI app, same gunicorn settings: p50 {floor['p50']}  p99 {floor['p99']}  "
              f"{floor['rps']} req/s")
        print(f"  ratio dashboard/trivial p99: {ms(dash['p99']) / ms(floor['p99']):.1f}x; "
              f"target p99 <= 50 ms: {'met' if ms(dash['p99']) <= 50 else 'NOT met'}")
        if dash["non2xx"] != "0":
            print("  (non-2xx answers: the session was not accepted)", file=sys.stderr)
            return 1
        return 0
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    sys.exit(main())
