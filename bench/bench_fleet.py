#!/usr/bin/python3
"""Benchmark: the vatools.appliance collection against a raw Ansible playbook, on 8 test hosts.

    /usr/bin/python3 bench/bench_fleet.py [--hosts 8] [--suite bookworm] [--dir /var/tmp]

Both install the same appliance (probe-appliance from the test repository) on fresh hosts:

  collection  vatools.appliance.appliance: the host's vainstall plans, checks the seed against
              the templates of the downloaded packages, seeds, installs (or rolls back)
  raw         ansible.builtin.debconf, one task per question of the seed, then ansible.builtin.apt:
              no check of the answers, no rollback, passwords chosen on the controller

each with forks=1 and forks=8, each on its own set of fresh hosts (overlays of one "fresh
server" tree with vatools already bootstrapped, so only the appliance's install is timed), then
a re-run of each on the same hosts (both report changed=0).  Prints wall times and the ratios
raw/collection (>= 1.0: the collection is at least as fast) and forks=1/forks=8.

Measured here (2 shared cores, ansible-core 2.14, 8 bookworm hosts): collection 41.7 s with
forks=1 and 9.4 s with forks=8; raw 77.8 s and 30.7 s; raw/collection 1.87 (forks=1) and 3.28
(forks=8); re-run 4.5 s (changed=0) against 21.6 s for raw, which reports every host changed
(2.14's debconf module and password questions, ansible/ansible#47676).  One task per host
instead of seven round trips is most of the difference.

The hosts are those of the tests (tests/support/hosts.py): network namespaces on a private
subnet behind the guard route, sshd per host, the repository served on the bridge only.  Needs
root, mmdebstrap, ansible-core; VATOOLS_TEST_CACHE and VATOOLS_BUILD_CACHE are honoured.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP))

from tests.support.chroot import Chroot  # noqa: E402
from tests.support.hosts import Fleet, golden_host_tree  # noqa: E402
from tests.support.net import serve_directory  # noqa: E402
from tests.support.pristine import pristine_tree  # noqa: E402
from tests.support.repo import TESTS_PREFIX, build_repo  # noqa: E402

BOOTSTRAP = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - vatools.appliance.bootstrap:
        repositories: {repositories}
        keyring: "{{{{ lookup('file', '{keyring}') }}}}"
"""

COLLECTION = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - vatools.appliance.appliance:
        name: probe-appliance
        answers:
          probe-questions/color: blue
"""

RAW = """\
- hosts: fleet
  gather_facts: false
  vars:
    password: "bench-{{ inventory_hostname }}-secret"  # the raw way: chosen on the controller
  tasks:
    - ansible.builtin.debconf: {name: probe-questions, question: probe-questions/name, vtype: string, value: probe-one}
    - ansible.builtin.debconf: {name: probe-questions, question: probe-questions/enabled, vtype: boolean, value: "true"}
    - ansible.builtin.debconf: {name: probe-questions, question: probe-questions/color, vtype: select, value: blue}
    - ansible.builtin.debconf: {name: probe-questions, question: probe-questions/features, vtype: multiselect, value: "alpha, gamma"}
    - ansible.builtin.debconf: {name: probe-questions, question: probe-questions/password, vtype: password, value: "{{ password }}"}
      no_log: true
    - ansible.builtin.debconf: {name: probe-questions, question: probe-questions/confirm, vtype: password, value: "{{ password }}"}
      no_log: true
    - ansible.builtin.apt: {name: probe-appliance, state: present}
      environment: {DEBIAN_FRONTEND: noninteractive}
