"""Debian's podman (rootful), driven through its command line; nothing else talks to podman.

Names: the image of deployment N of NAME is tagged localhost/vatools-NAME:N; the serving
container is vatools-NAME, a candidate started beside it vatools-NAME-next; volumes are
vatools-NAME-VOLUME. Everything carries the label io.vatools.container=NAME.

>>> spec = RunSpec("vatools-wiki", "localhost/vatools-wiki:1", "wiki", 1,
...                Config(image="/x", ports=(Port(80, 8080),), runtime="runc"),
...                {"/var/lib": "vatools-wiki-var-lib"}, {80: 8080})
>>> " ".join(run_argv(spec, detach=True))  # doctest: +NORMALIZE_WHITESPACE
'podman --runtime runc run -d --name vatools-wiki --label io.vatools.container=wiki
 --label io.vatools.deployment=1 --read-only --tmpfs /tmp --tmpfs /run
 --security-opt no-new-privileges -v vatools-wiki-var-lib:/var/lib -p 127.0.0.1:8080:80
 localhost/vatools-wiki:1'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vatools.container.config import Config, Port
from vatools.errors import VatoolsError
from vatools.run import run

LABEL = "io.vatools.container"
DEPLOYMENT_LABEL = "io.vatools.deployment"
IMAGE_ID = re.compile(r"^[0-9a-f]{64}$")
__all__ = ["Config", "Port", "Podman", "RunSpec", "run_argv"]


def container_name(name: str) -> str:
    return f"vatools-{name}"


def candidate_name(name: str) -> str:
    return f"vatools-{name}-next"


def image_name(name: str, deployment_id: int) -> str:
    return f"localhost/vatools-{name}:{deployment_id}"


def volume_name(name: str, volume: str) -> str:
    return f"vatools-{name}-{volume}"


def volume_slug(path: str) -> str:
    """A volume name for an image-declared path: /var/lib -> var-lib, / -> root."""
    return re.sub(r"[^a-z0-9_.-]+", "-", path.strip("/").lower()) or "root"


@dataclass(frozen=True)
class RunSpec:
    container: str
    image: str
    name: str  # the deployment's NAME
    deployment_id: int
    config: Config
    volumes: dict[str, str]  # container path -> podman volume
    host_ports: dict[int, int]  # container port -> host port (the configured ones, or spare ones)


def run_argv(spec: RunSpec, *, detach: bool) -> list[str]:
    """podman's command line for a deployment (also the ExecStart of its systemd unit)."""
    config = spec.config
    argv = ["podman"]
    if config.runtime:
        argv += ["--runtime", config.runtime]
    argv += ["run", "-d"] if detach else ["run", "--rm", "--replace", "--sdnotify=conmon"]
    argv += ["--name", spec.container, "--label", f"{LABEL}={spec.name}",
             "--label", f"{DEPLOYMENT_LABEL}={spec.deployment_id}"]
    for limit, value in sorted(config.ulimits.items()):
        argv += ["--ulimit", f"{limit}={value}"]
    security = config.security
    if security.read_only:
        argv += ["--read-only", "--tmpfs", "/tmp", "--tmpfs", "/run"]
    if security.no_new_privileges:
        argv += ["--security-opt", "no-new-privileges"]
    for cap in security.cap_drop:
        argv += ["--cap-drop", cap]
    for cap in security.cap_add:
        argv += ["--cap-add", cap]
    resources = config.resources
    if resources.memory:
        argv += ["--memory", resources.memory]
    if resources.cpus is not None:
        argv += ["--cpus", f"{resources.cpus:g}"]
    if resources.pids is not None:
        argv += ["--pids-limit", str(resources.pids)]
    for key, value in sorted(config.env.items()):
        argv += ["-e", f"{key}={value}"]
    for path, volume in sorted(spec.volumes.items()):
        argv += ["-v", f"{volume}:{path}"]
    for port in config.ports:
        address = f"[{port.address}]" if ":" in port.address else port.address
        argv += ["-p", f"{address}:{spec.host_ports[port.container]}:{port.container}"]
    argv.append(spec.image)
    return argv


