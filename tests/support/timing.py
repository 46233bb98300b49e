"""Wall-clock times of the harness's expensive steps, for the summary at the end of a test run."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class Timing:
    label: str
    seconds: float


class Timings:
    """Records steps in the order they finished; thread-safe (the repo server runs in a thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: list[Timing] = []

    @contextlib.contextmanager
    def measure(self, label: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self._done.append(Timing(label, time.monotonic() - started))

    def note(self, label: str, seconds: float = 0.0) -> None:
        with self._lock:
            self._done.append(Timing(label, seconds))

    def all(self) -> list[Timing]:
        with self._lock:
            return list(self._done)

    def report(self) -> list[str]:
        """One line per label, in first-seen order: "   19.4 s  mmdebstrap bookworm"."""
        grouped: dict[str, list[float]] = {}
        for timing in self.all():
            grouped.setdefault(timing.label, []).append(timing.seconds)
        lines = []
        for label, seconds in grouped.items():
            if len(seconds) == 1:
                lines.append(f"{seconds[0]:7.1f} s  {label}")
            else:
                lines.append(
                    f"{sum(seconds):7.1f} s  {label}"
                    f" (x{len(seconds)}, longest {max(seconds):.1f} s)"
                )
        return lines


# One per process: fixtures and the demo both record here.
TIMINGS = Timings()
