"""A reproducible tar of a tree: same files and SOURCE_DATE_EPOCH give the same bytes.

Names are sorted, modification times clamped to SOURCE_DATE_EPOCH, owners numeric (no
user or group names), the format fixed (GNU), hard links recorded in walk order.  Extended
attributes (file capabilities) are not carried: tarfile does not write them.

>>> import io, tempfile
>>> d = Path(tempfile.mkdtemp())
>>> _ = (d / "b").write_text("b"); _ = (d / "a").write_text("a")
>>> first, second = io.BytesIO(), io.BytesIO()
>>> write_tar(d, first, 1700000000); write_tar(d, second, 1700000000)
>>> first.getvalue() == second.getvalue()
True
>>> [m.name for m in tarfile.open(fileobj=io.BytesIO(first.getvalue())).getmembers()]
['.', './a', './b']
"""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

# Mount points and runtime directories: kept as empty directories, their content never.
EMPTY_DIRS = frozenset({"dev", "proc", "sys", "run", "tmp", "var/tmp"})


def _ordered(tree: Path, exclude: Callable[[str], bool]) -> list[str]:
    # Depth-first with sorted names, so a directory's entries stay together.
    out: list[str] = []

    def visit(rel_dir: str) -> None:
        path = tree / rel_dir if rel_dir else tree
        for name in sorted(os.listdir(path)):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if exclude(rel):
                continue
            out.append(rel)
            if stat.S_ISDIR(os.lstat(tree / rel).st_mode) and rel not in EMPTY_DIRS:
                visit(rel)

    visit("")
    return out


def write_tar(
    tree: Path,
    fileobj: BinaryIO,
    source_date_epoch: int,
    exclude: Callable[[str], bool] = lambda rel: False,
    extra: Sequence[tarfile.TarInfo] = (),
) -> None:
    """Write the tree as an uncompressed tar to `fileobj`, then the `extra` entries (data-less:
    directories and symlinks that exist only in this archive)."""
    with tarfile.open(fileobj=fileobj, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for rel in [".", *_ordered(tree, exclude)]:
            path = tree / rel if rel != "." else tree
            info = tar.gettarinfo(str(path), arcname="./" + rel if rel != "." else ".")
            if info is None:
                continue  # a socket
            info.mtime = min(int(info.mtime), source_date_epoch)
            info.uname = info.gname = ""
            if info.isreg():
                with open(path, "rb") as data:
                    tar.addfile(info, data)
            elif info.ischr() or info.isblk() or info.isfifo():
                continue  # device nodes are the runtime's business (/dev is kept empty)
            else:
                tar.addfile(info)
        for info in extra:
            tar.addfile(info)
