"""The session's appliance images (`vatools image build`), shared by the image and container tests.

`images(suite)` builds dokuwiki-appliance once per suite and session in every format of
FORMATS, from one tree; tests that need an image reuse it instead of building their own.
`images(suite, MOINMOIN)` does the same for moinmoin-appliance (tested on MOINMOIN_SUITE).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.support.repo import TOP, Repo
from tests.support.timing import TIMINGS

APPLIANCE = "dokuwiki-appliance"
TITLE = "Image Test Wiki"
EPOCH = "1700000000"
PASSWORD = "image-test-password"
# Every password given (generated ones differ per build): dokuwiki's and appliance-control's.
GIVEN_PASSWORDS = (
    "--set", f"dokuwiki/wiki/password={PASSWORD}", "--set", f"dokuwiki/wiki/confirm={PASSWORD}",
    "--set", f"appliance-control/admin-password={PASSWORD}",
)
FORMATS = {"bookworm": "tar,qcow2,oci", "trixie": "tar,qcow2,oci"}
MOINMOIN_SUITE = "bookworm"


@dataclass(frozen=True)
class Appliance:
    """What a test needs to know of an appliance to build its image and recognise it running."""

    name: str
    title: str  # seeded with --set, then looked for on the front page
    title_args: tuple[str, ...]
    config_volume: str  # its Vatools-Backup-Config directory: a volume of the OCI image


DOKUWIKI = Appliance(APPLIANCE, TITLE, ("--set", f"dokuwiki/wiki/title={TITLE}"), "/etc/dokuwiki")
MOINMOIN = Appliance(
    "moinmoin-appliance", "Image Test MoinMoin",
    ("--set", "moinmoin-appliance/sitename=Image Test MoinMoin"), "/etc/moinmoin-appliance",
)


@dataclass(frozen=True)
class Built:
    suite: str
    output: Path
    result: dict
    appliance: Appliance = DOKUWIKI

    def path(self, name: str) -> Path:
        return self.output / name

    @property
    def manifest(self) -> dict:
        return json.loads(self.path("manifest.json").read_text())


def image_build(*args: str, cwd: Path = TOP) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH, "PYTHONPATH": str(TOP)}
    return subprocess.run(
        ["/usr/bin/python3", "-m", "vatools.cli.main", "image", "build", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=1800,
    )


def repo_args(repo: Repo, repo_server: str, cache: Path) -> list[str]:
    keyring = repo.directory / "vatools-archive-keyring.gpg"
    return ["--repository", repo_server, "--keyring", str(keyring), "--cache", str(cache)]


@pytest.fixture(scope="session")
def image_cache(harness_dir: Path) -> Path:
    """Downloaded debs shared by the session's builds (and across runs with VATOOLS_TEST_CACHE)."""
    shared = os.environ.get("VATOOLS_TEST_CACHE")
    return Path(shared) / "image-debs" if shared else harness_dir / "image-debs"


@pytest.fixture(scope="session")
def images(
    harness_dir: Path, repo: Repo, repo_server: str, image_cache: Path
) -> Iterator[Callable[[str], Built]]:
    built: dict[tuple[str, str], Built] = {}

    def get(suite: str, appliance: Appliance = DOKUWIKI) -> Built:
        key = (appliance.name, suite)
        if key not in built:
            name = suite if appliance == DOKUWIKI else f"{appliance.name}-{suite}"
            output = harness_dir / "images" / name
            output.parent.mkdir(parents=True, exist_ok=True)
            passwords = (
                [*GIVEN_PASSWORDS] if suite == "bookworm" and appliance == DOKUWIKI else []
            )
            label = f"vatools image build {appliance.name} {suite} --format {FORMATS[suite]}"
            with TIMINGS.measure(label):
                done = image_build(
                    appliance.name, "--suite", suite, "--format", FORMATS[suite],
                    "--output", str(output), "--size", "3G", *appliance.title_args, *passwords,
                    "--json", *repo_args(repo, repo_server, image_cache),
                )
            assert done.returncode == 0, done.stderr[-4000:]
            built[key] = Built(suite, output, json.loads(done.stdout), appliance)
        return built[key]

    yield get
