"""`vatools container`: the session's dokuwiki-appliance OCI image deployed, updated and rolled
back on this host's podman (rootful), ports on 127.0.0.1 only.

No image is built here: the one tests/support/images.py builds per suite and session is
deployed, and the "newer" and "broken" images are derived from it by adding one small layer
(tests/support/oci.py): a version label and a marker file; for the broken one also an Apache
configuration that makes apache2 refuse to start. Everything podman holds for these tests is
named vatools-test-* and removed by name afterwards, also when a test fails.
The lifecycle runs on bookworm; the refusals on both suites.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.support.images import APPLIANCE, TITLE, Built
from tests.support.net import LOOPBACK, free_port, http_get
from tests.support.oci import derive
from tests.support.repo import TOP

pytestmark = [pytest.mark.integration, pytest.mark.image]

PAGE_ID = "vatools_container_test"
PAGE_TEXT = "Written before the update by test_container."
MARKER = "/usr/share/vatools-test/image"
PODMAN_OPTIONS = {"runtime": "runc", "ulimits": {"nofile": "1024:1024", "nproc": "1024:1024"}}


def vatools(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(TOP)}
    return subprocess.run(["/usr/bin/python3", "-m", "vatools.cli.main", "container", *args],
                          capture_output=True, text=True, env=env, cwd=TOP, timeout=900)


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True)


def podman_lists() -> dict[str, list[str]]:
    """What podman holds: containers, volumes and images (with their tags)."""
    return {
        "containers": sorted(podman("ps", "-a", "--format", "{{.Names}}").stdout.split()),
        "volumes": sorted(podman("volume", "ls", "--format", "{{.Name}}").stdout.split()),
        "images": sorted(podman("images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}")
                         .stdout.splitlines()),
    }


def remove_by_name(prefix: str, pulled_from: Path) -> None:
    """Every container, volume and image this test made: named PREFIX*, or pulled from our dir."""
    for name in podman("ps", "-a", "--format", "{{.Names}}").stdout.split():
        if name.startswith(prefix):
            podman("rm", "-f", "-t", "5", name)
    for name in podman("volume", "ls", "--format", "{{.Name}}").stdout.split():
        if name.startswith(prefix):
            podman("volume", "rm", "-f", name)
    for name in podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split():
        if name.startswith((f"localhost/{prefix}", f"localhost{pulled_from}")):
            podman("rmi", "-f", name)


@pytest.fixture
def wiki(suite: str, harness_dir: Path) -> Iterator[str]:
    """The deployment name; whatever it left in podman is removed by name afterwards."""
    name = f"test-wiki-{suite}"
    remove_by_name(f"vatools-{name}", harness_dir)
    yield name
    remove_by_name(f"vatools-{name}", harness_dir)


@pytest.fixture
def layouts(images: Callable[[str], Built], suite: str, harness_dir: Path) -> dict[str, Path]:
    """The session's image, and a newer and a broken one derived from it."""
    built = images(suite)
    base = built.path(f"{APPLIANCE}.oci")
    version = built.manifest["version"]
    place = harness_dir / "container-images" / suite
    if not place.exists():
        place.mkdir(parents=True)
        derive(base, place / "newer.oci", f"{version}+newer", {MARKER: "newer\n"})
        derive(base, place / "broken.oci", f"{version}+broken", {
            MARKER: "broken\n",
            "etc/apache2/conf-enabled/zz-vatools-test-broken.conf": "ThisIsNoApacheDirective on\n",
        })
    return {"base": base, "newer": place / "newer.oci", "broken": place / "broken.oci"}


def write_config(path: Path, image: Path, port: int, changes: dict[str, object] | None = None) -> Path:
    config: dict[str, object] = {
        "image": str(image),
        "ports": [{"container": 80, "host": port}],
        "resources": {"memory": "768m", "pids": 512},
        "security": {"read_only": True, "no_new_privileges": True},
        "health": {"path": "/dokuwiki/doku.php", "status": 200, "text": TITLE, "deadline": 180},
        **PODMAN_OPTIONS,
        **(changes or {}),
    }
    path.write_text(json.dumps(config, indent=1))
    return path


def page(port: int) -> str:
    status, body = http_get(f"http://{LOOPBACK}:{port}/dokuwiki/doku.php?id={PAGE_ID}", timeout=30)
    assert status == 200, body[:500]
    return body


def marker(container: str) -> str:
    return podman("exec", container, "cat", MARKER).stdout.strip()


def listed(state: Path) -> dict:
    done = vatools("list", "--json", "--state-dir", str(state))
    assert done.returncode == 0, done.stderr
    entries = json.loads(done.stdout)
    assert len(entries) == 1
    return entries[0]


def digest_of(layout: Path) -> str:
    return json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]


