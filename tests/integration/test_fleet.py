"""Many servers: `vainstall --host` over SSH and the Ansible collection, on test hosts of this machine.

Each host is an overlay of a "fresh server" tree (openssh-server, python3, python3-apt, sudo; no
vatools, no apt source) with its own sshd and host key in its own network namespace
(tests/support/hosts.py).  The clients run in the controller namespace, where our repository is
served on the bridge address; the hosts reach nothing else.  The light probe appliances of the
test repository keep the cost low.
"""

from __future__ import annotations

import base64
import fcntl
import json
import re
import shlex
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.support.chroot import Chroot
from tests.support.hosts import SUBNET, Fleet, FleetHost, golden_host_tree
from tests.support.repo import Repo, TESTS_PREFIX

pytestmark = pytest.mark.integration

HostFactory = Callable[..., FleetHost]
COLLECTIONS = Path(__file__).resolve().parents[2] / "ansible"


class Goldens:
    """One fresh-server tree per suite, made on first use."""

    def __init__(self, trees, repo: Repo, base_url: str, workdir: Path) -> None:  # type: ignore[no-untyped-def]
        self.trees, self.repo, self.base_url, self.workdir = trees, repo, base_url, workdir
        self.made: dict[str, Path] = {}

    def __call__(self, suite: str) -> Path:
        if suite not in self.made:
            self.made[suite] = golden_host_tree(self.trees.pristine_tree(suite), self.repo,
                                                self.base_url, self.workdir / f"golden-{suite}")
        return self.made[suite]


@pytest.fixture(scope="module")
def fleet(harness_dir: Path, _trees, repo: Repo, repo_server: str) -> Iterator[tuple[Fleet, Goldens]]:  # type: ignore[no-untyped-def]
    workdir = harness_dir / "fleet"
    goldens = Goldens(_trees, repo, repo_server, workdir)
    try:
        with Fleet(workdir) as made:
            made.serve(repo.served())
            yield made, goldens
    finally:
        for tree in goldens.made.values():
            Chroot(tree).remove()


@pytest.fixture
def new_host(fleet: tuple[Fleet, Goldens]) -> Iterator[HostFactory]:
    made, goldens = fleet
    mine: list[FleetHost] = []

    def add(suite: str, **kwargs: object) -> FleetHost:
        mine.append(made.add_host(goldens(suite), suite, **kwargs))  # type: ignore[arg-type]
        return mine[-1]

    yield add
    for host in mine:
        made.remove_host(host)


def repository_options(fleet: Fleet, repo: Repo) -> list[str]:
    keyring = fleet.workdir / "vatools-archive-keyring.gpg"
    keyring.write_bytes(repo.keyring())
    return ["--repository", f"{fleet.base_url}/{{suite}}/",
            "--repository", f"{fleet.base_url}/{TESTS_PREFIX}/{{suite}}/", "--keyring", str(keyring)]


