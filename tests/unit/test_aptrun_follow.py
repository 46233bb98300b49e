"""vatools.aptrun.follow on real child processes standing in for apt-get: each gets the write end
of a status pipe (as APT::Status-Fd) and its stdout on a second pipe, in its own process group
(vatools.run.start), and writes apt-style lines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

from vatools.aptrun import Stalled, follow
from vatools.progress import StatusLine
from vatools.run import start

PRELUDE = "import os, subprocess, sys, time\nfd = int(sys.argv[1])\n"


@pytest.fixture
def started() -> Iterator[list[int]]:
    """Pids of grandchildren a test's child reports; any still alive are killed after it."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def fake_apt(script: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start /usr/bin/python3 running SCRIPT with the status pipe's write end as argv[1]."""
    read_fd, write_fd = os.pipe()
    proc = start(["/usr/bin/python3", "-c", PRELUDE + textwrap.dedent(script), str(write_fd)],
                 stdout=subprocess.PIPE, pass_fds=(write_fd,))
    os.close(write_fd)
    return proc, read_fd


def _alive(pid: int) -> bool:
    """Running, not a zombie (a reparented zombie waits for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_status_lines_errors_and_output_are_collected() -> None:
    proc, read_fd = fake_apt("""
        print("Reading package lists...", flush=True)
        os.write(fd, b"dlstatus:1:20.0:Retrieving file 1 of 2\\n")
        os.write(fd, b"pmstatus:pkg:42.0:Configuring pkg\\npmerror:pkg:50.0:subprocess ")
        os.write(fd, b"installed post-installation script returned error exit status 1\\n")
        os.write(fd, b"not a status line\\n")
        print("E: Sub-process /usr/bin/dpkg returned an error code (1)", flush=True)
        sys.exit(100)
    """)
    seen: list[StatusLine] = []
    assert proc.stdout is not None
    with proc.stdout:
        followed = follow(proc, read_fd, seen.append, output_fd=proc.stdout.fileno())
    assert proc.returncode == 100
    assert [(s.kind, s.percent, s.text) for s in seen] == [
        ("dlstatus", 20.0, "Retrieving file 1 of 2"),
        ("pmstatus", 42.0, "Configuring pkg"),
        ("pmerror", 50.0,
         "subprocess installed post-installation script returned error exit status 1"),
    ]
    assert followed.errors == [
        "pkg: subprocess installed post-installation script returned error exit status 1"]
    assert followed.output.decode().splitlines() == [
        "Reading package lists...", "E: Sub-process /usr/bin/dpkg returned an error code (1)"]
    with pytest.raises(OSError):
        os.fstat(read_fd)  # follow closed the status fd


def test_the_loop_ends_when_apt_get_exits_though_a_daemon_holds_both_pipes(
    started: list[int],
) -> None:
    # The "daemon" inherits the status fd and stdout and outlives its parent by a minute.
    proc, read_fd = fake_apt("""
        daemon = subprocess.Popen(["sleep", "60"], pass_fds=(fd,))
        print(daemon.pid, flush=True)
        os.write(fd, b"pmstatus:pkg:100.0:Installed pkg\\n")
    """)
    seen: list[StatusLine] = []
    begun = time.monotonic()
    assert proc.stdout is not None
    with proc.stdout:
        followed = follow(proc, read_fd, seen.append, output_fd=proc.stdout.fileno(),
                          stall_timeout=30)
        started.append(int(followed.output))
    assert time.monotonic() - begun < 10
    assert proc.returncode == 0
    assert [s.text for s in seen] == ["Installed pkg"]
    assert _alive(started[0])  # still holding the pipes: the loop did not wait for EOF


def test_a_stall_raises_and_stops_apt_gets_process_group(started: list[int]) -> None:
    proc, read_fd = fake_apt("""
        script = subprocess.Popen(["sleep", "60"])  # a config script asking forever
        print(script.pid, flush=True)
        os.write(fd, b"pmstatus:pkg:42.0:Configuring pkg (amd64)\\n")
        time.sleep(60)
    """)
    assert proc.stdout is not None
    started.append(int(proc.stdout.readline()))
    begun = time.monotonic()
    with proc.stdout, pytest.raises(Stalled) as raised:
        follow(proc, read_fd, lambda status: None, output_fd=proc.stdout.fileno(),
               stall_timeout=1, explain_stall=lambda package: f"; suspect {package}")
    assert 1 <= time.monotonic() - begun < 10
    assert str(raised.value) == (
        "apt made no progress for 1 s while 'Configuring pkg (amd64)'; suspect pkg")
    assert proc.returncode == -signal.SIGTERM
    deadline = time.monotonic() + 5
    while _alive(started[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(started[0])  # the grandchild went with apt-get's group
