"""Benchmarks of vainstall and valist against the raw tools, measured in the same run.

    /usr/bin/python3 bench/run.py [--pairs N] [--appliance NAME] [--suite SUITE]

vainstall vs `debconf-set-selections` + `apt-get install` of the same appliance, on paired
copies of one server tree whose apt cache is warm (so the network is out of the comparison);
the order inside each pair alternates. Each pair gives a ratio; printed are every pair, the
median ratio and the spread (lowest and highest ratio, and the medians of both sides). valist vs `dpkg-query -W` and `apt-cache showpkg
virtual-appliance`, each run repeatedly in a tree with the appliance installed. Printed: medians
and ratios. Targets (issue 2): vainstall <= 1.02x raw; `valist --installed` <= 80 ms wall,
interpreter start included. Needs root; uses the test harness (tests/support).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP))

from tests.support.chroot import Chroot, copy_tree  # noqa: E402
from tests.support.net import serve_directory  # noqa: E402
from tests.support.pristine import pristine_tree  # noqa: E402
from tests.support.repo import build_repo, make_server_tree  # noqa: E402


def timed(chroot: Chroot, argv: list[str], input: str | None = None) -> float:
    start = time.perf_counter()
    chroot.run(argv, input=input)
    return time.perf_counter() - start


def raw_seed(text: str) -> str:
    """A seed with its empty passwords filled, as an administrator would do by hand."""
    lines = []
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[2] == "password":
            line = f"{line} Bench-Password-1"
        lines.append(line)
    return "\n".join(lines) + "\n"


def bench_install(server: Chroot, workdir: Path, appliance: str, pairs: int) -> list[tuple[float, float]]:
    server.run(["apt-get", "install", "--yes", "--download-only", appliance])  # warm cache
    deb = next(server.resolve("/var/cache/apt/archives").glob(f"{appliance}_*.deb"))
    server.run(["dpkg-deb", "-x", f"/var/cache/apt/archives/{deb.name}", "/tmp/appliance"])
    seed = raw_seed(server.read_text(f"/tmp/appliance/usr/share/vatools/seeds/{appliance}.seed"))
    results = []
    for index in range(pairs):
        ours = copy_tree(server.root, workdir / f"ours-{index}")
        raw = copy_tree(server.root, workdir / f"raw-{index}")
        try:
            runs = {}
            order = ["ours", "raw"] if index % 2 == 0 else ["raw", "ours"]
            for which in order:
                if which == "ours":
                    runs[which] = timed(ours, ["vainstall", "--yes", appliance])
                else:
                    start = time.perf_counter()
                    raw.run(["debconf-set-selections"], input=seed)
                    raw.run(["apt-get", "install", "--yes", appliance])
                    runs[which] = time.perf_counter() - start
            results.append((runs["ours"], runs["raw"]))
            print(f"  pair {index + 1}: vainstall {runs['ours']:.1f} s, raw {runs['raw']:.1f} s,"
                  f" ratio {runs['ours'] / runs['raw']:.3f}x")
        finally:
            ours.remove()
            raw.remove()
    return results


def bench_listing(tree: Chroot, repeat: int) -> dict[str, float]:
    commands = {
        "valist --installed": ["valist", "--installed"],
        "valist (installed + available)": ["valist"],
        "dpkg-query -W": ["dpkg-query", "-W", "-f", "${Package} ${Provides}\n"],
        "apt-cache showpkg virtual-appliance": ["apt-cache", "showpkg", "virtual-appliance"],
    }
    medians = {}
    for name, argv in commands.items():
        timed(tree, argv)  # warm the page cache
        medians[name] = statistics.median(timed(tree, argv) for _ in range(repeat))
    return medians


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=5, help="vainstall/raw pairs (default 5)")
    parser.add_argument("--repeat", type=int, default=20, help="runs per listing command (default 20)")
    parser.add_argument("--appliance", default="dokuwiki-appliance")
    parser.add_argument("--suite", default="bookworm")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="vatools-bench-", dir="/var/tmp"))
    try:
        print("Building the repository and a server tree (not measured)")
        repo = build_repo(workdir, suites=(args.suite,), with_tests=False)
        with serve_directory(repo.directory) as url:
            pristine = pristine_tree(workdir / "cache", args.suite)
            server = make_server_tree(copy_tree(pristine, workdir / "server"), repo, url, args.suite)
            print(f"vainstall {args.appliance} vs debconf-set-selections + apt-get install ({args.pairs} pairs)")
            pairs = bench_install(server, workdir, args.appliance, args.pairs)
            ours = statistics.median(p[0] for p in pairs)
            raw = statistics.median(p[1] for p in pairs)
            ratios = sorted(p[0] / p[1] for p in pairs)
            print(f"  median: vainstall {ours:.1f} s, raw {raw:.1f} s")
            print(f"  ratio per pair: median {statistics.median(ratios):.3f}x,"
                  f" spread {ratios[0]:.3f}x .. {ratios[-1]:.3f}x over {len(ratios)} pairs"
                  " (target <= 1.02x)")
            installed = copy_tree(server.root, workdir / "listing")
            installed.run(["vainstall", "--yes", args.appliance])
            medians = bench_listing(installed, args.repeat)
            base = medians["dpkg-query -W"]
            print(f"Listing, median of {args.repeat} runs (wall, process start included):")
            for name, seconds in medians.items():
                print(f"  {name:38s} {seconds * 1000:7.1f} ms  {seconds / base:5.2f}x dpkg-query")
            print("  target: valist --installed <= 80 ms:",
                  "met" if medians["valist --installed"] <= 0.080 else "NOT met")
    finally:
        Chroot(workdir).remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
