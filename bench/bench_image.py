#!/usr/bin/python3
"""Benchmark: `vatools image build --format tar` against plain mmdebstrap, and boot to HTTP 200.

    /usr/bin/python3 bench/bench_image.py [--suite bookworm] [--dir /var/tmp/vadev/image-bench]

In one run, on this machine (needs root and network):
  1. builds the repository of this tree (tests.support.repo) and serves it on 127.0.0.1;
  2. vatools image build dokuwiki-appliance --format tar,qcow2 with an empty deb cache (cold);
  3. mmdebstrap with the same package set (the same minbase + kernel, then in a customize
     hook debconf-set-selections of the same answers and apt-get install of every other
     package of the image's manifest from our repository as an extra source; same deb cache,
     now warm) writing a tar, then zstd: the raw tools doing the same job without vainstall's
     checks, cleaning or reproducibility work;
  4. vatools image build --format tar again with the warm cache;
  5. boots the qcow2 of step 2 under qemu (TCG, one vCPU) and times the first HTTP 200 with the
     title, then prints the guest's own account of that first boot (systemd-analyze time,
     critical-chain, blame: the image writes it to the console once the boot is finished).
Prints times and the ratio vatools(warm) / raw (target <= 1.1) and the boot time (target <= 30 s).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP))

from tests.support.net import serve_directory  # noqa: E402
from tests.support.qemu import boot_vm  # noqa: E402
from tests.support.repo import build_repo  # noqa: E402
from vatools.image.boot import BOOT_REPORT_BEGIN, BOOT_REPORT_END  # noqa: E402
from vatools.image.rootfs import BASE_PACKAGES  # noqa: E402

APPLIANCE = "dokuwiki-appliance"
BOOT_REPORT = (BOOT_REPORT_BEGIN, BOOT_REPORT_END)
TITLE = "Bench Wiki"
MIRROR = "http://deb.debian.org/debian"


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})})
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"{argv[0]} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return seconds


def raw_seed(suite_dir: Path) -> str:
    """The appliance's published seed with the bench's title and password, for debconf directly."""
    text = next(suite_dir.glob(f"{APPLIANCE}_*.seed")).read_text()
    lines = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] == "password":
            line += " bench"
        elif len(fields) >= 3 and fields[1] == "dokuwiki/wiki/title":
            line = f"dokuwiki dokuwiki/wiki/title string {TITLE}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def vatools_build(out: Path, suite: str, fmt: str, repo_url: str, keyring: Path, cache: Path) -> float:
    return timed(
        [
            "/usr/bin/python3", "-m", "vatools.cli.main", "image", "build", APPLIANCE,
            "--suite", suite, "--format", fmt, "--output", str(out), "--size", "3G",
            "--repository", repo_url, "--keyring", str(keyring), "--cache", str(cache),
            "--set", f"dokuwiki/wiki/title={TITLE}",
            "--set", "dokuwiki/wiki/password=bench", "--set", "dokuwiki/wiki/confirm=bench",
        ],
        env={"PYTHONPATH": str(TOP), "SOURCE_DATE_EPOCH": "1700000000"},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="bookworm")
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/vadev/image-bench"))
    args = parser.parse_args()
    work: Path = args.dir
    subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=True)
    work.mkdir(parents=True)
    cache = work / "debs"
    repo = build_repo(work / "harness", suites=(args.suite,))
    keyring = repo.directory / "vatools-archive-keyring.gpg"
    with serve_directory(repo.directory) as base_url:
        cold = vatools_build(work / "cold", args.suite, "tar,qcow2", base_url, keyring, cache)
        manifest = json.loads((work / "cold/manifest.json").read_text())
        packages = [p["name"] for p in manifest["packages"]]
        raw_tar = work / "raw.tar"
        base = set(BASE_PACKAGES)
        rest = [p for p in packages if p not in base and p != "vatools"] + ["vatools"]
        seed = work / "raw.seed"
        seed.write_text(raw_seed(repo.directory / args.suite))
        policy = "printf '#!/bin/sh\\nexit 101\\n' > \"$1/usr/sbin/policy-rc.d\"; chmod 755 \"$1/usr/sbin/policy-rc.d\""
        raw = timed(
            [
                "mmdebstrap", "--mode=root", "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES),
                "--dpkgopt=force-unsafe-io",
                '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
                f"--setup-hook=sync-in {cache} /var/cache/apt/archives/",
                f"--customize-hook={policy}",
                f'--customize-hook=chroot "$1" debconf-set-selections < {seed}',
                f'--customize-hook=chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y'
                f' --no-install-recommends {" ".join(rest)}',
                '--customize-hook=rm "$1/usr/sbin/policy-rc.d"',
                f"--customize-hook=sync-out /var/cache/apt/archives {cache}",
                args.suite, str(raw_tar), MIRROR,
                f"deb [signed-by={keyring}] {base_url}/{args.suite}/ ./",
            ],
            env={"SOURCE_DATE_EPOCH": "1700000000"},
        )
        raw += timed(["zstd", "-q", "-T1", "-3", "--rm", str(raw_tar)])
        warm = vatools_build(work / "warm", args.suite, "tar", base_url, keyring, cache)
    with boot_vm(work / f"cold/{APPLIANCE}.qcow2", work / "vm", work / "console.log") as vm:
        boot = vm.wait_for_page("/", TITLE, 600)
        vm.wait_for_console(BOOT_REPORT[1], 300)
        stopped = vm.power_off()
    console = (work / "console.log").read_text("utf-8", "replace")
    report = console.split(BOOT_REPORT[0], 1)[1].split(BOOT_REPORT[1], 1)[0]
    print(f"suite {args.suite}, {len(packages)} packages, tree {manifest['tree_bytes'] / 2**20:.0f} MiB")
    print(f"vatools image build --format tar,qcow2, cold deb cache: {cold:7.1f} s")
    print(f"mmdebstrap same packages -> tar + zstd, warm cache:     {raw:7.1f} s")
    print(f"vatools image build --format tar, warm cache:           {warm:7.1f} s")
    print(f"ratio vatools(warm) / raw(warm): {warm / raw:.2f}  (target <= 1.1)")
    print(f"boot to HTTP 200 with the seeded title under TCG: {boot:.1f} s (target <= 30 s),"
          f" stopped by {stopped}")
    print("the guest's first boot (systemd-analyze):")
    print("\n".join(line.rstrip("\r") for line in report.splitlines() if line.strip()))
    subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