"""

RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def playbook(fleet: Fleet, workdir: Path, name: str, text: str, forks: int) -> tuple[float, int]:
    """Run a playbook on every host of the fleet; (seconds, hosts that changed). Fails loudly."""
    (workdir / f"{name}.yml").write_text(text)
    env = {"ANSIBLE_COLLECTIONS_PATH": str(TOP / "ansible"), "ANSIBLE_PIPELINING": "True",
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORKS": str(forks), "ANSIBLE_HOST_KEY_CHECKING": "True",
           "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_LOCAL_TEMP": "/root/.ansible/tmp"}
    start = time.monotonic()
    done = fleet.client(["ansible-playbook", "-i", str(workdir / "hosts.ini"),
                         str(workdir / f"{name}.yml")], env=env)
    seconds = time.monotonic() - start
    recap = {m.group(1): (int(m.group(3)), int(m.group(4)) + int(m.group(5)))
             for m in RECAP.finditer(done.stdout)}
    bad = [host for host, (_, failed) in recap.items() if failed]
    if done.returncode != 0 or bad or len(recap) != len(fleet.hosts):
        raise SystemExit(f"{name} (forks={forks}) failed on {bad}:\n{done.stdout[-4000:]}{done.stderr[-2000:]}")
    return seconds, sum(1 for changed, _ in recap.values() if changed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--suite", default="bookworm")
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_fleet needs root (namespaces, mounts, chroots)")
    workdir = Path(tempfile.mkdtemp(prefix="vatools-bench-fleet-", dir=args.dir))
    golden: Path | None = None
    try:
        cache = Path(os.environ.get("VATOOLS_TEST_CACHE") or workdir / "cache")
        repo = build_repo(workdir)
        with serve_directory(repo.served()) as local_url:
            golden = golden_host_tree(pristine_tree(cache, args.suite), repo, local_url,
                                      workdir / "golden")
        (workdir / "key.b64").write_text(base64.b64encode(repo.keyring()).decode())
        results: dict[tuple[str, int], float] = {}
        reruns: dict[str, float] = {}
        with Fleet(workdir / "fleet") as fleet:
            base = fleet.serve(repo.served())
            repositories = json.dumps([f"{base}/{{suite}}/", f"{base}/{TESTS_PREFIX}/{{suite}}/"])
            for name, text in (("collection", COLLECTION), ("raw", RAW)):
                for forks in (1, args.hosts):
                    for host in list(fleet.hosts):
                        fleet.remove_host(host)
                    for _ in range(args.hosts):
                        fleet.add_host(golden, args.suite)
                    (workdir / "hosts.ini").write_text(
                        "[fleet]\n" + "".join(f"{h.name}\n" for h in fleet.hosts)
                        + "\n[fleet:vars]\nansible_user=root\n"
                        "ansible_python_interpreter=/usr/bin/python3\n")
                    playbook(fleet, workdir, "bootstrap",
                             BOOTSTRAP.format(repositories=repositories, keyring=workdir / "key.b64"),
                             args.hosts)
                    seconds, changed = playbook(fleet, workdir, name, text, forks)
                    assert changed == args.hosts, f"{name}: only {changed} hosts changed"
                    results[(name, forks)] = seconds
                    print(f"{name:10} forks={forks}: {seconds:6.1f} s for {args.hosts} hosts", flush=True)
                rerun, changed = playbook(fleet, workdir, name, text, args.hosts)
                reruns[name] = rerun
                print(f"{name:10} re-run forks={args.hosts}: {rerun:6.1f} s, {changed} hosts changed",
                      flush=True)
        print(f"\nfleet bench: {args.hosts} {args.suite} hosts, probe-appliance")
        for forks in (1, args.hosts):
            ratio = results[("raw", forks)] / results[("collection", forks)]
            print(f"  forks={forks}: raw/collection = {ratio:.2f}")
        for name in ("collection", "raw"):
            speedup = results[(name, 1)] / results[(name, args.hosts)]
            print(f"  {name}: forks=1/forks={args.hosts} = {speedup:.2f}")
        print(f"  re-run: raw/collection = {reruns['raw'] / reruns['collection']:.2f}")
        return 0
    finally:
        if golden is not None:
            Chroot(golden).remove()
        Chroot(workdir).remove()


if __name__ == "__main__":
    sys.exit(main())