def host_secrets(host: FleetHost, appliance: str) -> dict[str, str]:
    path = host.chroot.resolve(f"/var/lib/vatools/secrets/{appliance}")
    assert path.stat().st_mode & 0o777 == 0o600
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_vainstall_over_ssh_on_a_fresh_server(fleet: tuple[Fleet, Goldens], new_host: HostFactory,
                                             repo: Repo, suite: str, tmp_path: Path) -> None:
    made, _ = fleet
    host = new_host(suite)
    assert not host.chroot.path("/usr/bin/vainstall").exists()  # a fresh server
    # As a sudo user: the plan only, after the repository and vatools are set up there.
    result = made.vatools("vainstall", "--host", f"admin@{host.name}", *repository_options(made, repo),
                          "--dry-run", "probe-appliance")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Appliance:  probe-appliance" in result.stdout and "Dry run: nothing was changed." in result.stdout
    assert host.chroot.path("/usr/bin/vainstall").exists()
    assert f"{made.base_url}/{suite}/" in host.chroot.read_text("/etc/apt/sources.list.d/vatools.sources")

    # A bad seed is refused by the server's own checks; nothing changes there.
    before = host.chroot.state_digest()
    bad = tmp_path / "bad.seed"
    bad.write_text("probe-questions probe-questions/color select purple\n")
    result = made.vatools("vainstall", "--host", f"admin@{host.name}", "--seed", str(bad), "--yes",
                          "probe-appliance")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "bad.seed:1" in result.stderr and "purple" in result.stderr
    assert host.chroot.state_digest() == before

    # The install, confirmed on a terminal here after the server's plan; a --set answer
    # travels on ssh's stdin only.
    command = shlex.join(["/usr/bin/python3", "-m", "vatools.cli.vainstall", "--host", host.name,
                          "--set", "probe-questions/name=fleet-test", "probe-appliance"])
    result = made.client(["script", "-qec", command, "/dev/null"], input="y\n", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Install on {host.name}? [y/N]" in result.stdout
    assert result.stdout.index("Appliance:  probe-appliance") < result.stdout.index("Install on")
    assert "probe-appliance 1.0 is installed" in result.stdout
    generated = host_secrets(host, "probe-appliance")["probe-questions/password"]
    assert generated in result.stdout  # shown once, here
    assert "name=fleet-test" in host.chroot.read_text("/etc/probe-questions.conf")
    log = host.chroot.resolve("/var/log/vatools/vainstall.log")
    assert not log.exists() or generated not in log.read_text()
    assert not list(host.chroot.path("/tmp").glob("vainstall-remote-*"))  # the stdin files are gone

    # A backup of the server's appliance: made there, copied here (0600), removed there.
    backup = tmp_path / "h.abf"
    result = made.client(["/usr/bin/python3", "-m", "vatools", "backup", "create", "--host",
                          f"admin@{host.name}", "--output", str(backup)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{backup}: from admin@{host.name}" in result.stdout
    assert backup.stat().st_mode & 0o777 == 0o600
    assert not list(host.chroot.path("/var/tmp").glob("vatools-backup-*"))
    result = made.client(["/usr/bin/python3", "-m", "vatools", "backup", "verify", str(backup)])
    assert result.returncode == 0, result.stdout + result.stderr

    # The second run has nothing to do; valist --host shows the host's appliance.
    result = made.vatools("vainstall", "--host", host.name, "--yes", "probe-appliance")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "probe-appliance is already installed on h" in result.stdout and "nothing to do" in result.stdout
    result = made.vatools("valist", "--host", f"plain@{host.name}", "--installed", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [e["name"] for e in json.loads(result.stdout)] == ["probe-appliance"]


@pytest.mark.suite("bookworm")
def test_unreachable_refused_and_unprivileged_hosts_are_named(
        fleet: tuple[Fleet, Goldens], new_host: HostFactory, suite: str) -> None:
    made, _ = fleet
    host = new_host(suite, authorized=("admin", "plain"))  # root's key is not authorized
    nowhere = str(SUBNET.network_address + 250)  # on the bridge, nobody answers there
    cases = [
        (f"root@{nowhere}", 10, f"root@{nowhere}: cannot connect"),
        (f"root@{host.name}", 11, f"root@{host.name}: login refused"),
        (f"plain@{host.name}", 12, f"plain@{host.name}: logged in as uid"),
    ]
    before = host.chroot.state_digest()
    for target, status, message in cases:
        result = made.vatools("vainstall", "--host", target, "--yes", "probe-appliance")
        assert result.returncode == status, (target, result.stdout, result.stderr)
        assert message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert "sudo" in made.vatools("vainstall", "--host", f"plain@{host.name}", "--yes",
                                  "probe-appliance").stderr
    assert host.chroot.state_digest() == before


PLAYBOOK = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: our repository and vatools
      vatools.appliance.bootstrap:
        repositories: "{{ repositories }}"
        keyring: "{{ lookup('file', keyring_file) }}"
      tags: [bootstrap]
    - name: the probe appliance, named after the host
      vatools.appliance.appliance:
        name: probe-appliance
        answers:
          probe-questions/color: blue
        lock_timeout: 3
"""

RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def ansible_playbook(fleet: Fleet, workdir: Path, *args: str) -> tuple[dict[str, dict[str, int]], str]:
    """Run the playbook in the controller; (recap per host, output)."""
    env = {"ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS), "ANSIBLE_PIPELINING": "True",
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORKS": "8", "ANSIBLE_HOST_KEY_CHECKING": "True",
           "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_LOCAL_TEMP": "/root/.ansible/tmp"}
    result = fleet.client(["ansible-playbook", "-i", str(workdir / "hosts.ini"),
                           str(workdir / "site.yml"), *args], env=env)
    output = result.stdout + result.stderr
    recap = {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)),
                          "unreachable": int(m.group(4)), "failed": int(m.group(5))}
             for m in RECAP.finditer(result.stdout)}
    assert recap, output
    return recap, output


def test_a_playbook_on_hosts_of_both_suites(fleet: tuple[Fleet, Goldens], new_host: HostFactory,
                                            repo: Repo, tmp_path: Path) -> None:
    made, _ = fleet
    hosts = [new_host(suite) for suite in ("bookworm", "trixie", "bookworm", "trixie")]
    locked = new_host("bookworm")
    every = [*hosts, locked]
    (tmp_path / "key.b64").write_text(base64.b64encode(repo.keyring()).decode())
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    repositories = json.dumps([f"{made.base_url}/{{suite}}/", f"{made.base_url}/{TESTS_PREFIX}/{{suite}}/"])
    (tmp_path / "hosts.ini").write_text(
        "[fleet]\n" + "".join(f"{h.name}\n" for h in every)
        + "\n[fleet:vars]\nansible_user=root\nansible_python_interpreter=/usr/bin/python3\n"
        + f"keyring_file={tmp_path}/key.b64\nrepositories={repositories}\n")

    # --check --diff on fresh servers: nothing changes, and the diff says what would.
    fresh = {h.name: h.chroot.state_digest() for h in every}
    recap, output = ansible_playbook(made, tmp_path, "--check", "--diff")
    assert all(recap[h.name]["failed"] == 0 and recap[h.name]["changed"] == 2 for h in every), output
    assert {h.name: h.chroot.state_digest() for h in every} == fresh
    assert not any(h.chroot.path("/etc/apt/sources.list.d/vatools.sources").exists() for h in every)

    # vatools on every host; then the check shows each host's real plan, still changing nothing.
    recap, output = ansible_playbook(made, tmp_path, "--tags", "bootstrap")
    assert all(recap[h.name]["changed"] == 1 for h in every), output
    bootstrapped = {h.name: h.chroot.state_digest() for h in every}
    recap, output = ansible_playbook(made, tmp_path, "--check", "--diff")
    assert all(recap[h.name] == {"ok": 2, "changed": 1, "unreachable": 0, "failed": 0} for h in every), output
    assert '"probe-questions/password": "(generated)"' in output and '"probe-questions/color": "blue"' not in output
    assert "probe-questions" in output and "probe-appliance" in output
    assert {h.name: h.chroot.state_digest() for h in every} == bootstrapped

    # The real run, with dpkg's lock held on one host: that host fails alone, the others finish.
    lock_file = locked.chroot.resolve("/var/lib/dpkg/lock-frontend")
    with open(lock_file, "a") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)
        recap, output = ansible_playbook(made, tmp_path)
    assert recap[locked.name]["failed"] == 1, output
    assert "lock" in output
    assert locked.chroot.state_digest() == bootstrapped[locked.name]
    for host in hosts:
        assert recap[host.name] == {"ok": 2, "changed": 1, "unreachable": 0, "failed": 0}, output
        assert "color=blue" in host.chroot.read_text("/etc/probe-questions.conf")
        secret = host_secrets(host, "probe-appliance")["probe-questions/password"]
        assert secret not in output  # never returned, never logged

    # A re-run changes nothing on the hosts that have it; the freed host now installs.
    recap, output = ansible_playbook(made, tmp_path, "--diff")
    for host in hosts:
        assert recap[host.name] == {"ok": 2, "changed": 0, "unreachable": 0, "failed": 0}, output
    assert recap[locked.name] == {"ok": 2, "changed": 1, "unreachable": 0, "failed": 0}, output
