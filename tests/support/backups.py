"""The backup CLI as tests run it (on the host, against a root), and snapshots of the trees a
backup covers: what "restored exactly" and "unchanged" are compared with."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
JOURNAL = "var/lib/vatools/backup/restore.journal"


def backup_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "vatools", "backup", *args],
                            cwd=TOP, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"backup {args} exited {result.returncode}:\n{result.stderr}")
    return result


def snapshot(root: Path, roots: tuple[str, ...]) -> dict[str, tuple]:
    """Data, mode, owner and mtime of everything below `roots` (relative to `root`)."""
    state: dict[str, tuple] = {}
    for rel in roots:
        for dirpath, dirnames, filenames in os.walk(root / rel):
            for name in [".", *dirnames, *filenames]:
                path = Path(dirpath, name)
                st = path.lstat()
                key = str(path.relative_to(root))
                if path.is_symlink():
                    state[key] = ("link", os.readlink(path), st.st_uid, st.st_gid)
                elif path.is_dir():
                    state[key] = ("dir", st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns)
                else:
                    state[key] = ("file", st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns,
                                  path.read_bytes())
    return state


def journal_phase(root: Path) -> str | None:
    try:
        return str(json.loads((root / JOURNAL).read_text())["phase"])
    except (OSError, ValueError, KeyError):
        return None


def restore_killed(root: Path, abf: Path, phase: str | None, delay: float,
                   foreign: bool = False) -> str | None:
    """Start a restore, kill -9 it (its whole process group) at `phase` + `delay` or after
    `delay`; return the journal phase seen at the kill. `foreign`: the backup was made on
    another system (restore --foreign)."""
    proc = subprocess.Popen([sys.executable, "-m", "vatools", "backup", "restore",
                             *(["--foreign"] if foreign else []),
                             "--root", str(root), str(abf)], cwd=TOP, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        if phase is not None:
            while journal_phase(root) != phase and proc.poll() is None:
                assert time.monotonic() < deadline, f"phase {phase} never came"
                time.sleep(0.0005)
        time.sleep(delay)
        seen = journal_phase(root)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # our own process group: the restore and its hooks
        proc.wait()
    return seen
