"""Our signed apt repository, built by vatools.repo, and the apt source that points a chroot at it.

Layout (from vatools.repo): DIR/SUITE/ is a flat repository per suite (InRelease, Packages,
Packages.gz, the .debs and the seeds beside them), so a chroot's source is
`URIs: http://127.0.0.1:PORT/SUITE/` with `Suites: ./`.
"""

from __future__ import annotations

import subprocess
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
    """A built repository: its directory (served over HTTP) and the public key apt checks it with."""

    directory: Path
    key_dir: Path
    suites: tuple[str, ...]

    def keyring(self) -> bytes:
        """The public key as a binary OpenPGP keyring (what a Signed-By *.gpg file must hold)."""
        return public_keyring(self.key_dir)

    def packages(self, suite: str) -> dict[str, str]:
        """Package name -> version, from the suite's Packages index."""
        with open(self.directory / suite / "Packages") as index:
            return {p["Package"]: p["Version"] for p in Packages.iter_paragraphs(index)}


def probe_sources(top: Path = TOP) -> list[Path]:
    """tests/data/packages/*: small probe packages built into the repository beside ours."""
    return sorted((top / "tests" / "data" / "packages").glob("*"))


def build_repo(dest: Path, top: Path = TOP, suites: tuple[str, ...] = SUITES) -> Repo:
    """Build every deb and publish the signed repository into `dest` (with the key in dest/key)."""
    from vatools.repo import build_repository  # imported late: the harness loads without it

    key_dir = dest / "key"
    with TIMINGS.measure("repository build (" + ", ".join(suites) + ")"):
        build_repository(dest, top=top, suites=list(suites), key_dir=key_dir,
                         extra_sources=probe_sources(top))
    return Repo(directory=dest, key_dir=key_dir, suites=suites)


def public_keyring(key_dir: Path) -> bytes:
    """The repository's public key, dearmored when it was exported armored."""
    candidates = sorted(p for p in key_dir.iterdir() if p.suffix in (".gpg", ".asc", ".pub", ".key")
                        and p.is_file() and p.name not in ("pubring.kbx", "trustdb.gpg"))
    if not candidates:
        raise FileNotFoundError(f"no public key file (*.gpg, *.asc) in {key_dir}")
    data = candidates[0].read_bytes()
    if data.lstrip().startswith(b"-----BEGIN PGP"):
        data = subprocess.run(["gpg", "--dearmor"], input=data, capture_output=True, check=True).stdout
    return data


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
