"""Pristine minbase trees from mmdebstrap: made once per suite and cache directory, then copied.

mmdebstrap takes ~20 s and a copy ~2 s, so every test gets its own copy of one shared tree.
Trees are throwaway: dpkg in them runs with force-unsafe-io (no fsync per unpacked file, kept
in the tree's /etc/dpkg/dpkg.cfg.d/ by mmdebstrap), which makes every install in a test faster.
A tree is built under NAME.partial and renamed when complete, so a crashed build is never
mistaken for a good one; an flock makes concurrent test runs sharing a cache build it once.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

from tests.support.chroot import Chroot
from tests.support.timing import TIMINGS

MIRROR = "http://deb.debian.org/debian"
SUITES = ("bookworm", "trixie")


class MissingTool(Exception):
    """A tool the harness needs is not installed: a failure, never a skip."""


def require_tools(*names: str) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        raise MissingTool(
            f"the test harness needs {', '.join(missing)}:"
            f" install it (apt-get install {' '.join(missing)})"
        )


def pristine_tree(cache: Path, suite: str) -> Path:
    """The path of a complete minbase tree of `suite` in `cache`, made now if missing."""
    require_tools("mmdebstrap")
    cache.mkdir(parents=True, exist_ok=True)
    tree = cache / f"{suite}-pristine"
    with open(cache / f"{suite}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held until the tree exists
        if tree.is_dir():
            TIMINGS.note(f"mmdebstrap {suite}: reused {tree}")
            return tree
        partial = cache / f"{suite}-pristine.partial"
        Chroot(partial).remove()  # leftovers of a crashed build (mmdebstrap mounts inside)
        with TIMINGS.measure(f"mmdebstrap {suite}"):
            done = subprocess.run(
                ["mmdebstrap", "--variant=minbase", "--mode=root", "--dpkgopt=force-unsafe-io",
                 suite, str(partial), MIRROR],
                capture_output=True,
                text=True,
            )
        if done.returncode != 0:
            Chroot(partial).remove()
            raise RuntimeError(
                f"mmdebstrap {suite} failed ({done.returncode}):\n{done.stderr[-3000:]}"
            )
        partial.rename(tree)
        return tree
