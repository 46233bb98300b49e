"""Long operations (apt, backups) as jobs: a thread of a web worker talks to the helper and
records the job's state in a JSON file of the state directory, so every gunicorn worker sees
it, a job goes on when the browser leaves, and a page picks it up again.

A job whose worker died (a restart of the service) is shown as interrupted; the helper itself
finishes the operation it was given.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from vatools.control.client import HelperClient, HelperError

JOB_ID = re.compile(r"[0-9]{13}-[0-9a-f]{6}")
SAVE_EVERY = 0.25  # seconds between two writes of a job's progress


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Job:
    id: str  # milliseconds since the epoch and a random tag: sorts by start time
    kind: str  # "updates", "backups", ...: one running job per kind
    op: str
    title: str
    state: str = "running"  # running, done, failed
    percent: float = 0.0
    text: str = ""
    result: Any = None
    error: str = ""
    hint: str = ""  # what to do about the error
    output: str = ""
    pid: int = field(default_factory=os.getpid)  # the worker that follows it
    started: float = field(default_factory=time.time)
    ended: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Jobs:
    def __init__(self, client: HelperClient, directory: Path, keep: int = 50) -> None:
        self.client = client
        self.directory = directory
        self.keep = keep
        directory.mkdir(mode=0o700, exist_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _save(self, job: Job) -> None:
        path = self.directory / f"{job.id}.json"
        tmp = path.with_name(f".{job.id}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(json.dumps(job.to_json()))
        os.replace(tmp, path)

    def start(self, kind: str, op: str, title: str, args: dict[str, str] | None = None) -> Job:
        """Start `op`, unless a job of this kind runs already: that one is returned."""
        with self._locked():
            running = self.latest(kind)
            if running is not None and running.state == "running":
                return running
            job = Job(f"{int(time.time() * 1000):013d}-{secrets.token_hex(3)}", kind, op, title)
            self._save(job)
            for old in sorted(self.directory.glob("*.json"))[:-self.keep]:
                old.unlink(missing_ok=True)
        threading.Thread(target=self._run, args=(job, args), daemon=True).start()
        return job

    def _run(self, job: Job, args: dict[str, str] | None) -> None:
        last = 0.0

        def progress(percent: float, text: str) -> None:
            nonlocal last
            job.percent, job.text = percent, text
            if time.monotonic() - last >= SAVE_EVERY:
                last = time.monotonic()
                self._save(job)

        try:
            job.result = self.client.call(job.op, args, progress)
            job.state, job.percent = "done", 100.0
        except HelperError as e:
            job.state, job.error, job.output = "failed", e.message, e.output
            job.hint = e.hint or ""
        except Exception as e:  # noqa: BLE001 - shown on the page instead of lost in a thread
            job.state, job.error = "failed", f"{type(e).__name__}: {e}"
        job.ended = time.time()
        self._save(job)

    def get(self, job_id: str) -> Job | None:
        if not JOB_ID.fullmatch(job_id):
            return None
        try:
            job = Job(**json.loads((self.directory / f"{job_id}.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None
        if job.state == "running" and not _alive(job.pid):
            job.state, job.error = "failed", ("interrupted: the web process that followed it "
                                              "stopped; see the system's state")
        return job

    def latest(self, kind: str) -> Job | None:
        for path in sorted(self.directory.glob("*.json"), reverse=True):
            job = self.get(path.stem)
            if job is not None and job.kind == kind:
                return job
        return None
