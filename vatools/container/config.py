"""A container deployment's configuration: one JSON file, checked whole before anything changes.

Every error names the file, the key (dotted: `resources.memory`) and the value at fault.

>>> config = parse_config({"image": "/srv/wiki.oci", "ports": [{"container": 80, "host": 8080}]},
...                       "wiki.json")
>>> config.ports[0].address, config.security.read_only, config.health.port
('127.0.0.1', True, 80)
>>> parse_config({"image": "/x", "resources": {"memory": "lots"}}, "wiki.json")
Traceback (most recent call last):
...
vatools.errors.VatoolsError: wiki.json: resources.memory: 'lots' is not a size
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vatools.errors import VatoolsError

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,40}$")
VOLUME_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,40}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SIZE = re.compile(r"^[1-9][0-9]*[bkmg]?$")
ULIMIT = re.compile(r"^[0-9]+(:[0-9]+)?$")
CAPABILITY = re.compile(r"^(CAP_)?[A-Z_]+$")
# The kernel's capabilities (capabilities(7)), for a clear error on a misspelt one.
CAPABILITIES = frozenset(
    "AUDIT_CONTROL AUDIT_READ AUDIT_WRITE BLOCK_SUSPEND BPF CHECKPOINT_RESTORE CHOWN DAC_OVERRIDE"
    " DAC_READ_SEARCH FOWNER FSETID IPC_LOCK IPC_OWNER KILL LEASE LINUX_IMMUTABLE MAC_ADMIN"
    " MAC_OVERRIDE MKNOD NET_ADMIN NET_BIND_SERVICE NET_BROADCAST NET_RAW PERFMON SETFCAP SETGID"
    " SETPCAP SETUID SYS_ADMIN SYS_BOOT SYS_CHROOT SYS_MODULE SYS_NICE SYS_PACCT SYS_PTRACE"
    " SYS_RAWIO SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG SYSLOG WAKE_ALARM ALL".split()
)
STRATEGIES = ("beside", "in-place")
KEYS = {"image", "env", "volumes", "ports", "resources", "security", "health", "update", "runtime",
        "ulimits"}


@dataclass(frozen=True)
class Port:
    container: int
    host: int
    address: str = "127.0.0.1"


@dataclass(frozen=True)
class Resources:
    memory: str | None = None
    cpus: float | None = None
    pids: int | None = None


@dataclass(frozen=True)
class Security:
    read_only: bool = True
    no_new_privileges: bool = True
    cap_drop: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()


@dataclass(frozen=True)
class Health:
    """An HTTP probe: GET path on the host side of `port`, until `deadline` seconds have passed."""

    port: int | None = None  # a container port; None: the first one published
    path: str = "/"
    status: int = 200
    text: str = ""
    deadline: float = 120.0


@dataclass(frozen=True)
class Config:
    image: str
    env: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, str] = field(default_factory=dict)  # container path -> volume name
    ports: tuple[Port, ...] = ()
    resources: Resources = Resources()
    security: Security = Security()
    health: Health = Health()
    strategy: str = "beside"
    runtime: str | None = None  # podman's --runtime (runc where crun fails on hybrid cgroups)
    ulimits: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The configuration in the file's own form (parse_config reads it back)."""
        data = asdict(self)
        data["update"] = {"strategy": data.pop("strategy")}
        data["security"]["cap_drop"] = list(self.security.cap_drop)
        data["security"]["cap_add"] = list(self.security.cap_add)
        data["ports"] = [asdict(p) for p in self.ports]
        if data["runtime"] is None:
            del data["runtime"]
        return data

    def with_image(self, image: str) -> Config:
        from dataclasses import replace

        return replace(self, image=image)


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str, hint: str | None = None) -> VatoolsError:
        return VatoolsError(f"{self.source}: {key}: {message}",
                            hint or "correct the configuration file; see vatools(1), CONTAINER CONFIGURATION")

    def mapping(self, value: Any, key: str, allowed: set[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"{_show(value)} is not an object")
        if allowed is not None:
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise self.fail(f"{key}.{unknown[0]}" if key else unknown[0], "unknown key",
                                f"known keys here: {', '.join(sorted(allowed))}")
        return value

    def string(self, value: Any, key: str, pattern: re.Pattern[str] | None = None,
               what: str = "a valid value") -> str:
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            raise self.fail(key, f"{_show(value)} is not {what}")
        return value

    def integer(self, value: Any, key: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"{_show(value)} is not a whole number from {low} to {high}")
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"{_show(value)} is not true or false")
        return value


