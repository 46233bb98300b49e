"""Tests of the test harness itself: safe chroot removal, the server tree, Apache on loopback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.apache import serve_apache
from tests.support.chroot import Chroot, UnsafeRemoval, mounts_under, overlay_tree
from tests.support.net import free_port, http_get
from tests.support.repo import KEYRING_INSIDE, SOURCES_INSIDE, Repo

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:5 / /var/tmp/t/root/proc rw - proc proc rw
31 22 0:6 / /var/tmp/t/root/mnt/a rw - tmpfs tmpfs rw
32 31 8:1 /x /var/tmp/t/root/mnt/a/b rw - ext4 /dev/vda rw
33 22 0:7 / /var/tmp/t/root2/proc rw - proc proc rw
34 22 0:8 / /var/tmp/t/root/with\\040space rw - tmpfs tmpfs rw
"""


def test_mounts_under_lists_deepest_first_and_only_below_root() -> None:
    found = mounts_under(Path("/var/tmp/t/root"), MOUNTINFO)
    assert found == [
        Path("/var/tmp/t/root/mnt/a/b"),
        Path("/var/tmp/t/root/mnt/a"),
        Path("/var/tmp/t/root/with space"),
        Path("/var/tmp/t/root/proc"),
    ]


def test_resolve_keeps_absolute_symlinks_inside_the_tree(tmp_path: Path) -> None:
    (tmp_path / "run" / "apache2").mkdir(parents=True)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "run").symlink_to("/run")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "link").symlink_to("../run/apache2")
    chroot = Chroot(tmp_path)
    assert chroot.resolve("/var/run/apache2/apache2.pid") == tmp_path / "run/apache2/apache2.pid"
    assert chroot.resolve("/etc/link/x") == tmp_path / "run/apache2/x"


def _bind(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)


@pytest.mark.integration
@pytest.mark.suite("bookworm")
def test_remove_unmounts_everything_before_deleting(pristine_root: Chroot, tmp_path: Path) -> None:
    canary = tmp_path / "host-files"
    canary.mkdir()
    (canary / "keep-me").write_text("host data")
    with pristine_root.mount_proc():
        assert pristine_root.mounts() == [pristine_root.path("/proc")]
    assert pristine_root.mounts() == []
    # Left mounted, as a crashed test would: tmpfs at /mnt/a, the host dir bound at /mnt/a/b, /proc.
    pristine_root.path("/mnt/a").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(pristine_root.path("/mnt/a"))], check=True)
    _bind(canary, pristine_root.path("/mnt/a/b"))
    subprocess.run(["mount", "-t", "proc", "proc", str(pristine_root.path("/proc"))], check=True)
    assert len(pristine_root.mounts()) == 3

    pristine_root.remove()

    assert not pristine_root.root.exists()
    assert (canary / "keep-me").read_text() == "host data"
    assert mounts_under(pristine_root.root) == []


@pytest.mark.integration
def test_an_overlay_tree_leaves_its_lower_tree_untouched(tmp_path: Path) -> None:
    lower = tmp_path / "cached"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "kept").write_text("cached")
    view = overlay_tree(lower, tmp_path / "view")
    assert view.read_text("/etc/kept") == "cached"
    view.write_text("/etc/kept", "changed by a test")
    view.write_text("/etc/new", "new")
    view.resolve("/etc/kept").unlink()
    assert view.mounts() == []  # the overlay itself is the tree's root, not a mount inside it

    view.remove()

    assert not (tmp_path / "view").exists()
    assert sorted(p.name for p in (lower / "etc").iterdir()) == ["kept"]
    assert (lower / "etc" / "kept").read_text() == "cached"


@pytest.mark.integration
@pytest.mark.suite("bookworm")
def test_remove_refuses_while_a_mount_is_busy(pristine_root: Chroot, tmp_path: Path) -> None:
    canary = tmp_path / "host-files"
    canary.mkdir()
    (canary / "keep-me").write_text("host data")
    inside = pristine_root.path("/mnt/busy")
    _bind(canary, inside)
    # A process of ours with its working directory in the mount keeps it busy.
    holder = subprocess.Popen(["sleep", "300"], cwd=inside)
    try:
        with pytest.raises(UnsafeRemoval, match="still mounted"):
            pristine_root.remove()
        assert pristine_root.path("/etc/debian_version").exists()
        assert (canary / "keep-me").read_text() == "host data"
    finally:
        holder.kill()
        holder.wait()
    pristine_root.remove()
    assert not pristine_root.root.exists()
    assert (canary / "keep-me").exists()


