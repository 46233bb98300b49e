"""Our signed apt repository, built by vatools.packaging.repo, and the apt source that points a chroot at it.

Layout (from vatools.packaging.repo): DIR/SUITE/ is a flat repository per suite (InRelease, Packages,
Packages.gz, the .debs and the seeds beside them) and DIR/vatools-archive-keyring.gpg is the
public key, so a chroot's source is `URIs: http://127.0.0.1:PORT/SUITE/` with `Suites: ./`.
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


@dataclass(frozen=True)
class Repo:
    """A built repository: its directory (served over HTTP), its key dir and its suites."""

    directory: Path
    key_dir: Path
    suites: tuple[str, ...]

    def keyring(self) -> bytes:
        """The public key, a binary OpenPGP keyring (what a Signed-By *.gpg file must hold)."""
        from vatools.packaging.repo import KEYRING_NAME

        return (self.directory / KEYRING_NAME).read_bytes()

    def packages(self, suite: str) -> dict[str, str]:
        """Package name -> version, from the suite's Packages index."""
        with open(self.directory / suite / "Packages") as index:
            return {p["Package"]: p["Version"] for p in Packages.iter_paragraphs(index)}


def probe_sources(top: Path = TOP) -> list[Path]:
    """tests/data/packages/*: small probe packages built into the repository beside ours."""
    return sorted((top / "tests" / "data" / "packages").glob("*"))


def build_repo(workdir: Path, top: Path = TOP, suites: tuple[str, ...] = SUITES) -> Repo:
    """Build every deb and publish the signed repository into workdir/repo.

    The signing key lives in workdir/key, beside the repository and not inside it: the
    repository directory is served over HTTP, the private key must not be.
    """
    from vatools.packaging.repo import build_repository  # imported late: the harness loads without it

    directory, key_dir = workdir / "repo", workdir / "key"
    with TIMINGS.measure("repository build (" + ", ".join(suites) + ")"):
        build_repository(
            directory,
            top=top,
            suites=list(suites),
            key_dir=key_dir,
            extra_sources=probe_sources(top),
        )
    return Repo(directory=directory, key_dir=key_dir, suites=suites)


def sources_entry(url: str) -> str:
    """deb822 source for a flat suite directory served at `url` (ending in SUITE/)."""
    return f"Types: deb\nURIs: {url}\nSuites: ./\nSigned-By: {KEYRING_INSIDE}\n"


def add_repo_source(chroot: Chroot, repo: Repo, base_url: str, suite: str) -> None:
    """Point the chroot's apt at our repository, trusted only through its own key."""
    keyring = chroot.resolve(KEYRING_INSIDE)
    keyring.parent.mkdir(parents=True, exist_ok=True)
    keyring.write_bytes(repo.keyring())
    keyring.chmod(0o644)
    chroot.write_text(SOURCES_INSIDE, sources_entry(f"{base_url}/{suite}/"))


def make_server_tree(pristine: Chroot, repo: Repo, base_url: str, suite: str) -> Chroot:
    """Turn a fresh copy of a pristine tree into "a server with vatools installed from our repo"."""
    with TIMINGS.measure(f"server tree {suite} (apt-get update + install vatools)"):
        pristine.install_policy_rc_d()
        add_repo_source(pristine, repo, base_url, suite)
        pristine.run(["apt-get", "update"])
        pristine.run(["apt-get", "install", "-y", "vatools"])
    return pristine
