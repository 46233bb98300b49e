"""The state of one deployed container: STATE_DIR/NAME/history.json, the deployments in order.

Like rpm-ostree's deployment list: every deploy, update or rollback appends a deployment
(image path and digest, the configuration it ran with); `current` points at the one serving,
`previous` is where `rollback` goes. A failed update is kept in the history, marked failed.
The file is replaced atomically (write, fsync, rename); a lock file keeps two commands on
the same NAME apart.

>>> h = History("wiki")
>>> one = h.add(image="/a.oci", digest="sha256:1", version="1.0", config={}, note="deploy")
>>> h.make_current(one)
>>> two = h.add(image="/b.oci", digest="sha256:2", version="1.1", config={}, note="update")
>>> h.make_current(two)
>>> h.current.id, h.previous().id
(2, 1)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from vatools.errors import VatoolsError

DEFAULT_STATE_DIR = Path("/var/lib/vatools/containers")
HISTORY = "history.json"
KEEP_IMAGES = 3  # deployments whose images stay in podman's store (current + the ones before)


@dataclass
class Deployment:
    id: int
    image: str
    digest: str
    version: str
    config: dict[str, Any]
    note: str  # how it came: deploy, update, rollback to N
    created: str
    status: str = "new"  # new, current, retired, failed
    health: str = ""

    @property
    def tag(self) -> str:
        return str(self.id)


@dataclass
class History:
    name: str
    deployments: list[Deployment] = field(default_factory=list)
    current_id: int | None = None

    @property
    def current(self) -> Deployment:
        found = self.get(self.current_id) if self.current_id is not None else None
        if found is None:
            raise VatoolsError(f"container {self.name} has no current deployment",
                               hint=f"deploy it: vatools container deploy {self.name} CONFIG")
        return found

    def get(self, deployment_id: int) -> Deployment | None:
        return next((d for d in self.deployments if d.id == deployment_id), None)

    def add(self, *, image: str, digest: str, version: str, config: dict[str, Any], note: str) -> Deployment:
        next_id = max((d.id for d in self.deployments), default=0) + 1
        created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        deployment = Deployment(next_id, image, digest, version, config, note, created)
        self.deployments.append(deployment)
        return deployment

    def make_current(self, deployment: Deployment) -> None:
        for other in self.deployments:
            if other.status == "current":
                other.status = "retired"
        deployment.status = "current"
        self.current_id = deployment.id

    def previous(self) -> Deployment:
        """Where rollback goes: the last deployment before the current one that once served."""
        current = self.current
        earlier = [d for d in self.deployments if d.id < current.id and d.status == "retired"]
        if not earlier:
            later = [d for d in self.deployments if d.id != current.id and d.status == "retired"]
            if not later:
                raise VatoolsError(f"container {self.name} has no previous deployment to roll back to",
                                   hint=f"see its history: vatools container status {self.name}")
            earlier = later
        # As rpm-ostree: a second rollback returns to where the first one came from.
        return max(earlier, key=lambda d: d.id)

    def kept_images(self) -> set[int]:
        """Deployments whose images stay loaded: the current one and the latest retired ones."""
        served = [d for d in self.deployments if d.status in ("current", "retired")]
        keep = {d.id for d in sorted(served, key=lambda d: d.id)[-KEEP_IMAGES:]}
        if self.current_id is not None:
            keep.add(self.current_id)
        return keep

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "current": self.current_id,
                "deployments": [asdict(d) for d in self.deployments]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> History:
        return cls(data["name"], [Deployment(**d) for d in data["deployments"]], data.get("current"))


class Store:
    """The state directory: one subdirectory per container name."""

    def __init__(self, root: Path = DEFAULT_STATE_DIR) -> None:
        self.root = root

    def directory(self, name: str) -> Path:
        return self.root / name

    def exists(self, name: str) -> bool:
        return (self.directory(name) / HISTORY).is_file()

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / HISTORY).is_file())

    def load(self, name: str) -> History:
        path = self.directory(name) / HISTORY
        try:
            return History.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise VatoolsError(f"no container named {name} is deployed (no {path})",
                               hint="see `vatools container list`, or deploy it first") from None
        except (ValueError, KeyError, TypeError) as error:
            raise VatoolsError(f"{path}: damaged state: {error}",
                               hint="restore it from a backup, or remove the directory and deploy again") from None

    def save(self, history: History) -> None:
        directory = self.directory(history.name)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / HISTORY
        temporary = path.with_suffix(".tmp")
        with open(temporary, "w") as handle:
            json.dump(history.to_json(), handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    def remove(self, name: str) -> None:
        directory = self.directory(name)
        for child in (directory / HISTORY, directory / ".lock", directory / "history.tmp"):
            child.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            directory.rmdir()

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[None]:
        """Hold NAME's lock; another command on NAME is refused, not queued."""
        directory = self.directory(name)
        directory.mkdir(parents=True, exist_ok=True)
        made = not (directory / HISTORY).exists()
        with open(directory / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise VatoolsError(f"another vatools container command is working on {name}",
                                   hint="wait for it to finish, then try again") from None
            try:
                yield
            finally:
                # A refused deploy leaves no state directory behind.
                if made and not (directory / HISTORY).exists():
                    (directory / ".lock").unlink(missing_ok=True)
                    with contextlib.suppress(OSError):
                        directory.rmdir()
