"""Leaving no trace: what a restore refused while staging must put back as it found it.

A restore checks the backup while it stages it (one pass), so a refusal can come after the
lock, the journal and the staging trees were made. The staging trees and the journal are
removed by the restore itself; this records the rest -- directories it had to create (for
the lock and journal) and the times of the directories that got entries meanwhile (the
roots' parents, where the staging trees were) -- and puts them back, so the target is,
stat for stat, as it was (only inode change times move).
"""

from __future__ import annotations

import os
from pathlib import Path


class Footprint:
    def __init__(self) -> None:
        self._times: dict[str, tuple[int, int]] = {}  # directory -> (atime, mtime), ns
        self._created: list[Path] = []  # directories made, outermost first
        self._files: list[Path] = []

    def keep_times(self, directory: str | Path) -> None:
        """Remember a directory's times before entries are added to or removed from it."""
        key = str(directory)
        if key not in self._times:
            st = os.stat(key)
            self._times[key] = (st.st_atime_ns, st.st_mtime_ns)

    def make_dirs(self, path: Path, mode: int = 0o700) -> None:
        """mkdir -p (parents with the default mode, `path` with `mode`), remembering what was
        made and the times of the directory it was made in."""
        missing = []
        while not path.is_dir():
            missing.append(path)
            path = path.parent
        if missing:
            self.keep_times(path)
        for directory in reversed(missing):
            try:
                directory.mkdir(mode if directory == missing[0] else 0o777)
            except FileExistsError:  # made meanwhile by someone else: theirs
                continue
            self._created.append(directory)

    def made_file(self, path: Path) -> None:
        """A file to remove when erasing, if it was made in a directory made here."""
        if any(d in path.parents for d in self._created):
            self._files.append(path)

    def erase(self) -> None:
        """Remove what was made, then give the directories their times back."""
        for path in self._files:
            path.unlink(missing_ok=True)
        for directory in reversed(self._created):
            try:
                directory.rmdir()
            except OSError:  # not empty: something else uses it now
                pass
        for kept, times in self._times.items():
            try:
                os.utime(kept, ns=times, follow_symlinks=False)
            except OSError:
                pass