# Bookworm only: the lifecycle is the same code for both suites (~95 s each here, most of it
# loading the image into podman's store and starting Apache), and test_image runs the trixie
# image in podman already.
@pytest.mark.suite("bookworm")
def test_deploy_update_rollback_remove_keep_the_data(
    wiki: str, layouts: dict[str, Path], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    port = free_port()
    config = write_config(tmp_path / "wiki.json", layouts["base"], port)
    container = f"vatools-{wiki}"

    done = vatools("deploy", wiki, str(config), "--state-dir", str(state))
    assert done.returncode == 0, done.stderr
    assert "systemd is not running" in done.stdout  # this host has no systemd as PID 1
    assert TITLE in http_get(f"http://{LOOPBACK}:{port}/dokuwiki/doku.php")[1]
    volumes = sorted(v for v in podman_lists()["volumes"] if v.startswith(container))
    assert f"{container}-var-lib" in volumes and f"{container}-etc-dokuwiki" in volumes

    # A page, written where dokuwiki keeps them: the /var/lib volume.
    wrote = podman("exec", container, "sh", "-c",
                   f"printf '%s\\n' '{PAGE_TEXT}' > /var/lib/dokuwiki/data/pages/{PAGE_ID}.txt"
                   f" && chown www-data: /var/lib/dokuwiki/data/pages/{PAGE_ID}.txt")
    assert wrote.returncode == 0, wrote.stderr
    assert PAGE_TEXT in page(port)

    # A newer image: started beside, probed, then serving; the page kept.
    done = vatools("update", wiki, "--image", str(layouts["newer"]), "--state-dir", str(state))
    assert done.returncode == 0, done.stderr
    assert "beside the serving one" in done.stderr
    assert marker(container) == "newer"
    assert PAGE_TEXT in page(port)
    entry = listed(state)
    assert (entry["current"], entry["health"], entry["digest"]) == (2, "healthy", digest_of(layouts["newer"]))
    assert entry["version"].endswith("+newer")
    serving = podman("inspect", "--format", "{{.Id}}", container).stdout

    # A broken image: apache2 refuses its configuration, the probe fails, the newer one serves on.
    done = vatools("update", wiki, "--image", str(layouts["broken"]), "--state-dir", str(state))
    assert done.returncode == 4, done.stdout + done.stderr
    assert "kept serving" in done.stderr and "ThisIsNoApacheDirective" in done.stderr
    assert podman("inspect", "--format", "{{.Id}}", container).stdout == serving
    assert marker(container) == "newer"
    assert PAGE_TEXT in page(port)
    entry = listed(state)
    assert entry["current"] == 2 and entry["serving_deployment"] == 2
    assert [d["status"] for d in entry["deployments"]] == ["retired", "current", "failed"]
    assert not [i for i in podman_lists()["images"] if i.endswith(f"localhost/{container}:3")]

    # Rollback: the first image again, the page kept.
    done = vatools("rollback", wiki, "--state-dir", str(state))
    assert done.returncode == 0, done.stderr
    assert marker(container) == ""
    assert PAGE_TEXT in page(port)
    entry = listed(state)
    assert (entry["current"], entry["digest"], entry["health"]) == (1, digest_of(layouts["base"]), "healthy")

    # Remove: container, images and state gone, the volumes kept.
    done = vatools("remove", wiki, "--state-dir", str(state))
    assert done.returncode == 0, done.stderr
    held = podman_lists()
    assert not [c for c in held["containers"] if c.startswith(container)]
    assert not [i for i in held["images"] if f"localhost/{container}:" in i]
    assert sorted(v for v in held["volumes"] if v.startswith(container)) == volumes
    assert not (state / wiki).exists()
    with pytest.raises(OSError):
        socket.create_connection((LOOPBACK, port), timeout=2).close()

    # Deployed again, it finds the page in the volumes.
    done = vatools("deploy", wiki, str(config), "--state-dir", str(state))
    assert done.returncode == 0, done.stderr
    assert PAGE_TEXT in page(port)

    done = vatools("remove", wiki, "--purge", "--state-dir", str(state))
    assert done.returncode == 0, done.stderr
    assert not [v for v in podman_lists()["volumes"] if v.startswith(container)]


def test_bad_configuration_is_refused_before_any_change(
    wiki: str, layouts: dict[str, Path], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    port = free_port()
    damaged = tmp_path / "damaged.oci"
    derive(layouts["base"], damaged, "damaged", {MARKER: "damaged\n"})
    index = json.loads((damaged / "index.json").read_text())
    index["manifests"][0]["digest"] = "sha256:" + "0" * 64
    (damaged / "index.json").write_text(json.dumps(index))
    base = layouts["base"]
    cases: list[tuple[dict[str, object], str]] = [
        ({"colour": "blue"}, "colour: unknown key"),
        ({"resources": {"memory": "plenty"}}, "resources.memory: 'plenty' is not a size"),
        ({"ports": [{"container": 80, "host": port, "address": "localhost"}]},
         "ports[0].address: 'localhost' is not an IP address"),
        ({"security": {"cap_add": ["CAP_FLY"]}}, "security.cap_add[0]: 'CAP_FLY' is not a capability"),
        ({"health": {"port": 443}}, "health.port: 443 is not a published container port"),
        ({"image": str(tmp_path / "missing.oci")}, "missing.oci: no such directory or file"),
        ({"image": str(damaged)}, f"blob sha256:{'0' * 64} is missing"),
    ]
    before = podman_lists()
    for changes, message in cases:
        config = write_config(tmp_path / "bad.json", base, port, changes)
        done = vatools("deploy", wiki, str(config), "--state-dir", str(state))
        assert done.returncode == 3, (changes, done.stdout, done.stderr)
        assert message in done.stderr, done.stderr
        assert "hint:" in done.stderr
    # A host port in use is refused too.
    with socket.socket() as busy:
        busy.bind((LOOPBACK, port))
        busy.listen()
        done = vatools("deploy", wiki, str(write_config(tmp_path / "ok.json", base, port)),
                       "--state-dir", str(state))
    assert done.returncode == 3 and f"ports[0].host: {LOOPBACK}:{port} is in use" in done.stderr
    assert podman_lists() == before
    assert list(state.iterdir()) == []