def _show(value: Any) -> str:
    return repr(value) if not isinstance(value, (dict, list)) else json.dumps(value)[:60]


def parse_config(data: Any, source: str) -> Config:
    """The checked configuration; the first problem found is a VatoolsError naming its key."""
    check = _Checker(source)
    top = check.mapping(data, "", KEYS)
    if "image" not in top:
        raise check.fail("image", "missing: the OCI image layout directory or archive to run")
    image = check.string(top["image"], "image", re.compile(r"."), "a path")
    env = {
        check.string(k, f"env.{k}", ENV_NAME, "a variable name"): check.string(v, f"env.{k}")
        for k, v in check.mapping(top.get("env", {}), "env").items()
    }
    volumes: dict[str, str] = {}
    for path, name in check.mapping(top.get("volumes", {}), "volumes").items():
        if not path.startswith("/") or "//" in path or "/../" in f"{path}/":
            raise check.fail(f"volumes.{path}", f"{path!r} is not an absolute path in the container")
        volumes[path.rstrip("/") or "/"] = check.string(name, f"volumes.{path}", VOLUME_NAME,
                                                        "a volume name (a-z, 0-9, _ . -)")
    if len(set(volumes.values())) != len(volumes):
        raise check.fail("volumes", "two paths share one volume name")
    ports = tuple(_port(check, entry, f"ports[{i}]") for i, entry in
                  enumerate(_list(check, top.get("ports", []), "ports")))
    seen = [(p.address, p.host) for p in ports]
    if len(set(seen)) != len(seen):
        raise check.fail("ports", "a host address and port are used twice")
    resources = _resources(check, check.mapping(top.get("resources", {}), "resources",
                                                {"memory", "cpus", "pids"}))
    security = _security(check, check.mapping(top.get("security", {}), "security",
                                              {"read_only", "no_new_privileges", "cap_drop", "cap_add"}))
    health = _health(check, check.mapping(top.get("health", {}), "health",
                                          {"port", "path", "status", "text", "deadline"}), ports)
    update = check.mapping(top.get("update", {}), "update", {"strategy"})
    strategy = update.get("strategy", "beside")
    if strategy not in STRATEGIES:
        raise check.fail("update.strategy", f"{_show(strategy)} is not one of {', '.join(STRATEGIES)}")
    runtime = top.get("runtime")
    if runtime is not None:
        check.string(runtime, "runtime", re.compile(r"^[a-z0-9_.-]+$"), "a runtime name (runc, crun)")
    ulimits = {
        check.string(k, f"ulimits.{k}", re.compile(r"^[a-z]+$"), "a limit name"):
            check.string(v, f"ulimits.{k}", ULIMIT, "SOFT:HARD")
        for k, v in check.mapping(top.get("ulimits", {}), "ulimits").items()
    }
    return Config(image, env, volumes, ports, resources, security, health, strategy, runtime, ulimits)