class Podman:
    """The podman commands vatools needs, with errors that say what failed."""

    def __init__(self, runtime: str | None = None) -> None:
        self.runtime = runtime

    def _argv(self, *args: str) -> list[str]:
        return ["podman", *(["--runtime", self.runtime] if self.runtime else []), *args]

    def _run(self, *args: str, hint: str | None = None, check: bool = True) -> str:
        return run(self._argv(*args), check=check, hint=hint).stdout

    @staticmethod
    def _last_line(output: str) -> str:
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def load(self, reference: str, tag: str) -> str:
        """Copy an image into podman's store under exactly `tag`; returns its id.

        skopeo, not `podman pull oci:PATH`: podman names what it pulls after the path (or the
        ref), which fails for paths that are no valid image name and leaves a stray name."""
        run(["skopeo", "copy", "-q", reference, f"containers-storage:{tag}"],
            hint=f"check the image: skopeo inspect {reference}")
        image_id = self._last_line(self._run("image", "inspect", "--format", "{{.Id}}", tag))
        if not IMAGE_ID.match(image_id):
            raise VatoolsError(f"podman does not show the image {tag} just loaded: {image_id[-300:]}")
        return image_id

    def image_digest(self, image: str) -> str:
        return self._last_line(self._run("image", "inspect", "--format", "{{.Digest}}", image))

    def image_exists(self, image: str) -> bool:
        return run(self._argv("image", "exists", image), check=False).returncode == 0

    def remove_image(self, name: str) -> None:
        # Only this tag: an image another tag (deployment) still uses stays.
        run(self._argv("rmi", name), check=False)

    def start(self, spec: RunSpec) -> None:
        run(run_argv(spec, detach=True), hint=f"see why: podman logs {spec.container}")

    def running(self, container: str) -> bool:
        done = run(self._argv("container", "inspect", "--format", "{{.State.Running}}", container), check=False)
        return done.returncode == 0 and self._last_line(done.stdout) == "true"

    def exists(self, container: str) -> bool:
        return run(self._argv("container", "exists", container), check=False).returncode == 0

    def deployment_of(self, container: str) -> int | None:
        done = run(self._argv("container", "inspect", "--format",
                              "{{index .Config.Labels \"" + DEPLOYMENT_LABEL + "\"}}", container), check=False)
        value = self._last_line(done.stdout)
        return int(value) if done.returncode == 0 and value.isdigit() else None

    def logs(self, container: str, lines: int = 20) -> str:
        return run(self._argv("logs", "--tail", str(lines), container), check=False).stdout

    def stop_and_remove(self, container: str, timeout: int = 20) -> None:
        if self.exists(container):
            run(self._argv("stop", "-t", str(timeout), container), check=False)
            self._run("rm", "-f", container)

    def volume_exists(self, volume: str) -> bool:
        return run(self._argv("volume", "exists", volume), check=False).returncode == 0

    def create_volume(self, volume: str, name: str) -> None:
        if not self.volume_exists(volume):
            self._run("volume", "create", "--label", f"{LABEL}={name}", volume)

    def remove_volume(self, volume: str) -> None:
        if self.volume_exists(volume):
            self._run("volume", "rm", "-f", volume)

    def volumes_of(self, name: str) -> list[str]:
        out = self._run("volume", "ls", "--filter", f"label={LABEL}={name}", "--format", "{{.Name}}")
        return sorted(line.strip() for line in out.splitlines() if line.strip().startswith("vatools-"))

    def images_of(self, name: str) -> list[str]:
        out = self._run("images", "--format", "{{.Repository}}:{{.Tag}}", f"localhost/vatools-{name}")
        return sorted(line.strip() for line in out.splitlines() if line.startswith("localhost/vatools-"))

    def image_volumes(self, image: str) -> list[str]:
        out = self._run("image", "inspect", "--format", "{{range $path, $_ := .Config.Volumes}}{{$path}} {{end}}",
                        image)
        return sorted(self._last_line(out).split()) if out.strip() else []
