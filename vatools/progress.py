"""Progress of long work: apt's status-fd lines, shown as a bar on a terminal, as steps in a log.

apt-get writes machine-readable progress to the file descriptor named by APT::Status-Fd:
``dlstatus:COUNT:PERCENT:TEXT`` while downloading, ``pmstatus:PACKAGE:PERCENT:TEXT`` while dpkg
works, ``pmerror:PACKAGE:PERCENT:MESSAGE`` when a package fails.

>>> parse_status_line("pmstatus:dokuwiki:42.5:Configuring dokuwiki")
StatusLine(kind='pmstatus', package='dokuwiki', percent=42.5, text='Configuring dokuwiki')
>>> parse_status_line("garbage") is None
True
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class StatusLine:
    kind: str
    package: str
    percent: float
    text: str


def parse_status_line(line: str) -> StatusLine | None:
    parts = line.rstrip("\n").split(":", 3)
    if len(parts) != 4 or parts[0] not in ("dlstatus", "pmstatus", "pmerror", "pmconffile"):
        return None
    try:
        percent = float(parts[2])
    except ValueError:
        percent = 0.0
    return StatusLine(parts[0], parts[1], percent, parts[3])


class ProgressBar:
    """One line redrawn in place on a terminal; a line per 10 % step otherwise."""

    def __init__(self, title: str, stream: TextIO = sys.stderr) -> None:
        self.title = title
        self.stream = stream
        self.tty = stream.isatty()
        self._last_step = -1

    def update(self, percent: float, text: str) -> None:
        percent = max(0.0, min(100.0, percent))
        if self.tty:
            width = shutil.get_terminal_size((80, 20)).columns
            filled = int(percent / 5)
            line = f"{self.title} [{'#' * filled}{'.' * (20 - filled)}] {percent:3.0f}% {text}"
            self.stream.write("\r" + line[: width - 1].ljust(width - 1))
            self.stream.flush()
            return
        step = int(percent // 10)
        if step > self._last_step:
            self._last_step = step
            self.stream.write(f"{self.title}: {percent:3.0f}% {text}\n")
            self.stream.flush()

    def done(self, text: str = "done") -> None:
        if self.tty:
            self.update(100.0, text)
            self.stream.write("\n")
        else:
            self.stream.write(f"{self.title}: {text}\n")
        self.stream.flush()


def step(message: str, stream: TextIO = sys.stderr) -> None:
    """Announce a stage of the work."""
    stream.write(f"==> {message}\n")
    stream.flush()