def _list(check: _Checker, value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise check.fail(key, f"{_show(value)} is not a list")
    return value


def _port(check: _Checker, entry: Any, key: str) -> Port:
    entry = check.mapping(entry, key, {"container", "host", "address"})
    if "container" not in entry or "host" not in entry:
        raise check.fail(key, "needs both 'container' and 'host' ports")
    address = entry.get("address", "127.0.0.1")
    try:
        ipaddress.ip_address(address)
    except (ValueError, TypeError):
        raise check.fail(f"{key}.address", f"{_show(address)} is not an IP address") from None
    return Port(check.integer(entry["container"], f"{key}.container", 1, 65535),
                check.integer(entry["host"], f"{key}.host", 1, 65535), address)


def _resources(check: _Checker, given: dict[str, Any]) -> Resources:
    memory = given.get("memory")
    if memory is not None:
        if not isinstance(memory, str) or not SIZE.match(memory.lower()):
            raise check.fail("resources.memory", f"{_show(memory)} is not a size",
                             "give bytes with an optional unit: 512m, 2g")
        if _bytes(memory) < 6 << 20:
            raise check.fail("resources.memory", f"{memory!r} is too small", "give at least 6m")
    cpus = given.get("cpus")
    if cpus is not None and (isinstance(cpus, bool) or not isinstance(cpus, (int, float))
                             or not 0 < cpus <= 1024):
        raise check.fail("resources.cpus", f"{_show(cpus)} is not a number of CPUs above 0")
    pids = given.get("pids")
    if pids is not None:
        check.integer(pids, "resources.pids", 8, 1 << 22)
    return Resources(memory.lower() if memory else None, float(cpus) if cpus is not None else None, pids)


def _bytes(size: str) -> int:
    units = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    size = size.lower()
    return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)


def _security(check: _Checker, given: dict[str, Any]) -> Security:
    caps: dict[str, tuple[str, ...]] = {}
    for key in ("cap_drop", "cap_add"):
        names = []
        for i, cap in enumerate(_list(check, given.get(key, []), f"security.{key}")):
            name = check.string(cap, f"security.{key}[{i}]", CAPABILITY, "a capability name")
            name = name.removeprefix("CAP_")
            if name not in CAPABILITIES:
                raise check.fail(f"security.{key}[{i}]", f"{cap!r} is not a capability",
                                 "see capabilities(7): CHOWN, NET_BIND_SERVICE, ...")
            names.append(name)
        caps[key] = tuple(names)
    both = set(caps["cap_drop"]) & set(caps["cap_add"])
    if both:
        raise check.fail("security.cap_add", f"{sorted(both)[0]!r} is also in security.cap_drop")
    return Security(
        check.boolean(given.get("read_only", True), "security.read_only"),
        check.boolean(given.get("no_new_privileges", True), "security.no_new_privileges"),
        caps["cap_drop"], caps["cap_add"],
    )


def _health(check: _Checker, given: dict[str, Any], ports: tuple[Port, ...]) -> Health:
    port = given.get("port")
    if port is not None:
        check.integer(port, "health.port", 1, 65535)
        if port not in {p.container for p in ports}:
            raise check.fail("health.port", f"{port} is not a published container port",
                             "publish it under 'ports', or probe one that is")
    elif ports:
        port = ports[0].container
    elif given:
        raise check.fail("health", "a probe needs a published port", "add one under 'ports'")
    path = check.string(given.get("path", "/"), "health.path", re.compile(r"^/[^\s]*$"),
                        "a URL path starting with /")
    status = check.integer(given.get("status", 200), "health.status", 100, 599)
    text = check.string(given.get("text", ""), "health.text")
    deadline = given.get("deadline", 120)
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or not 1 <= deadline <= 3600:
        raise check.fail("health.deadline", f"{_show(deadline)} is not a number of seconds from 1 to 3600")
    return Health(port, path, status, text, float(deadline))


def load_config(path: Path) -> Config:
    """Read and check a configuration file; a relative image path is relative to the file."""
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise VatoolsError(f"{path}: cannot read: {error.strerror}",
                           hint="give the deployment's JSON configuration file") from None
    except json.JSONDecodeError as error:
        raise VatoolsError(f"{path}:{error.lineno}: not JSON: {error.msg}",
                           hint="fix the JSON syntax at that line") from None
    config = parse_config(data, str(path))
    image = Path(config.image)
    if not image.is_absolute():
        config = config.with_image(str((path.parent / image).resolve()))
    return config
