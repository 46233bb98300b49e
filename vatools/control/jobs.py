"""Long operations (apt, backups) as jobs: a thread of the web process talks to the helper and
keeps the state here, so a job goes on when the browser leaves and a page picks it up again.

gunicorn runs one worker process with threads (gunicorn_conf.py), so every request sees the
same jobs.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from vatools.control.client import HelperClient, HelperError


@dataclass
class Job:
    id: int
    kind: str  # "updates", "backups", ...: one running job per kind
    op: str
    title: str
    state: str = "running"  # running, done, failed
    percent: float = 0.0
    text: str = ""
    result: Any = None
    error: str = ""
    output: str = ""
    started: float = field(default_factory=time.time)
    ended: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Jobs:
    def __init__(self, client: HelperClient, keep: int = 50) -> None:
        self.client = client
        self.keep = keep
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, kind: str, op: str, title: str, args: dict[str, str] | None = None,
              then: Callable[[Job], None] | None = None) -> Job:
        """Start `op`, unless a job of this kind runs already: that one is returned."""
        with self._lock:
            running = self.latest(kind)
            if running is not None and running.state == "running":
                return running
            job = Job(next(self._ids), kind, op, title)
            self._jobs[job.id] = job
            for old in sorted(self._jobs)[:-self.keep]:
                del self._jobs[old]
        threading.Thread(target=self._run, args=(job, args, then), daemon=True).start()
        return job

    def _run(self, job: Job, args: dict[str, str] | None,
             then: Callable[[Job], None] | None) -> None:
        def progress(percent: float, text: str) -> None:
            job.percent, job.text = percent, text

        try:
            job.result = self.client.call(job.op, args, progress)
            job.state, job.percent = "done", 100.0
        except HelperError as e:
            job.state, job.error, job.output = "failed", e.message, e.output
        except Exception as e:  # noqa: BLE001 - shown on the page instead of lost in a thread
            job.state, job.error = "failed", f"{type(e).__name__}: {e}"
        job.ended = time.time()
        if then is not None:
            then(job)

    def get(self, job_id: int) -> Job | None:
        return self._jobs.get(job_id)

    def latest(self, kind: str) -> Job | None:
        found = [j for j in self._jobs.values() if j.kind == kind]
        return max(found, key=lambda j: j.id) if found else None
