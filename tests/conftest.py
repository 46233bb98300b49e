"""Fixtures for tests on real systems: chroots from mmdebstrap, our signed repository, servers.

Run as root with Debian's interpreter: `/usr/bin/python3 -m pytest -m integration`.

Fixtures (all built lazily, only when a test asks for them):

    suite           "bookworm" or "trixie": a test using it (or a fixture below that needs it)
                    runs once per suite, ids [bookworm] / [trixie]; `@pytest.mark.suite("trixie")`
                    limits it to the suites named.
    pristine_root   a private view (overlayfs) of a minbase tree of `suite`, policy-rc.d
                    installed, no apt lists yet; a Chroot (tests/support/chroot.py), removed after.
    server_root     a private view (overlayfs) of the "server" tree of `suite`: minbase +
                    policy-rc.d + our key in /etc/apt/keyrings/vatools.gpg +
                    /etc/apt/sources.list.d/vatools.sources + `apt-get update` +
                    `apt-get install -y vatools` from the signed repository.
    pristine, server
                    factories for tests that need several trees or a fixed suite:
                    `server("trixie")` -> a fresh Chroot, removed after the test.
    repo            the signed repository (tests/support/repo.py Repo), built once per session
                    by vatools.packaging.repo.build_repository from this tree + tests/data/packages/*.
    repo_server     base URL (http://127.0.0.1:PORT) of a thread serving the repository;
                    inside a chroot a suite is at BASE/SUITE/ (the chroot shares our network).
    harness_dir     the session's scratch directory.

Each mmdebstrap tree is made once per suite and session, a server tree once per suite and
session; every test gets its own overlayfs view of one (the cached trees never change).
Everything lives in a scratch directory under /var/tmp (on disk, not a tmpfs), removed at the
end of the session after checking that nothing below it is still mounted.

For developers: VATOOLS_TEST_CACHE=/some/dir keeps the mmdebstrap trees there and reuses
them across runs (saves ~20 s per suite; delete the dir to refresh them). Nothing else is
kept: the repository and the server trees follow the code under test.

A missing tool is a failure, never a skip. The end of a run shows the slowest 15 steps
(`--durations=15` unless given otherwise) and the times of the harness's own expensive steps.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import pytest

from tests.support.chroot import Chroot, copy_tree, overlay_tree
from tests.support.images import image_cache, images  # noqa: F401 - fixtures shared by test files
from tests.support.net import serve_directory
from tests.support.pristine import SUITES, pristine_tree, require_tools
from tests.support.repo import Repo, build_repo, make_server_tree
from tests.support.timing import TIMINGS

if TYPE_CHECKING:
    from _pytest.terminal import TerminalReporter

ChrootFactory = Callable[[str], Chroot]


def pytest_configure(config: pytest.Config) -> None:
    if config.option.durations is None:
        config.option.durations = 15


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that uses `suite` on each suite (or those named by its suite marker)."""
    if "suite" not in metafunc.fixturenames:
        return
    names: list[str] = []
    for marker in metafunc.definition.iter_markers("suite"):
        names.extend(marker.args)
    unknown = set(names) - set(SUITES)
    if unknown:
        raise pytest.UsageError(
            f"{metafunc.definition.nodeid}: unknown suite {sorted(unknown)}; known: {SUITES}"
        )
    chosen = [s for s in SUITES if s in names] if names else list(SUITES)
    metafunc.parametrize("suite", chosen, ids=chosen)


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    lines = TIMINGS.report()
    if lines:
        terminalreporter.write_sep("=", "vatools harness: expensive steps")
        for line in lines:
            terminalreporter.write_line(line)


