"""The repository for real: dpkg-buildpackage builds, gpg signs, apt in bookworm and trixie trusts it.

One miniature vatools tree (tests/integration/test_repo_probe.py) is built once for the module
into a signed repository for both suites; each suite then gets a fresh copy of its pristine
minbase tree, where apt must refuse a tampered index, an unsigned repository and one signed with
another key, and must install from the good one, whose seeds match the signed index.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from debian.deb822 import Packages

from tests.integration.test_repo_probe import (APPLIANCE, PER_RELEASE, SEED, TOOLKIT, _source,
                                               make_tree)
from tests.support.chroot import Chroot
from vatools.packaging.build import build_package
from vatools.cli.main import main as vatools_main
from vatools.errors import CommandFailed, VatoolsError
from vatools.packaging.repo import (KEYRING_NAME, SigningKey, build_repository, ensure_signing_key,
                          publish)

pytestmark = pytest.mark.integration

SUITES = ("bookworm", "trixie")
RELEASE_MAJOR = {"bookworm": "12", "trixie": "13"}
REPO_INSIDE = "/srv/vatools"
KEYRING_INSIDE = f"/etc/apt/keyrings/{KEYRING_NAME}"


@dataclass(frozen=True)
class Built:
    repo: Path
    key: SigningKey
    other_key: SigningKey  # a second key, not the one apt is told to trust
    progress: tuple[str, ...]
    work: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    work = tmp_path_factory.mktemp("repo")
    make_tree(work / "top")
    lines: list[str] = []
    build_repository(work / "repo", top=work / "top", suites=list(SUITES), key_dir=work / "key",
                     progress=lines.append)
    return Built(repo=work / "repo", key=ensure_signing_key(work / "key"),
                 other_key=ensure_signing_key(work / "other-key"), progress=tuple(lines),
                 work=work)


def index(suite_dir: Path) -> dict[str, Packages]:
    with open(suite_dir / "Packages") as f:
        return {p["Package"]: p for p in Packages.iter_paragraphs(f)}


def test_every_package_is_built_once_and_per_release_ones_once_per_suite(built: Built) -> None:
    builds = [line for line in built.progress if line.startswith("built ")]
    assert len(builds) == 4, built.progress
    assert sum(line.startswith(f"built {TOOLKIT} in ") for line in builds) == 1
    assert sum(line.startswith(f"built {APPLIANCE} in ") for line in builds) == 1
    for suite in SUITES:
        assert sum(line.startswith(f"built {PER_RELEASE} for {suite} in ") for line in builds) == 1
    assert all(re.search(r" in \d+\.\d s: ", line) for line in builds)


def test_layout_of_each_suite(built: Built) -> None:
    assert (built.repo / KEYRING_NAME).read_bytes() == built.key.public_keyring.read_bytes()
    for suite in SUITES:
        suite_dir = built.repo / suite
        packages = index(suite_dir)
        assert sorted(packages) == [APPLIANCE, PER_RELEASE, TOOLKIT]
        for name in ("Packages.gz", "InRelease", "Release.gpg", "vatools.sources"):
            assert (suite_dir / name).is_file(), name
        # The seed beside the appliance's deb is the seed of the tree, and the signed index
        # carries its hash; a package without the field gets no seed.
        seed = suite_dir / f"{APPLIANCE}_1.0_all.seed"
        assert seed.read_text() == SEED
        assert packages[APPLIANCE]["Vatools-Seed-Sha256"] == hashlib.sha256(seed.read_bytes()).hexdigest()
        assert sorted(p.name for p in suite_dir.glob("*.seed")) == [seed.name]
        release = (suite_dir / "Release").read_text()
        for field in (f"Origin: vatools", "Label: vatools", f"Suite: {suite}", f"Codename: {suite}"):
            assert field in release.splitlines()
        assert " Packages.gz" in release and not re.search(r" Release$", release, re.M)
        sources = (suite_dir / "vatools.sources").read_text()
        assert f"URIs: file:{suite_dir}\n" in sources and "Suites: ./\n" in sources
        assert not list(built.repo.glob(".*")), "staging leftovers"


def gpg_verify(built: Built, suite: str) -> str:
    """gpgv with only our public keyring, as apt on bookworm does it."""
    done = subprocess.run(["gpgv", "--keyring", str(built.key.public_keyring),
                           str(built.repo / suite / "InRelease")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_inrelease_is_signed_by_the_key(built: Built) -> None:
    for suite in SUITES:
        assert built.key.fingerprint[-16:] in gpg_verify(built, suite).replace(" ", "")


def test_the_key_is_reused(built: Built) -> None:
    again = ensure_signing_key(built.work / "key")
    assert again == built.key
    assert built.other_key.fingerprint != built.key.fingerprint


def point_apt_at(chroot: Chroot, suite_dir: Path, keyring: Path) -> subprocess.CompletedProcess[str]:
    """Copy a suite dir into the chroot, trust `keyring` for it, and run apt-get update afresh."""
    inside = chroot.path(REPO_INSIDE)
    if inside.exists():
        shutil.rmtree(inside)
    shutil.copytree(suite_dir, inside)
    chroot.write_text(KEYRING_INSIDE, "")
    chroot.path(KEYRING_INSIDE).write_bytes(keyring.read_bytes())
    chroot.write_text("/etc/apt/sources.list.d/vatools.sources",
                      f"Types: deb\nURIs: file:{REPO_INSIDE}\nSuites: ./\nSigned-By: {KEYRING_INSIDE}\n")
    for old in chroot.path("/var/lib/apt/lists").glob("*"):
        if old.is_file():
            old.unlink()
    return chroot.run(["apt-get", "update"], check=False)


def refused(update: subprocess.CompletedProcess[str]) -> str:
    """apt-get update failed on our repository; its messages, for the test to check."""
    output = update.stdout + update.stderr
    assert update.returncode != 0, output
    return output


def test_apt_trusts_only_the_signed_untampered_repository(
        built: Built, pristine_root: Chroot, suite: str, tmp_path: Path) -> None:
    good = built.repo / suite

    # An index changed after signing (a seed hash swapped): Release's hashes no longer match.
    tampered = tmp_path / "tampered"
    shutil.copytree(good, tampered)
    text = (tampered / "Packages").read_text()
    field = index(good)[APPLIANCE]["Vatools-Seed-Sha256"]
    (tampered / "Packages").write_text(text.replace(field, "0" * 64))
    (tampered / "Packages.gz").unlink()
    subprocess.run(["gzip", "-9nk", str(tampered / "Packages")], check=True)
    output = refused(point_apt_at(pristine_root, tampered, built.key.public_keyring))
    assert re.search(r"Hash Sum mismatch|unexpected size", output), output

    # Unsigned: no InRelease, no Release.gpg.
    unsigned = tmp_path / "unsigned"
    shutil.copytree(good, unsigned)
    (unsigned / "InRelease").unlink()
    (unsigned / "Release.gpg").unlink()
    assert "is not signed" in refused(point_apt_at(pristine_root, unsigned, built.key.public_keyring))

    # Signed, but apt trusts another key for it.
    output = refused(point_apt_at(pristine_root, good, built.other_key.public_keyring))
    assert re.search(r"NO_PUBKEY|not signed|Missing key|signature", output), output
    assert "probe" not in pristine_root.run(["apt-cache", "pkgnames", "probe"]).stdout

    # The good one: installs, and the per-release package was built on this release.
    update = point_apt_at(pristine_root, good, built.key.public_keyring)
    assert update.returncode == 0, update.stdout + update.stderr
    assert not re.search(r"^(W|E): ", update.stdout + update.stderr, re.M), update.stderr
    pristine_root.run(["apt-get", "install", "-y", APPLIANCE, PER_RELEASE, TOOLKIT])
    built_on = pristine_root.read_text(f"/usr/share/{PER_RELEASE}/built-on")
    assert built_on.startswith(RELEASE_MAJOR[suite] + "."), built_on
    assert pristine_root.read_text(f"/usr/share/vatools/seeds/{APPLIANCE}.seed") == SEED

    # The seed published beside the deb matches the hash apt got from the signed index;
    # a tampered copy does not.
    shown = pristine_root.run(["apt-cache", "show", APPLIANCE]).stdout
    signed_hash = re.search(r"^Vatools-Seed-Sha256: (\S+)$", shown, re.M)
    assert signed_hash, shown
    published = f"{REPO_INSIDE}/{APPLIANCE}_1.0_all.seed"
    assert sha256_inside(pristine_root, published) == signed_hash.group(1)
    pristine_root.write_text(published, SEED + "tzdata tzdata/Zones/Europe select Paris\n")
    assert sha256_inside(pristine_root, published) != signed_hash.group(1)


def sha256_inside(chroot: Chroot, path: str) -> str:
    return chroot.run(["sha256sum", path]).stdout.split()[0]


def repack_with_seed(deb: Path, seed: str, dest: Path) -> Path:
    """The same deb with a different seed inside, its Vatools-Seed-Sha256 left as it was."""
    tree = dest.parent / "unpacked"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    (tree / f"usr/share/vatools/seeds/{APPLIANCE}.seed").write_text(seed)
    (tree / "DEBIAN/md5sums").unlink()
    subprocess.run(["dpkg-deb", "-b", str(tree), str(dest)], check=True, capture_output=True)
    return dest


def test_publish_refuses_a_deb_whose_seed_does_not_match_its_field(
        built: Built, tmp_path: Path) -> None:
    deb = built.repo / "bookworm" / f"{APPLIANCE}_1.0_all.deb"
    (tmp_path / "debs").mkdir()
    bad = repack_with_seed(deb, SEED + "# changed\n", tmp_path / "debs" / deb.name)
    with pytest.raises(VatoolsError, match=rf"{deb.name}: the seed inside has sha256 \w+, but"):
        publish(tmp_path / "repo", "bookworm", [bad], built.key)
    assert not (tmp_path / "repo" / "bookworm").exists()
    assert not list((tmp_path / "repo").glob(".*")), "staging leftovers"


def test_republishing_replaces_the_suite(built: Built, tmp_path: Path) -> None:
    debs = sorted((built.repo / "trixie").glob("*.deb"))
    first = publish(tmp_path / "repo", "trixie", debs, built.key)
    assert sorted(index(first)) == [APPLIANCE, PER_RELEASE, TOOLKIT]
    (first / "stale.txt").write_text("from before")
    again = publish(tmp_path / "repo", "trixie", debs[:1], built.key)
    assert again == first
    assert not (again / "stale.txt").exists()
    assert sorted(index(again)) == [APPLIANCE]
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == sorted([KEYRING_NAME, "trixie"])


def test_a_failed_build_names_its_log(tmp_path: Path) -> None:
    src = tmp_path / "broken"
    _source(src, "probe-broken", rules_extra="override_dh_auto_build:\n\techo probe-broken-marker; false\n")
    with pytest.raises(CommandFailed) as failure:
        build_package(src, tmp_path / "out")
    log = tmp_path / "out" / "logs" / "probe-broken.log"
    assert f"full build log: {log}" in failure.value.message
    assert "probe-broken-marker" in log.read_text()
    assert not list((tmp_path / "out").glob("*.deb"))


def test_standalone_cli_builds_debs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VATOOLS_BUILD_CACHE", raising=False)  # it must really build here
    make_tree(tmp_path / "top")
    assert vatools_main(["repo", "debs", str(tmp_path / "out"), str(tmp_path / "top")]) == 0
    assert [p.name for p in (tmp_path / "out").glob("*.deb")] == [f"{TOOLKIT}_1.0_all.deb"]
    assert f"built {TOOLKIT} in " in capsys.readouterr().out
    assert vatools_main(["repo", "debs", str(tmp_path / "out"), str(tmp_path / "nowhere")]) == 3
    assert "is not a Debian source dir" in capsys.readouterr().err
