"""vainstall under faults, in real chroots: every failure ends "refused, nothing changed" or
"failed, rolled back", and the system is checked against its state before.

The state compared: the set of installed packages with versions (dpkg keeps records of purged
packages, so its status file itself may differ), and debconf's database files byte for byte.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from tests.support.chroot import Chroot

pytestmark = pytest.mark.integration


def installed(chroot: Chroot) -> str:
    return chroot.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Package} ${Version}\n"]).stdout


def debconf(chroot: Chroot) -> dict[str, str]:
    return {k: v for k, v in chroot.state_digest().items() if "debconf" in k}


def snapshot(chroot: Chroot) -> tuple[set[str], dict[str, str]]:
    lines = {line for line in installed(chroot).splitlines() if line.startswith("ii ")}
    return lines, debconf(chroot)


def vainstall(chroot: Chroot, *args: str) -> subprocess.CompletedProcess[str]:
    return chroot.run(["vainstall", "--yes", *args], check=False)


def test_failing_postinst_is_rolled_back(server_root: Chroot) -> None:
    before = snapshot(server_root)
    result = vainstall(server_root, "probe-broken-appliance")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "probe-fails: installed probe-fails package post-installation script" in result.stderr
    assert "Everything was rolled back" in result.stderr
    assert snapshot(server_root) == before


def test_config_script_that_loops_is_stopped_and_rolled_back(server_root: Chroot) -> None:
    before = snapshot(server_root)
    result = vainstall(server_root, "--stall-timeout", "10", "probe-looping-appliance")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "apt made no progress for 10 s while" in result.stderr
    assert "check the seed's answers (probe-loops: probe-loops/port)" in result.stderr
    assert snapshot(server_root) == before
    assert not server_root.path("/etc/probe-loops.conf").exists()


def test_unresolvable_dependency_is_refused(server_root: Chroot) -> None:
    before = server_root.state_digest()
    result = vainstall(server_root, "probe-unresolvable-appliance")
    assert result.returncode == 3, result.stdout + result.stderr
    assert (
        "apt cannot install probe-unresolvable-appliance: unmet dependencies"
        " (nothing provides vatools-no-such-package)" in result.stderr
    )
    assert server_root.state_digest() == before


def test_dpkg_lock_held_by_another_process(server_root: Chroot) -> None:
    holder = subprocess.Popen(
        server_root.argv([
            "python3", "-c",
            "import fcntl, sys, time\n"
            "f = open('/var/lib/dpkg/lock-frontend', 'w')\n"
            "fcntl.lockf(f, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(120)\n",
        ]),
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = server_root.state_digest()
        result = vainstall(server_root, "--lock-timeout", "3", "probe-appliance")
    finally:
        holder.kill()  # the process we started, by PID
        holder.wait()
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Waiting up to 3 s for another apt or dpkg to finish" in result.stderr
    assert "another apt or dpkg has held /var/lib/dpkg/lock-frontend for 3 s" in result.stderr
    assert server_root.state_digest() == before


def test_second_vainstall_at_once_is_refused(server_root: Chroot) -> None:
    first = subprocess.Popen(
        server_root.argv(["vainstall", "--yes", "--stall-timeout", "600", "probe-looping-appliance"]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        _wait_for_line(first, "==> Installing")
        result = vainstall(server_root, "probe-appliance")
        assert result.returncode == 3, result.stdout + result.stderr
        assert "another vainstall is running on this system" in result.stderr
    finally:
        first.send_signal(signal.SIGTERM)  # the vainstall we started, by PID
        first.communicate(timeout=300)


def _default_sigint() -> None:
    """A test run started in the background has SIGINT ignored, and children inherit that:
    vainstall must see the signal as an administrator's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_install_is_rolled_back(server_root: Chroot, signum: int) -> None:
    before = snapshot(server_root)
    proc = subprocess.Popen(
        server_root.argv(["vainstall", "--yes", "--stall-timeout", "600", "probe-looping-appliance"]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=_default_sigint,
    )
    _wait_for_line(proc, "==> Installing")
    time.sleep(3)  # dpkg is at work: the config script loops
    proc.send_signal(signum)  # the vainstall we started (env and chroot exec it: same PID)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 4, out + err
    assert "failed: interrupted" in err and "Everything was rolled back" in err
    assert snapshot(server_root) == before


def test_full_download_disk_is_refused_before_any_change(server_root: Chroot) -> None:
    archives = server_root.path("/var/cache/apt/archives")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(archives)], check=True)
    try:
        (archives / "partial").mkdir()
        before = server_root.state_digest()
        result = vainstall(server_root, "dokuwiki-appliance")
        assert result.returncode == 3, result.stdout + result.stderr
        assert "downloading packages failed" in result.stderr
        assert server_root.state_digest() == before
    finally:
        subprocess.run(["umount", str(archives)], check=True)


def test_replacing_with_a_failing_appliance_reinstates_the_first(server_root: Chroot) -> None:
    assert vainstall(server_root, "probe-appliance").returncode == 0
    before = snapshot(server_root)
    result = vainstall(server_root, "--replace", "probe-broken-appliance")
    assert result.returncode == 4, result.stdout + result.stderr
    assert snapshot(server_root) == before  # probe-appliance is installed again


def _wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float = 300) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    for line in proc.stderr:
        if text in line:
            return
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"vainstall never printed {text!r}")