class _Trees:
    """Pristine and server trees of this session, each made on first use; every test gets an
    overlayfs view of one (milliseconds, where `cp -a` takes seconds)."""

    def __init__(self, workdir: Path, cache: Path) -> None:
        self.workdir = workdir
        self.cache = cache
        self._pristine: dict[str, Path] = {}
        self._servers: dict[str, Chroot] = {}
        self._copies = 0

    def pristine_tree(self, suite: str) -> Path:
        if suite not in self._pristine:
            self._pristine[suite] = pristine_tree(self.cache, suite)
        return self._pristine[suite]

    def server_tree(self, suite: str, repo: Repo, base_url: str) -> Path:
        if suite not in self._servers:
            self._copies += 1
            with TIMINGS.measure("cp -a of a tree"):
                fresh = copy_tree(self.pristine_tree(suite), self._place(f"server-{suite}"))
            self._servers[suite] = make_server_tree(fresh, repo, base_url, suite)
        return self._servers[suite].root

    def copy(self, source: Path, name: str) -> Chroot:
        """A test's own tree: an overlay on a cached tree, which never changes again."""
        self._copies += 1
        with TIMINGS.measure("overlay of a tree"):
            return overlay_tree(source, self._place(name))

    def _place(self, name: str) -> Path:
        return self.workdir / "trees" / f"{self._copies:03d}-{name}"

    def remove_all(self) -> None:
        for chroot in self._servers.values():
            chroot.remove()


def _check_host() -> None:
    if os.geteuid() != 0:
        pytest.fail(
            "integration tests need root (mmdebstrap --mode=root, chroot, mount)", pytrace=False
        )
    try:
        require_tools(
            "mmdebstrap",
            "chroot",
            "mount",
            "umount",
            "cp",
            "gpg",
            "dpkg-buildpackage",
            "apt-ftparchive",
        )
    except Exception as error:  # noqa: BLE001 - reported as a failure with its own words
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def harness_dir() -> Iterator[Path]:
    workdir = Path(tempfile.mkdtemp(prefix="vatools-tests-", dir="/var/tmp"))
    try:
        yield workdir
    finally:
        with TIMINGS.measure("removing the session's trees and scratch dir"):
            Chroot(workdir).remove()  # refuses while anything below is mounted


@pytest.fixture(scope="session")
def _trees(harness_dir: Path) -> Iterator[_Trees]:
    _check_host()
    cache_env = os.environ.get("VATOOLS_TEST_CACHE")
    cache = Path(cache_env) if cache_env else harness_dir / "cache"
    trees = _Trees(harness_dir, cache)
    try:
        yield trees
    finally:
        with TIMINGS.measure("removing the session's trees and scratch dir"):
            trees.remove_all()


@pytest.fixture(scope="session")
def repo(harness_dir: Path) -> Repo:
    _check_host()
    return build_repo(harness_dir)


@pytest.fixture(scope="session")
def repo_server(repo: Repo) -> Iterator[str]:
    with serve_directory(repo.served()) as base_url:
        yield base_url


def _test_name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:60]


@pytest.fixture
def pristine(_trees: _Trees, request: pytest.FixtureRequest) -> Iterator[ChrootFactory]:
    made: list[Chroot] = []

    def make(suite: str) -> Chroot:
        made.append(_trees.copy(_trees.pristine_tree(suite), f"{_test_name(request)}-{suite}"))
        return made[-1]

    yield make
    for chroot in made:
        chroot.remove()


@pytest.fixture
def server(
    _trees: _Trees, repo: Repo, repo_server: str, request: pytest.FixtureRequest
) -> Iterator[ChrootFactory]:
    made: list[Chroot] = []

    def make(suite: str) -> Chroot:
        tree = _trees.server_tree(suite, repo, repo_server)
        made.append(_trees.copy(tree, f"{_test_name(request)}-{suite}"))
        return made[-1]

    yield make
    for chroot in made:
        chroot.remove()


@pytest.fixture
def pristine_root(pristine: ChrootFactory, suite: str) -> Chroot:
    return pristine(suite)


@pytest.fixture
def server_root(server: ChrootFactory, suite: str) -> Chroot:
    return server(suite)
