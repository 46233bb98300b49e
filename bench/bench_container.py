#!/usr/bin/python3
"""Benchmark: `vatools container update` of dokuwiki-appliance, and the downtime it causes.

    /usr/bin/python3 bench/bench_container.py --image DIR/dokuwiki-appliance.oci [--strategy beside]
    /usr/bin/python3 bench/bench_container.py            # builds the image first (minutes)

In one run, on this machine (needs root and podman; every request goes to 127.0.0.1):
  1. derives a "newer" image from the given OCI layout (one added layer: a version label and a
     file /usr/share/dokuwiki/vatools-bench.txt the wiki's Apache serves);
  2. deploys the given image as `vatools-bench-wiki` on a free port;
  3. runs `vatools container update --image NEWER` while a request loop GETs that file every
     REQUEST_PAUSE seconds (at most MAX_REQUESTS): 404 is the old version answering, 200 with
     the marker the new one, anything else (refused, reset, 5xx, timeout) a failed request;
  4. removes the deployment and its volumes.
Prints: the update command's time, the time from its start to the first answer of the new
version, the failed requests and the longest outage (first failure to the next answer).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP))

from tests.support.net import LOOPBACK, free_port  # noqa: E402
from tests.support.oci import derive  # noqa: E402

NAME = "bench-wiki"
MARKER_PATH = "/dokuwiki/vatools-bench.txt"
MARKER = "vatools bench newer image"
REQUEST_PAUSE = 0.05
MAX_REQUESTS = 20000
PODMAN_OPTIONS = {"runtime": "runc", "ulimits": {"nofile": "1024:1024", "nproc": "1024:1024"}}


def vatools(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(TOP)}
    return subprocess.run(["/usr/bin/python3", "-m", "vatools.cli.main", "container", *args],
                          capture_output=True, text=True, env=env, cwd=TOP)


def get(port: int) -> str:
    """'new', 'old' or 'failed'."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
    try:
        connection.request("GET", MARKER_PATH)
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return "failed"
    finally:
        connection.close()
    if response.status == 200 and MARKER in body:
        return "new"
    return "old" if response.status == 404 else "failed"


class RequestLoop(threading.Thread):
    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.results: list[tuple[float, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and len(self.results) < MAX_REQUESTS:
            self.results.append((time.monotonic(), get(self.port)))
            time.sleep(REQUEST_PAUSE)


def build_image(directory: Path, suite: str) -> Path:
    from tests.support.images import APPLIANCE, GIVEN_PASSWORDS, image_build, repo_args
    from tests.support.net import serve_directory
    from tests.support.repo import build_repo

    repo = build_repo(directory / "harness")
    with serve_directory(repo.served()) as url:
        done = image_build(APPLIANCE, "--suite", suite, "--format", "oci", "--output", str(directory / "image"),
                           *GIVEN_PASSWORDS, *repo_args(repo, url, directory / "debs"))
    if done.returncode != 0:
        sys.exit(f"image build failed:\n{done.stderr[-3000:]}")
    return directory / "image" / f"{APPLIANCE}.oci"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, help="the OCI layout of dokuwiki-appliance (default: build one)")
    parser.add_argument("--suite", default="bookworm", help="the suite to build when no --image is given")
    parser.add_argument("--strategy", choices=("beside", "in-place"), default="beside")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vatools-bench-container-", dir="/var/tmp"))
    try:
        image = args.image.resolve() if args.image else build_image(work, args.suite)
        version = json.loads((image / "index.json").read_text())["manifests"][0].get("annotations", {}).get(
            "org.opencontainers.image.ref.name", "0")
        newer = work / "newer.oci"
        derive(image, newer, f"{version}+bench", {"usr/share/dokuwiki/vatools-bench.txt": MARKER + "\n"})
        port = free_port()
        config = work / "wiki.json"
        config.write_text(json.dumps({
            "image": str(image), "ports": [{"container": 80, "host": port}],
            "health": {"path": "/dokuwiki/doku.php", "status": 200, "deadline": 300},
            "update": {"strategy": args.strategy}, **PODMAN_OPTIONS,
        }))
        state = work / "state"
        done = vatools("deploy", NAME, str(config), "--state-dir", str(state))
        if done.returncode != 0:
            sys.exit(f"deploy failed:\n{done.stderr[-3000:]}")
        if get(port) != "old":
            sys.exit("the deployed wiki does not answer 404 for the marker")
        loop = RequestLoop(port)
        loop.start()
        time.sleep(1)
        started = time.monotonic()
        done = vatools("update", NAME, "--image", str(newer), "--state-dir", str(state))
        finished = time.monotonic()
        time.sleep(3)
        loop.stop.set()
        loop.join()
        if done.returncode != 0:
            sys.exit(f"update failed ({done.returncode}):\n{done.stderr[-3000:]}")
        results = loop.results
        first_new = next((t for t, what in results if what == "new" and t >= started), None)
        failed = [t for t, what in results if what == "failed"]
        longest, outage_start = 0.0, None
        for t, what in results:
            if what == "failed" and outage_start is None:
                outage_start = t
            elif what != "failed" and outage_start is not None:
                longest, outage_start = max(longest, t - outage_start), None
        print(f"vatools container update ({args.strategy}), dokuwiki-appliance {version} -> {version}+bench")
        print(f"  update command:               {finished - started:6.1f} s")
        if first_new is not None:
            print(f"  update start to new version:  {first_new - started:6.1f} s")
        else:
            print("  the new version never answered")
        print(f"  requests:                     {len(results)} every {REQUEST_PAUSE * 1000:.0f} ms,"
              f" {len(failed)} failed")
        print(f"  longest outage:               {longest:6.2f} s")
        return 0
    finally:
        vatools("remove", NAME, "--purge", "--state-dir", str(work / "state"))
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