@pytest.mark.integration
@pytest.mark.suite("bookworm")
def test_run_gives_a_clean_environment_and_policy_rc_d(pristine_root: Chroot) -> None:
    env = pristine_root.run(["env"], env={"EXTRA": "1"}).stdout.split()
    assert sorted(env) == sorted(
        [
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG=C.UTF-8",
            "DEBIAN_FRONTEND=noninteractive",
            "EXTRA=1",
        ]
    )
    assert pristine_root.run(["/usr/sbin/policy-rc.d"], check=False).returncode == 101
    with pytest.raises(subprocess.CalledProcessError, match="exited with status 3"):
        pristine_root.run(["sh", "-c", "echo boom >&2; exit 3"])


@pytest.mark.integration
@pytest.mark.suite("bookworm")
def test_state_digest_sees_a_debconf_change(pristine_root: Chroot) -> None:
    before = pristine_root.state_digest()
    assert before == pristine_root.state_digest()
    pristine_root.run(["debconf-set-selections"], input="vatools-probe vatools-probe/q string x\n")
    after = pristine_root.state_digest()
    assert after["/var/cache/debconf/config.dat"] != before["/var/cache/debconf/config.dat"]
    assert after["/var/lib/dpkg/status"] == before["/var/lib/dpkg/status"]


@pytest.mark.integration
def test_repo_server_serves_signed_indexes(repo: Repo, repo_server: str) -> None:
    assert repo_server.startswith("http://127.0.0.1:")
    for suite in repo.suites:
        status, body = http_get(f"{repo_server}/{suite}/InRelease")
        assert status == 200
        assert body.startswith("-----BEGIN PGP SIGNED MESSAGE-----")
        assert "vatools" in repo.packages(suite)
        status, body = http_get(f"{repo_server}/tests/{suite}/InRelease")
        assert status == 200
        assert body.startswith("-----BEGIN PGP SIGNED MESSAGE-----")


@pytest.mark.integration
def test_the_repository_users_install_from_holds_no_test_package(repo: Repo) -> None:
    from tests.support.repo import probe_sources

    probes = {p.name for p in probe_sources()}
    assert probes, "tests/data/packages is empty"
    for suite in repo.suites:
        users, tests = repo.packages(suite), repo.test_packages(suite)
        assert not [name for name in users if name.startswith("probe-")], users
        assert "probe-appliance" in tests and "vatools" not in tests
        index = (repo.directory / suite / "Packages").read_text()
        assert "vatools test" not in index, "a test fixture's description in the users' index"


@pytest.mark.integration
def test_server_tree_has_vatools_from_our_signed_repo(
    server_root: Chroot, repo: Repo, suite: str
) -> None:
    status = server_root.run(["dpkg-query", "-W", "-f", "${Status} ${Version}", "vatools"]).stdout
    assert status == f"install ok installed {repo.packages(suite)['vatools']}"
    policy = server_root.run(["apt-cache", "policy", "vatools"]).stdout
    assert "http://127.0.0.1:" in policy
    source = server_root.read_text(SOURCES_INSIDE)
    assert f"Signed-By: {KEYRING_INSIDE}" in source and "Suites: ./" in source
    # apt fetched the signed InRelease (no unsigned Release fallback was allowed).
    lists = [p.name for p in server_root.path("/var/lib/apt/lists").iterdir()]
    assert any(
        name.startswith("127.0.0.1:") and name.endswith("_InRelease") for name in lists
    ), lists
    assert server_root.run(["vainstall", "--help"], check=False).returncode == 0


def _listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp) in LISTEN state (0A) on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":
                found.add(address)
    return found


def _processes_rooted_in(root: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "root")) == Path(os.path.realpath(root)):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


@pytest.mark.integration
def test_apache_answers_on_loopback_only(pristine_root: Chroot) -> None:
    pristine_root.run(["apt-get", "update"])
    pristine_root.run(["apt-get", "install", "-y", "--no-install-recommends", "apache2"])
    ports_conf = pristine_root.read_text("/etc/apache2/ports.conf")
    port = free_port()

    with serve_apache(pristine_root, port) as url:
        status, body = http_get(url + "/")
        assert status == 200
        assert "It works" in body
        assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
        assert pristine_root.path("/proc") in pristine_root.mounts()

    assert _listening_addresses(port) == set()
    assert _processes_rooted_in(pristine_root.root) == []
    assert pristine_root.mounts() == []
    assert pristine_root.read_text("/etc/apache2/ports.conf") == ports_conf
