#!/usr/bin/python3
"""Benchmark: vatools backup create/restore against `tar -czf` / `tar -xzf` of the same tree.

    /usr/bin/python3 bench/bench_backup.py [--size 1G] [--dir /var/tmp/vadev/backup/bench]

Builds a synthetic appliance tree (a dpkg status paragraph plus data: many small text-like
files and a few large ones, partly incompressible), then, in the same run and on the same
tree: tar -czf, vatools backup create, tar -xzf (into an empty directory), vatools backup
restore (verify pass, staging, swap, deletion of the previous content). Each command runs
as its own process; its peak RSS comes from wait4(). Prints times, throughputs, ratios
(tar time / vatools time: >= 1.0 means vatools is at least as fast) and peak memory.

Two tar baselines for restore: into an empty directory (the cheapest possible), and over the
existing tree (what replacing an appliance's content with tar really is; vatools also syncs
before swapping, which tar does not). Restore reads the archive once, checking every member
as it stages it; its time is taken when it reports "restored" (the backup's content is live
and committed), and separately when it exits, after deleting the previous content. `verify`
(the standalone read-only check) is measured too.

Creating many files soon after deleting many is slow on ext4 without a journal (as on our
build machines): for 60 s (300 s while the inode table is unsynced) the inode allocator
skips recently deleted inodes, one lookup each (`recently_deleted()` in fs/ext4/ialloc.c;
seen with `perf record`: tar -xzf at 10 s of system time instead of 1 s). So no step that
creates files runs within a minute of a step that deleted many: the order is chosen for
that, and the bench waits where it cannot be avoided.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

SETTLE_SECONDS = 61  # ext4's RECENTCY_MIN, plus one

TOP = Path(__file__).resolve().parents[1]
STATUS = """Package: bench-appliance
Status: install ok installed
Version: 1.0
Architecture: all
Provides: virtual-appliance
Vatools-Backup-Config: /etc/bench
Vatools-Backup-Data: /var/lib/bench/data
Description: benchmark appliance
"""
WORDS = ("the wiki page was edited by admin on monday and saved with a summary of changes "
         "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua 2026-11-23 12:00:00 user@example.org").split()


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def make_tree(root: Path, size: int, seed: int = 42) -> tuple[int, int]:
    """60% in small files (1-32 KiB, text-like), 40% in 4 large files (half random bytes)."""
    rng = random.Random(seed)
    pool = " ".join(rng.choice(WORDS) for _ in range(1_200_000)).encode()  # ~7 MB of text
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(STATUS)
    (root / "etc/bench").mkdir(parents=True)
    (root / "etc/bench/bench.conf").write_text("setting = value\n")
    data = root / "var/lib/bench/data"
    files = 0
    small_budget = size * 6 // 10
    written = 0
    while written < small_budget:
        n = rng.randint(1 << 10, 32 << 10)
        start = rng.randrange(0, len(pool) - n)
        path = data / f"d{files % 97:02d}" / f"s{files // 97 % 31:02d}" / f"page{files}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pool[start:start + n])
        written += n
        files += 1
    large = (size - written) // 4
    for i in range(4):
        with open(data / f"large{i}.bin", "wb") as handle:
            left = large
            while left > 0:
                n = min(left, 4 << 20)
                if i % 2:  # incompressible (media)
                    handle.write(os.urandom(n))
                else:  # compressible (a database dump)
                    start = rng.randrange(0, len(pool) - n)
                    handle.write(pool[start:start + n])
                left -= n
        files += 1
        written += large
    return files, written


def measure(argv: list[str], cwd: Path | None = None, log: Path | None = None,
            until: str = "") -> tuple[float, int, float]:
    """Wall time, peak RSS (bytes) and time to exit of one command; with `until`, the wall
    time is taken when the command prints a line starting with it."""
    start = time.monotonic()
    stderr = open(log, "w") if log else None
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE if until else subprocess.DEVNULL,
                            stderr=stderr)
    elapsed = 0.0
    if until:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not elapsed and line.startswith(until.encode()):
                elapsed = time.monotonic() - start
    _, status, usage = os.wait4(proc.pid, 0)
    if stderr:
        stderr.close()
    total = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed with {proc.returncode}")
    return elapsed or total, usage.ru_maxrss * 1024, total


def settle() -> None:
    """Sync, then wait until ext4 reuses the inodes deleted so far (see the docstring)."""
    os.sync()
    print(f"waiting {SETTLE_SECONDS} s for deleted inodes to age (ext4 without a journal)",
          flush=True)
    time.sleep(SETTLE_SECONDS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1G", help="data size, e.g. 1G, 200M (default 1G)")
    parser.add_argument("--dir", default="/var/tmp/vadev/backup/bench", help="scratch directory")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--make-tree", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = parse_size(args.size)
    if args.make_tree:  # in a child: the generator's memory must not count in the peaks
        print(*make_tree(Path(args.make_tree), size))
        return 0
    work = Path(args.dir)
    if work.exists():
        shutil.rmtree(work)
        settle()
    work.mkdir(parents=True)
    root = work / "root"
    t0 = time.monotonic()
    made = subprocess.run([sys.executable, __file__, "--make-tree", str(root), "--size", args.size],
                          check=True, capture_output=True, text=True).stdout.split()
    files, total = int(made[0]), int(made[1])
    print(f"tree: {files} files, {total / 1e6:.0f} MB, made in {time.monotonic() - t0:.1f} s")
    py = [sys.executable, "-m", "vatools", "backup"]
    paths = ["etc/bench", "var/lib/bench/data"]
    os.sync()
    results = {}
    results["tar -czf"] = measure(["tar", "-czf", str(work / "tar.tgz"), "-C", str(root), *paths])
    results["create"] = measure([*py, "create", "--root", str(root), "-o", str(work / "b.abf")],
                                cwd=TOP)
    (work / "untar").mkdir()
    results["tar -xzf"] = measure(["tar", "-xzf", str(work / "tar.tgz"), "-C", str(work / "untar")])
    results["verify"] = measure([*py, "verify", str(work / "b.abf")], cwd=TOP)
    results["restore"] = measure([*py, "restore", "--root", str(root), str(work / "b.abf")],
                                 cwd=TOP, log=work / "restore.log", until="restored ")
    restore_total = results["restore"][2]
    settle()  # restore deleted the previous content last; tar over untar/ deletes as it goes
    results["tar -xzf over"] = measure(["tar", "-xzf", str(work / "tar.tgz"), "-C",
                                        str(work / "untar")])
    print("restore phases: " + " / ".join((work / "restore.log").read_text().split("\n")))
    sizes = {"tar.tgz": (work / "tar.tgz").stat().st_size, "b.abf": (work / "b.abf").stat().st_size}
    print(f"archives: tar.tgz {sizes['tar.tgz'] / 1e6:.0f} MB, .abf {sizes['b.abf'] / 1e6:.0f} MB")
    print(f"{'operation':14} {'seconds':>8} {'MB/s':>8} {'peak RSS MB':>12}")
    for name, (seconds, rss, _) in results.items():
        print(f"{name:14} {seconds:8.2f} {total / 1e6 / seconds:8.1f} {rss / 1e6:12.1f}")
    create_ratio = results["tar -czf"][0] / results["create"][0]
    restore_ratio = results["tar -xzf"][0] / results["restore"][0]
    over_ratio = results["tar -xzf over"][0] / results["restore"][0]
    print(f"restore until it reported 'restored' (content live, services started): "
          f"{results['restore'][0]:.2f} s; until it exited, after deleting the previous "
          f"content: {restore_total:.2f} s ({results['tar -xzf'][0] / restore_total:.2f}x tar -xzf)")
    print(f"throughput ratio vs tar: create {create_ratio:.2f}x, restore {restore_ratio:.2f}x "
          f"(vs tar over the existing tree: {over_ratio:.2f}x) "
          f"(target >= 1.0x); peak RSS create {results['create'][1] / 1e6:.0f} MB, restore "
          f"{results['restore'][1] / 1e6:.0f} MB (target <= 64 MB)")
    print(f"verify alone (read-only, standalone): "
          f"{results['tar -xzf'][0] / results['verify'][0]:.2f}x tar -xzf")
    if not args.keep:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
