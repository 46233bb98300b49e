"""Deploy, update, roll back and remove appliance containers, the rpm-ostree way.

Every input is checked before anything changes (configuration, image layout and digests,
free host ports). An update loads and verifies the new image, then (strategy "beside")
runs it next to the serving container on spare ports with the same volumes until the
health probe passes; only then is the serving container replaced, and probed again. A
new deployment becomes current only when healthy; otherwise the old one keeps serving, or
is started again, and the failure is reported (RolledBack, exit 4). Volumes are named
after the container and never removed except by `remove --purge`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vatools.container import podman as names
from vatools.container.config import Config, Port, load_config, parse_config, NAME
from vatools.container.image import OciImage, read_image
from vatools.container.podman import Podman, RunSpec, run_argv
from vatools.container.probe import Verdict, probe_once, wait_healthy
from vatools.container.state import Deployment, History, Store
from vatools.container.unit import UNIT_DIR, systemd_running, unit_name, unit_text
from vatools.errors import RollbackIncomplete, RolledBack, UsageError, VatoolsError
from vatools.run import require_tool, run

Say = Callable[[str], None]


@dataclass(frozen=True)
class Outcome:
    name: str
    deployment: Deployment
    how: str  # how the serving container runs: "systemd unit X" or "detached (no systemd)"
    verdict: Verdict | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "deployment": self.deployment.id, "version": self.deployment.version,
                "digest": self.deployment.digest, "image": self.deployment.image, "runs": self.how,
                "health": str(self.verdict) if self.verdict else None, "message": self.message}


def require_tools() -> None:
    require_tool("podman")
    require_tool("skopeo")


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise UsageError(f"container name {name!r}: use a-z, 0-9, '_', '.', '-' (at most 41 characters)",
                         hint="e.g. vatools container deploy wiki wiki.json")


def probe_address(port: Port) -> str:
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(port.address, port.address)


def port_free(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def spare_port(address: str) -> int:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((probe_address(Port(0, 0, address)), 0))
        return int(sock.getsockname()[1])


class Containers:
    """The deployments under one state directory, run by one podman."""

    def __init__(self, state_dir: Path, say: Say, podman: Podman | None = None,
                 use_systemd: bool | None = None) -> None:
        self.store = Store(state_dir)
        self.say = say
        self.podman = podman or Podman()
        self.use_systemd = systemd_running() if use_systemd is None else use_systemd

    # -- checks before any change ------------------------------------------------------

    def _checked_image(self, config: Config) -> OciImage:
        image = read_image(Path(config.image))
        exposed = {e.split("/")[0] for e in image.exposed}
        for i, port in enumerate(config.ports):
            if exposed and str(port.container) not in exposed:
                self.say(f"note: ports[{i}].container {port.container} is not a port the image exposes"
                         f" ({', '.join(sorted(image.exposed))})")
        return image

    def _check_ports_free(self, config: Config, held: tuple[Port, ...] = ()) -> None:
        for i, port in enumerate(config.ports):
            if (port.address, port.host) in {(p.address, p.host) for p in held}:
                continue
            if not port_free(port.address, port.host):
                raise VatoolsError(f"ports[{i}].host: {port.address}:{port.host} is in use",
                                   hint="choose a free host port in the configuration")

    # -- deploy ------------------------------------------------------------------------

    def deploy(self, name: str, config_path: Path, image: Path | None) -> Outcome:
        check_name(name)
        config = load_config(config_path)
        if image is not None:
            config = config.with_image(str(image.resolve()))
        if self.store.exists(name):
            raise VatoolsError(f"container {name} is already deployed",
                               hint=f"update it: vatools container update {name} --image IMAGE")
        require_tools()
        oci = self._checked_image(config)
        self._check_ports_free(config)
        if self.podman.exists(names.container_name(name)):
            raise VatoolsError(f"a podman container {names.container_name(name)} exists but {name} is"
                               f" not deployed here ({self.store.directory(name)})",
                               hint=f"remove it (podman rm -f {names.container_name(name)}) or choose another name")
        with self.store.locked(name):
            history = History(name)
            deployment = history.add(image=str(oci.path), digest=oci.digest, version=oci.version,
                                     config=config.to_json(), note="deploy")
            made_volumes: list[str] = []
            try:
                self._load(name, deployment, oci)
                volumes = self._volumes(name, config, oci, made_volumes)
                how = self._serve(name, deployment, config, volumes)
                verdict = self._probe(names.container_name(name), config)
                if not verdict.healthy:
                    raise RolledBack(f"deployment {deployment.id} of {name} ({oci.version}) is {verdict}",
                                     hint=f"see the container's output: {self._logs_hint(name)}")
            except BaseException as error:
                self.say(f"deploy failed: removing what it made ({error})")
                logs = self.podman.logs(names.container_name(name))
                self._unserve(name)
                self._remove_unit(name)
                self.podman.remove_image(names.image_name(name, deployment.id))
                for volume in made_volumes:
                    self.podman.remove_volume(volume)
                if isinstance(error, VatoolsError) and not isinstance(error, RolledBack):
                    raise RolledBack(f"deploy of {name} failed: {error.message}", error.hint) from error
                if isinstance(error, RolledBack) and logs.strip():
                    error.message += "\ncontainer output:\n" + logs.strip()[-1500:]
                raise
            deployment.health = str(verdict)
            history.make_current(deployment)
            self.store.save(history)
        return Outcome(name, deployment, how, verdict,
                       f"{name}: deployment {deployment.id} ({oci.title} {oci.version}) serving, {verdict}; {how}")

    # -- update and rollback ----------------------------------------------------------

    def update(self, name: str, image: Path | None, config_path: Path | None) -> Outcome:
        check_name(name)
        history = self.store.load(name)
        current = history.current
        old_config = parse_config(current.config, str(self.store.directory(name) / "history.json"))
        config = load_config(config_path) if config_path else old_config
        if image is not None:
            config = config.with_image(str(image.resolve()))
        require_tools()
        oci = self._checked_image(config)
        if oci.digest == current.digest and config == old_config:
            raise VatoolsError(f"{name} already runs {oci.digest} ({oci.version}) with this configuration",
                               hint="give a newer image with --image, or a changed configuration with --config")
        self._check_ports_free(config, held=old_config.ports)
        with self.store.locked(name):
            history = self.store.load(name)
            deployment = history.add(image=str(oci.path), digest=oci.digest, version=oci.version,
                                     config=config.to_json(), note="update")
            try:
                self._load(name, deployment, oci)
            except VatoolsError as error:
                history.deployments.remove(deployment)
                self.podman.remove_image(names.image_name(name, deployment.id))
                raise RolledBack(f"update of {name}: {error.message}", error.hint) from error
            volumes = self._volumes(name, config, oci, [])
            if config.strategy == "beside":
                verdict = self._try_beside(name, deployment, config, volumes)
                if not verdict.healthy:
                    self._fail(history, deployment, verdict)
                    raise RolledBack(
                        f"update of {name} to {oci.version} ({oci.digest[:19]}) failed beside the serving"
                        f" container: {verdict}; deployment {current.id} ({current.version}) kept serving",
                        hint=f"deployment {deployment.id} is marked failed: vatools container status {name}")
            return self._switch(history, current, deployment, config, volumes, "update")

    def rollback(self, name: str) -> Outcome:
        check_name(name)
        history = self.store.load(name)
        current = history.current
        target = history.previous()
        config = parse_config(target.config, str(self.store.directory(name) / "history.json"))
        require_tools()
        if not self.podman.image_exists(names.image_name(name, target.id)):
            oci = read_image(Path(target.image))
            if oci.digest != target.digest:
                raise VatoolsError(f"deployment {target.id}'s image was removed and {target.image} now holds"
                                   f" {oci.digest}, not {target.digest}",
                                   hint="deploy the image you want with vatools container update --image")
        else:
            oci = None
        with self.store.locked(name):
            history = self.store.load(name)
            target = history.get(target.id) or target
            current = history.current
            if oci is not None:
                self._load(name, target, oci)
            volumes = self._volumes_of_deployment(name, config, target)
            return self._switch(history, current, target, config, volumes, f"rollback to {target.id}")

    def _switch(self, history: History, current: Deployment, new: Deployment, config: Config,
                volumes: dict[str, str], what: str) -> Outcome:
        """Replace the serving container by `new`'s; put the current one back if it is unhealthy."""
        name = history.name
        container = names.container_name(name)
        self.say(f"{what}: replacing deployment {current.id} by {new.id}")
        try:
            self._unserve(name)
            how = self._serve(name, new, config, volumes)
            verdict = self._probe(container, config)
        except VatoolsError as error:
            verdict = Verdict(False, error.message, 0.0)
            how = ""
        except KeyboardInterrupt:
            verdict = Verdict(False, "interrupted", 0.0)
            how = ""
        if verdict.healthy:
            new.health = str(verdict)
            history.make_current(new)
            self.store.save(history)
            self._prune(history)
            return Outcome(name, new, how, verdict,
                           f"{name}: {what}: deployment {new.id} ({new.version}) serving, {verdict}; {how}")
        logs = self.podman.logs(container)
        self.say(f"{what}: deployment {new.id} is {verdict}; starting deployment {current.id} again")
        if what == "update":
            self._fail(history, new, verdict)
        old_config = parse_config(current.config, "history")
        try:
            self._unserve(name)
            self._serve(name, current, old_config, self._volumes_of_deployment(name, old_config, current))
            restored = self._probe(container, old_config)
        except VatoolsError as error:
            restored = Verdict(False, error.message, 0.0)
        tail = ("\ncontainer output:\n" + logs.strip()[-1500:]) if logs.strip() else ""
        if not restored.healthy:
            raise RollbackIncomplete(
                f"{name}: {what} failed ({verdict}), and deployment {current.id} is {restored} after"
                f" starting it again{tail}",
                hint=f"look at `podman logs {container}`, then `vatools container rollback {name}`")
        raise RolledBack(f"{name}: {what} failed: deployment {new.id} ({new.version}) is {verdict};"
                         f" deployment {current.id} ({current.version}) serves again{tail}",
                         hint=f"see vatools container status {name}")

    def _fail(self, history: History, deployment: Deployment, verdict: Verdict) -> None:
        deployment.status = "failed"
        deployment.health = str(verdict)
        self.store.save(history)
        self.podman.remove_image(names.image_name(history.name, deployment.id))

    def _try_beside(self, name: str, deployment: Deployment, config: Config,
                    volumes: dict[str, str]) -> Verdict:
        candidate = names.candidate_name(name)
        host_ports = {p.container: spare_port(p.address) for p in config.ports}
        spec = RunSpec(candidate, names.image_name(name, deployment.id), name, deployment.id, config,
                       volumes, host_ports)
        self.say(f"update: starting deployment {deployment.id} ({deployment.version}) beside the serving"
                 f" one, on port(s) {', '.join(str(p) for p in host_ports.values())}")
        self.podman.stop_and_remove(candidate)
        try:
            self.podman.start(spec)
            verdict = self._probe(candidate, config, host_ports)
        except VatoolsError as error:
            verdict = Verdict(False, error.message, 0.0)
        if not verdict.healthy:
            logs = self.podman.logs(candidate).strip()
            if logs:
                verdict = Verdict(False, f"{verdict.detail}\ncontainer output:\n{logs[-1500:]}", verdict.seconds)
        self.podman.stop_and_remove(candidate)
        return verdict

    # -- remove -------------------------------------------------------------------------

    def remove(self, name: str, purge: bool) -> list[str]:
        check_name(name)
        history = self.store.load(name)
        removed: list[str] = []
        with self.store.locked(name):
            self._unserve(name)
            self.podman.stop_and_remove(names.candidate_name(name))
            removed.append(f"container {names.container_name(name)}")
            if self._remove_unit(name):
                removed.append(f"unit {UNIT_DIR / unit_name(name)}")
            for deployment in history.deployments:
                tag = names.image_name(name, deployment.id)
                if self.podman.image_exists(tag):
                    self.podman.remove_image(tag)
                    removed.append(f"image {tag}")
            volumes = self.podman.volumes_of(name)
            if purge:
                for volume in volumes:
                    self.podman.remove_volume(volume)
                    removed.append(f"volume {volume}")
            self.store.remove(name)
        if not purge and volumes:
            self.say(f"kept the volumes {', '.join(volumes)} (remove them with --purge)")
        return removed

    # -- reading ------------------------------------------------------------------------

    def describe(self, name: str, probe: bool = True) -> dict[str, Any]:
        history = self.store.load(name)
        container = names.container_name(name)
        running = self.podman.running(container)
        entry: dict[str, Any] = {"name": name, "container": container, "running": running,
                                 "serving_deployment": self.podman.deployment_of(container) if running else None}
        current = history.get(history.current_id) if history.current_id is not None else None
        if current is not None:
            config = parse_config(current.config, "history")
            entry.update(current=current.id, version=current.version, digest=current.digest,
                         image=current.image,
                         ports=[f"{p.address}:{p.host}->{p.container}" for p in config.ports])
            health = "stopped"
            if running and probe and config.ports:
                port = next(p for p in config.ports if p.container == config.health.port)
                healthy, detail = probe_once(probe_address(port), port.host, config.health, timeout=3)
                health = "healthy" if healthy else f"unhealthy: {detail}"
            elif running:
                health = "running (no probe)"
            entry["health"] = health
        entry["deployments"] = [
            {"id": d.id, "status": d.status, "version": d.version, "digest": d.digest, "image": d.image,
             "note": d.note, "created": d.created, "health": d.health}
            for d in history.deployments
        ]
        return entry

    def names(self) -> list[str]:
        return self.store.names()

    # -- the parts ----------------------------------------------------------------------

    def _load(self, name: str, deployment: Deployment, oci: OciImage) -> None:
        """Pull the image, check podman's digest against the layout's, tag it for the deployment."""
        self.say(f"loading {oci.reference} ({oci.title} {oci.version})")
        tag = names.image_name(name, deployment.id)
        image_id = self.podman.load(oci.reference, tag)
        loaded = self.podman.image_digest(image_id)
        if loaded != oci.digest:
            self.podman.remove_image(tag)
            raise VatoolsError(f"podman loaded {oci.path} as {loaded}, but its index names {oci.digest}",
                               hint="the layout changed while loading, or is damaged: copy it again")

    def _volumes(self, name: str, config: Config, oci: OciImage, made: list[str]) -> dict[str, str]:
        """A named volume for each configured path and each path the image declares."""
        wanted = {path: names.volume_slug(path) for path in oci.volumes}
        wanted.update(config.volumes)
        volumes = {path: names.volume_name(name, short) for path, short in wanted.items()}
        for volume in sorted(set(volumes.values())):
            if not self.podman.volume_exists(volume):
                self.podman.create_volume(volume, name)
                made.append(volume)
        return volumes

    def _volumes_of_deployment(self, name: str, config: Config, deployment: Deployment) -> dict[str, str]:
        declared = self.podman.image_volumes(names.image_name(name, deployment.id))
        wanted = {path: names.volume_slug(path) for path in declared}
        wanted.update(config.volumes)
        volumes = {path: names.volume_name(name, short) for path, short in wanted.items()}
        for volume in volumes.values():
            self.podman.create_volume(volume, name)
        return volumes

    def _serve(self, name: str, deployment: Deployment, config: Config, volumes: dict[str, str]) -> str:
        """Start the deployment as the serving container; say how it runs."""
        spec = RunSpec(names.container_name(name), names.image_name(name, deployment.id), name,
                       deployment.id, config, volumes, {p.container: p.host for p in config.ports})
        if self.use_systemd:
            unit = UNIT_DIR / unit_name(name)
            unit.write_text(unit_text(name, run_argv(spec, detach=False), spec.container))
            run(["systemctl", "daemon-reload"])
            run(["systemctl", "enable", unit_name(name)])
            run(["systemctl", "restart", unit_name(name)])
            return f"systemd unit {unit_name(name)}"
        self.podman.start(spec)
        return "detached with podman run -d: systemd is not running, so nothing restarts it at boot"

    def _remove_unit(self, name: str) -> bool:
        unit = UNIT_DIR / unit_name(name)
        if not unit.exists():
            return False
        run(["systemctl", "disable", unit_name(name)], check=False)
        unit.unlink()
        run(["systemctl", "daemon-reload"], check=False)
        return True

    def _unserve(self, name: str) -> None:
        if self.use_systemd and (UNIT_DIR / unit_name(name)).exists():
            run(["systemctl", "stop", unit_name(name)], check=False)
        self.podman.stop_and_remove(names.container_name(name))

    def _probe(self, container: str, config: Config, host_ports: dict[int, int] | None = None) -> Verdict:
        if not config.ports:
            running = self.podman.running(container)
            return Verdict(running, "running" if running else "the container stopped", 0.0)
        port = next(p for p in config.ports if p.container == config.health.port)
        host = (host_ports or {}).get(port.container, port.host)
        self.say(f"probing http://{probe_address(port)}:{host}{config.health.path}"
                 f" (up to {config.health.deadline:.0f} s)")
        return wait_healthy(probe_address(port), host, config.health, lambda: self.podman.running(container))

    def _prune(self, history: History) -> None:
        keep = history.kept_images()
        for deployment in history.deployments:
            if deployment.id not in keep:
                self.podman.remove_image(names.image_name(history.name, deployment.id))

    def _logs_hint(self, name: str) -> str:
        return f"podman logs {names.container_name(name)}"
