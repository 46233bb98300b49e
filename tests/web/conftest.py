"""One installed appliance per suite for all web tests of a session: a server chroot with
dokuwiki-appliance installed by vainstall (appliance-control comes with it), served on
loopback by tests/support/control.py. Screenshots go to ARTIFACTS (listed at the end)."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.support.chroot import Chroot
from tests.support.commands import secrets_of, vainstall
from tests.support.control import serve_control
from tests.support.net import free_port
from tests.support.timing import TIMINGS

ARTIFACTS = Path(os.environ.get("VATOOLS_ARTIFACTS", "build/test-artifacts")).absolute()
SAVED: list[Path] = []


@dataclass
class Served:
    chroot: Chroot
    url: str
    password: str
    logs: Path


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if SAVED:
        terminalreporter.write_sep("=", "appliance-control: screenshots saved")
        for path in SAVED:
            terminalreporter.write_line(str(path))


@pytest.fixture(scope="session")
def control_served(_trees, repo, repo_server, harness_dir: Path  # type: ignore[no-untyped-def]
                   ) -> Iterator[Callable[[str], Served]]:
    """suite -> the interface served from a chroot with dokuwiki-appliance, made on first use."""
    made: dict[str, Served] = {}
    stack = contextlib.ExitStack()

    def get(suite: str) -> Served:
        if suite not in made:
            chroot = _trees.copy(_trees.server_tree(suite, repo, repo_server), f"control-{suite}")
            stack.callback(chroot.remove)
            with TIMINGS.measure(f"vainstall dokuwiki-appliance for the web tests ({suite})"):
                result = vainstall(chroot, "--yes", "dokuwiki-appliance")
            assert result.returncode == 0, result.stdout + result.stderr
            password = secrets_of(chroot, "dokuwiki-appliance")["appliance-control/admin-password"]
            assert password in result.stdout  # shown once, like the wiki's own
            shutil.rmtree(ARTIFACTS / f"control-{suite}", ignore_errors=True)  # an earlier run's
            logs = harness_dir / f"control-logs-{suite}"
            url = stack.enter_context(serve_control(chroot, free_port(), logs))
            made[suite] = Served(chroot, url, password, logs)
        return made[suite]

    with stack:
        yield get
