"""Our signed apt repository, built by vatools.packaging.repo, and the apt source that points a chroot at it.

Layout (from vatools.packaging.repo): DIR/SUITE/ is a flat repository per suite (InRelease, Packages,
Packages.gz, the .debs and the seeds beside them) and DIR/vatools-archive-keyring.gpg is the
public key, so a chroot's source is `URIs: http://127.0.0.1:PORT/SUITE/` with `Suites: ./`.

The test packages (tests/data/packages/*) are published apart, in a second signed repository
(same key) served under BASE/tests/SUITE/: what users install from never lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from debian.deb822 import Packages

from tests.support.chroot import Chroot
from tests.support.timing import TIMINGS

TOP = Path(__file__).resolve().parents[2]  # the vatools source tree
SUITES = ("bookworm", "trixie")
KEYRING_INSIDE = "/etc/apt/keyrings/vatools.gpg"
SOURCES_INSIDE = "/etc/apt/sources.list.d/vatools.sources"
TEST_SOURCES_INSIDE = "/etc/apt/sources.list.d/vatools-tests.sources"
TESTS_PREFIX = "tests"  # URL path under which the test repository is served


@dataclass(frozen=True)
class Repo:
    """A built repository: its directory (served over HTTP), its key dir and its suites; the
    test packages' repository beside it, if built."""

    directory: Path
    key_dir: Path
    suites: tuple[str, ...]
    test_directory: Path | None = None

    def served(self) -> dict[str, Path]:
        """URL prefix -> directory, for tests.support.net.serve_directory."""
        mounts = {"": self.directory}
        if self.test_directory is not None:
            mounts[TESTS_PREFIX] = self.test_directory
        return mounts

    def keyring(self) -> bytes:
        """The public key, a binary OpenPGP keyring (what a Signed-By *.gpg file must hold)."""
        from vatools.packaging.repo import KEYRING_NAME

        return (self.directory / KEYRING_NAME).read_bytes()

    def packages(self, suite: str) -> dict[str, str]:
        """Package name -> version, from the suite's Packages index (users' repository)."""
        return _index(self.directory / suite / "Packages")

    def test_packages(self, suite: str) -> dict[str, str]:
        """Package name -> version in the test packages' repository."""
        assert self.test_directory is not None, "built without test packages"
        return _index(self.test_directory / suite / "Packages")


def _index(path: Path) -> dict[str, str]:
    with open(path) as index:
        return {p["Package"]: p["Version"] for p in Packages.iter_paragraphs(index)}


def probe_sources(top: Path = TOP) -> list[Path]:
    """tests/data/packages/*: small probe packages, published in the test repository."""
    return sorted((top / "tests" / "data" / "packages").glob("*"))


def build_repo(workdir: Path, top: Path = TOP, suites: tuple[str, ...] = SUITES,
               with_tests: bool = True) -> Repo:
    """Build every deb and publish the signed repository into workdir/repo, and the test
    packages (unless with_tests is false) into workdir/test-repo.

    The signing key lives in workdir/key, beside the repository and not inside it: the
    repository directory is served over HTTP, the private key must not be.
    """
    from vatools.packaging.repo import build_repository  # imported late: the harness loads without it

    directory, key_dir = workdir / "repo", workdir / "key"
    test_directory = workdir / "test-repo" if with_tests else None
    with TIMINGS.measure("repository build (" + ", ".join(suites) + ")"):
        build_repository(
            directory,
            top=top,
            suites=list(suites),
            key_dir=key_dir,
            test_sources=probe_sources(top) if with_tests else (),
            test_repo_dir=test_directory,
        )
    return Repo(directory=directory, key_dir=key_dir, suites=suites, test_directory=test_directory)


def sources_entry(url: str) -> str:
    """deb822 source for a flat suite directory served at `url` (ending in SUITE/)."""
    return f"Types: deb\nURIs: {url}\nSuites: ./\nSigned-By: {KEYRING_INSIDE}\n"


def add_repo_source(chroot: Chroot, repo: Repo, base_url: str, suite: str) -> None:
    """Point the chroot's apt at our repository (and the test packages' one, if built),
    trusted only through its own key."""
    keyring = chroot.resolve(KEYRING_INSIDE)
    keyring.parent.mkdir(parents=True, exist_ok=True)
    keyring.write_bytes(repo.keyring())
    keyring.chmod(0o644)
    chroot.write_text(SOURCES_INSIDE, sources_entry(f"{base_url}/{suite}/"))
    if repo.test_directory is not None:
        chroot.write_text(TEST_SOURCES_INSIDE,
                          sources_entry(f"{base_url}/{TESTS_PREFIX}/{suite}/"))


def make_server_tree(pristine: Chroot, repo: Repo, base_url: str, suite: str) -> Chroot:
    """Turn a fresh copy of a pristine tree into "a server with vatools installed from our repo"."""
    with TIMINGS.measure(f"server tree {suite} (apt-get update + install vatools)"):
        pristine.install_policy_rc_d()
        add_repo_source(pristine, repo, base_url, suite)
        pristine.run(["apt-get", "update"])
        pristine.run(["apt-get", "install", "-y", "vatools"])
    return pristine
