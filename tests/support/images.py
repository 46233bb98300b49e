"""The session's appliance images (`vatools image build`), shared by the image and container tests.

`images(suite)` builds dokuwiki-appliance once per suite and session in every format of
FORMATS, from one tree; tests that need an image reuse it instead of building their own.
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


@dataclass(frozen=True)
class Built:
    suite: str
    output: Path
    result: dict

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
    built: dict[str, Built] = {}

    def get(suite: str) -> Built:
        if suite not in built:
            output = harness_dir / "images" / suite
            output.parent.mkdir(parents=True, exist_ok=True)
            passwords = (
                [*GIVEN_PASSWORDS] if suite == "bookworm" else []
            )
            with TIMINGS.measure(f"vatools image build {suite} --format {FORMATS[suite]}"):
                done = image_build(
                    APPLIANCE, "--suite", suite, "--format", FORMATS[suite], "--output", str(output),
                    "--size", "3G", "--set", f"dokuwiki/wiki/title={TITLE}", *passwords, "--json",
                    *repo_args(repo, repo_server, image_cache),
                )
            assert done.returncode == 0, done.stderr[-4000:]
            built[suite] = Built(suite, output, json.loads(done.stdout))
        return built[suite]

    yield get
