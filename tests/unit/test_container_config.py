"""The container configuration: every bad key or value refused with its name, good ones read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vatools.container.config import Config, load_config, parse_config
from vatools.container.podman import RunSpec, run_argv, volume_slug
from vatools.errors import VatoolsError

GOOD = {
    "image": "/srv/wiki.oci",
    "env": {"TZ": "UTC"},
    "volumes": {"/var/lib/": "data"},
    "ports": [{"container": 80, "host": 8080}, {"container": 8080, "host": 8081, "address": "::1"}],
    "resources": {"memory": "512M", "cpus": 1.5, "pids": 256},
    "security": {"read_only": False, "no_new_privileges": True, "cap_drop": ["CAP_NET_RAW"],
                 "cap_add": ["CHOWN"]},
    "health": {"path": "/doku.php", "status": 200, "text": "Wiki", "deadline": 30},
    "update": {"strategy": "in-place"},
    "runtime": "runc",
    "ulimits": {"nofile": "1024:1024"},
}


def test_a_good_configuration_is_read_whole() -> None:
    config = parse_config(GOOD, "wiki.json")
    assert config.volumes == {"/var/lib": "data"}
    assert [(p.address, p.host, p.container) for p in config.ports] == [
        ("127.0.0.1", 8080, 80), ("::1", 8081, 8080)]
    assert config.resources.memory == "512m" and config.resources.cpus == 1.5
    assert config.security.cap_drop == ("NET_RAW",) and config.security.cap_add == ("CHOWN",)
    assert config.health.port == 80 and config.health.deadline == 30.0
    assert config.strategy == "in-place" and config.runtime == "runc"


def test_the_json_form_reads_back_the_same() -> None:
    config = parse_config(GOOD, "wiki.json")
    assert parse_config(json.loads(json.dumps(config.to_json())), "state") == config


def test_defaults_are_the_safe_ones() -> None:
    config = parse_config({"image": "/x", "ports": [{"container": 80, "host": 8080}]}, "f")
    assert config.security.read_only and config.security.no_new_privileges
    assert config.ports[0].address == "127.0.0.1"
    assert config.strategy == "beside" and config.health.path == "/" and config.health.status == 200


def _with(path: str, value: object) -> dict:
    data = json.loads(json.dumps(GOOD))
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


BAD = [
    (_with("colour", "red"), "wiki.json: colour: unknown key"),
    ({"env": {}}, "wiki.json: image: missing"),
    (_with("image", 7), "wiki.json: image: 7 is not a path"),
    (_with("env", {"1X": "y"}), "env.1X: '1X' is not a variable name"),
    (_with("env", {"X": 1}), "env.X: 1 is not a valid value"),
    (_with("volumes", {"var/lib": "data"}), "volumes.var/lib: 'var/lib' is not an absolute path"),
    (_with("volumes", {"/a": "Data!"}), "volumes./a: 'Data!' is not a volume name"),
    (_with("volumes", {"/a": "d", "/b": "d"}), "volumes: two paths share one volume name"),
    (_with("ports", {"container": 80}), "ports: {\"container\": 80} is not a list"),
    (_with("ports.0", {"container": 80}), "ports[0]: needs both 'container' and 'host' ports"),
    (_with("ports.0", {"container": 80, "host": 70000}), "ports[0].host: 70000 is not a whole number"),
    (_with("ports.0", {"container": "80", "host": 1}), "ports[0].container: '80' is not a whole number"),
    (_with("ports.0", {"container": 80, "host": 1, "address": "localhost"}),
     "ports[0].address: 'localhost' is not an IP address"),
    (_with("ports.0", {"container": 80, "host": 8081, "address": "::1"}),
     "ports: a host address and port are used twice"),
    (_with("resources.memory", "lots"), "resources.memory: 'lots' is not a size"),
    (_with("resources.memory", "1k"), "resources.memory: '1k' is too small"),
    (_with("resources.cpus", 0), "resources.cpus: 0 is not a number of CPUs"),
    (_with("resources.cpus", True), "resources.cpus: True is not a number of CPUs"),
    (_with("resources.pids", 2), "resources.pids: 2 is not a whole number from 8"),
    (_with("resources.disk", "1g"), "resources.disk: unknown key"),
    (_with("security.read_only", "yes"), "security.read_only: 'yes' is not true or false"),
    (_with("security.cap_add", ["CAP_FLY"]), "security.cap_add[0]: 'CAP_FLY' is not a capability"),
    (_with("security.cap_add", ["net_raw"]), "security.cap_add[0]: 'net_raw' is not a capability name"),
    (_with("security.cap_add", ["NET_RAW"]), "security.cap_add: 'NET_RAW' is also in security.cap_drop"),
    (_with("health.port", 443), "health.port: 443 is not a published container port"),
    (_with("health.path", "doku.php"), "health.path: 'doku.php' is not a URL path"),
    (_with("health.status", 999), "health.status: 999 is not a whole number"),
    (_with("health.deadline", 0), "health.deadline: 0 is not a number of seconds"),
    (_with("health.timeout", 5), "health.timeout: unknown key"),
    (_with("update.strategy", "blue-green"), "update.strategy: 'blue-green' is not one of beside, in-place"),
    (_with("runtime", "run c"), "runtime: 'run c' is not a runtime name"),
    (_with("ulimits", {"nofile": "many"}), "ulimits.nofile: 'many' is not SOFT:HARD"),
    ({"image": "/x", "health": {"path": "/"}}, "health: a probe needs a published port"),
    ([1, 2], "wiki.json: : [1, 2] is not an object"),
]


@pytest.mark.parametrize("data, message", BAD, ids=[m for _, m in BAD])
def test_bad_values_are_refused_naming_the_key(data: object, message: str) -> None:
    with pytest.raises(VatoolsError) as caught:
        parse_config(data, "wiki.json")
    assert message in caught.value.message
    assert caught.value.hint


def test_a_file_with_a_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "wiki.json"
    path.write_text('{"image": "x",\n "env": {,}}\n')
    with pytest.raises(VatoolsError, match=r"wiki.json:2: not JSON"):
        load_config(path)


def test_a_relative_image_is_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "wiki.json"
    path.write_text(json.dumps({"image": "images/wiki.oci"}))
    assert load_config(path).image == str(tmp_path / "images/wiki.oci")


def test_the_podman_command_line_carries_every_setting() -> None:
    config = parse_config(GOOD, "wiki.json")
    argv = run_argv(RunSpec("vatools-wiki", "localhost/vatools-wiki:3", "wiki", 3, config,
                            {"/var/lib": "vatools-wiki-data"}, {80: 8080, 8080: 8081}), detach=True)
    line = " ".join(argv)
    assert argv[:3] == ["podman", "--runtime", "runc"]
    for part in ("--memory 512m", "--cpus 1.5", "--pids-limit 256", "--ulimit nofile=1024:1024",
                 "--security-opt no-new-privileges", "--cap-drop NET_RAW", "--cap-add CHOWN",
                 "-e TZ=UTC", "-v vatools-wiki-data:/var/lib", "-p 127.0.0.1:8080:80", "-p [::1]:8081:8080",
                 "--label io.vatools.deployment=3"):
        assert part in line
    assert "--read-only" not in argv
    assert argv[-1] == "localhost/vatools-wiki:3"
    assert Config(image="/x").security.read_only


def test_volume_names_from_paths() -> None:
    assert volume_slug("/var/lib") == "var-lib"
    assert volume_slug("/etc/dokuwiki/") == "etc-dokuwiki"
    assert volume_slug("/") == "root"
