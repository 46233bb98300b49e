"""The backup's stream and file system helpers: parallel gzip, parallel removal, syncfs,
and the bookkeeping that moves to SQLite past a size."""

from __future__ import annotations

import gzip
import io
import os
import random
import subprocess
from pathlib import Path

import pytest

from vatools.backup import spill, streams, swap
from vatools.backup.streams import CHUNK, HashingWriter, ParallelGzipWriter


def _gzip(data: bytes, piece: int = 70_000) -> bytes:
    out = io.BytesIO()
    writer = ParallelGzipWriter(HashingWriter(out))
    for start in range(0, len(data), piece):
        writer.write(data[start:start + piece])
    writer.close()
    return out.getvalue()


def _sample(size: int) -> bytes:
    rng = random.Random(size)
    words = [b"wiki", b"page", b"edit", b"user", b"2026", b"\n"]
    text = b" ".join(rng.choice(words) for _ in range(size // 4))[:size // 2]
    return text + rng.randbytes(size - len(text))


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345])
def test_parallel_gzip_is_one_ordinary_gzip_stream(size: int, tmp_path: Path) -> None:
    data = _sample(size)
    packed = _gzip(data)
    assert gzip.decompress(packed) == data
    (tmp_path / "x.gz").write_bytes(packed)
    subprocess.run(["gzip", "--test", str(tmp_path / "x.gz")], check=True)  # the real tool
    unpacked = subprocess.run(["gzip", "-dc", str(tmp_path / "x.gz")], check=True,
                              capture_output=True).stdout
    assert unpacked == data


def test_parallel_gzip_gives_the_same_bytes_for_any_number_of_workers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = _sample(5 * CHUNK + 7)
    outputs = set()
    for workers in (1, 2, 4):
        monkeypatch.setattr(streams, "MAX_WORKERS", workers)
        outputs.add(_gzip(data, piece=CHUNK // 3))
    assert len(outputs) == 1


def test_parallel_gzip_ratio_stays_that_of_one_stream() -> None:
    text = _sample(8 * CHUNK)[:4 * CHUNK]  # the compressible half
    assert len(_gzip(text)) <= 1.01 * len(gzip.compress(text, 6))


def test_remove_tree_removes_everything_and_follows_no_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    tree = tmp_path / "old"
    for d in range(6):
        for s in range(3):
            (tree / f"d{d}" / f"s{s}").mkdir(parents=True)
            (tree / f"d{d}" / f"s{s}" / "f").write_text("x")
    (tree / "top-file").write_text("x")
    (tree / "link-to-outside").symlink_to(outside)
    (tree / "d0" / "s0" / "link").symlink_to(outside)
    swap.remove_any(str(tree))
    assert not tree.exists()
    assert (outside / "keep").read_text() == "keep"


def test_sync_file_systems_syncs_and_names_a_missing_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    swap.sync_file_systems([str(tmp_path), str(tmp_path / "file")])
    with pytest.raises(FileNotFoundError) as failure:
        swap.sync_file_systems([str(tmp_path / "missing")])
    assert failure.value.filename == str(tmp_path / "missing")
    assert os.path.isdir(tmp_path)


def test_name_index_answers_the_same_after_moving_to_sqlite(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spill, "IN_MEMORY", 3)
    index = spill.NameIndex()
    names = [f"root/d{i}/é{i}" for i in range(10)]
    for i, name in enumerate(names):
        index.add(name, "df"[i % 2])
    assert index._db is not None  # it did move
    assert [index.get(n) for n in names] == ["df"[i % 2] for i in range(10)]
    assert index.get("root/missing") is None
    index.close()


def test_directory_list_reads_back_last_first_after_moving_to_sqlite(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spill, "IN_MEMORY", 3)
    dirs = spill.DirectoryList()
    records = [(f"/stage/d{i}", 0o755, i, i + 1, 1_700_000_000_123_456_789 + i) for i in range(8)]
    for record in records:
        dirs.append(record)
    assert list(dirs.last_first()) == records[::-1]
    dirs.close()
