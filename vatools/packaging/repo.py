"""Signed flat apt repositories, one per Debian suite, with appliance seeds beside their debs.

Layout of `REPO/SUITE/` (a "flat" repository: `Suites: ./` in apt's sources):

    NAME_VERSION_all.deb     the packages
    NAME_VERSION_all.seed    an appliance's seed, taken from inside its deb; its sha256 is the
                             deb's Vatools-Seed-Sha256 field, which the signed index covers
    Packages, Packages.gz    apt-ftparchive's index (apt needs both for file: repositories)
    Release, InRelease, Release.gpg
    vatools.sources          an example deb822 sources entry for this suite

and `REPO/vatools-archive-keyring.gpg`, the public key for `Signed-By:`.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from vatools.appliance import SEED_SHA256_FIELD, Appliance, read_seed_in_deb, seed_beside
from vatools.packaging.build import (WORK_ROOT, build_package, check_suite, needs_chroot, remove_tree,
                           source_name)
from vatools.errors import VatoolsError
from vatools.run import require_tool, run

KEYRING_NAME = "vatools-archive-keyring.gpg"
KEY_USER_ID = "vatools archive signing key <vatools@localhost>"
# Where the example sources entry expects the key on the machine that uses the repository.
CLIENT_KEYRING = f"/etc/apt/keyrings/{KEYRING_NAME}"


@dataclass(frozen=True)
class SigningKey:
    fingerprint: str
    gnupghome: Path
    public_keyring: Path  # binary (not armored) keyring, what apt's Signed-By expects


def _gpg(gnupghome: Path, *args: str) -> str:
    """gpg on our own keyring directory, never asking anything (the key has no passphrase)."""
    return run(["gpg", "--homedir", str(gnupghome), "--batch", "--yes",
                "--pinentry-mode", "loopback", "--passphrase", "", *args]).stdout


def _stop_agent(gnupghome: Path) -> None:
    """gpg starts an agent per keyring directory; do not leave it running behind us."""
    run(["gpgconf", "--homedir", str(gnupghome), "--kill", "gpg-agent"], check=False)


def _secret_fingerprint(gnupghome: Path) -> str | None:
    listing = _gpg(gnupghome, "--with-colons", "--list-secret-keys")
    return secret_fingerprint_from_colons(listing)


def secret_fingerprint_from_colons(listing: str) -> str | None:
    """The primary key's fingerprint in `gpg --with-colons --list-secret-keys` output.

    >>> secret_fingerprint_from_colons("sec:u:255:22:AB:1::::::scESC:\\nfpr:::::::::F00D:\\n")
    'F00D'
    >>> secret_fingerprint_from_colons("") is None
    True
    """
    in_primary = False
    for line in listing.splitlines():
        fields = line.split(":")
        if fields[0] == "sec":
            in_primary = True
        elif fields[0] == "fpr" and in_primary and len(fields) > 9:
            return fields[9]
        elif fields[0] == "ssb":
            in_primary = False
    return None


def ensure_signing_key(key_dir: Path) -> SigningKey:
    """The repository key kept in key_dir: an ed25519 key made on first use, reused after."""
    require_tool("gpg")
    gnupghome = key_dir / "gnupg"
    gnupghome.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_dir.chmod(0o700)
    gnupghome.chmod(0o700)  # gpg warns about, and some versions refuse, an open home
    try:
        fingerprint = _secret_fingerprint(gnupghome)
        if fingerprint is None:
            _gpg(gnupghome, "--quick-gen-key", KEY_USER_ID, "ed25519", "sign", "never")
            fingerprint = _secret_fingerprint(gnupghome)
        if fingerprint is None:
            raise VatoolsError(f"gpg made no usable key in {gnupghome}",
                               hint=f"remove {key_dir} to start over with a new key")
        public_keyring = key_dir / KEYRING_NAME
        _gpg(gnupghome, "--output", str(public_keyring), "--export", fingerprint)
    finally:
        _stop_agent(gnupghome)
    return SigningKey(fingerprint, gnupghome, public_keyring)


def seed_file_name(deb_name: str) -> str:
    """The name a seed is published under beside its deb.

    >>> seed_file_name("dokuwiki-appliance_1.0_all.deb")
    'dokuwiki-appliance_1.0_all.seed'
    """
    return seed_beside(deb_name)


def sources_entry(suite_dir: Path) -> str:
    """An example deb822 sources file pointing apt at a published suite directory."""
    return (
        "# Copy the key to " + CLIENT_KEYRING + " and this file to\n"
        "# /etc/apt/sources.list.d/vatools.sources; for a served copy, change URIs to its URL.\n"
        "Types: deb\n"
        f"URIs: file:{suite_dir}\n"
        "Suites: ./\n"
        f"Signed-By: {CLIENT_KEYRING}\n"
    )


def read_seed(deb: Path) -> tuple[str, bytes] | None:
    """(expected sha256, seed bytes) of an appliance deb, or None for a deb without a seed
    field; the seed is read by the rule vainstall uses (vatools.appliance.read_seed_in_deb)."""
    from debian.arfile import ArError  # slow imports, only needed when publishing
    from debian.debfile import DebError, DebFile

    try:
        with DebFile(str(deb)) as package:
            control = package.debcontrol()
    except (ArError, DebError, EOFError, OSError) as error:
        raise VatoolsError(f"{deb} is not a readable .deb: {error}",
                           hint="rebuild it with dpkg-buildpackage") from None
    declared = Appliance.from_fields(control)
    if declared.seed_sha256 is None:
        return None
    return declared.seed_sha256, read_seed_in_deb(deb, declared.name)


def _publish_seed(deb: Path) -> None:
    found = read_seed(deb)
    if found is None:
        return
    expected, seed = found
    actual = hashlib.sha256(seed).hexdigest()
    if actual != expected:
        raise VatoolsError(
            f"{deb.name}: the seed inside has sha256 {actual}, "
            f"but {SEED_SHA256_FIELD} says {expected}",
            hint="rebuild the package: its seed changed after the field was computed")
    (deb.parent / seed_file_name(deb.name)).write_bytes(seed)


def _ftparchive(args: list[str], cwd: Path) -> str:
    """apt-ftparchive's stdout; a warning in it (stderr is merged) is a failure, not an index line."""
    output = run(["apt-ftparchive", *args], cwd=cwd).stdout
    problems = [line for line in output.splitlines() if line.startswith(("W: ", "E: "))]
    if problems:
        raise VatoolsError(f"apt-ftparchive {args[0]} in {cwd} complained: {problems[0]}",
                           hint="fix the packages it names and publish again")
    return output


def _copy_debs(debs: Sequence[Path], dest: Path) -> list[Path]:
    copied: dict[str, Path] = {}
    for deb in debs:
        if deb.name in copied:
            raise VatoolsError(f"two packages named {deb.name}: {copied[deb.name]} and {deb}",
                               hint="give each package its own version or name")
        if not deb.is_file():
            raise VatoolsError(f"{deb} does not exist", hint="build it first")
        seed_file_name(deb.name)  # refuses a name that is not a .deb
        copied[deb.name] = deb
        shutil.copyfile(deb, dest / deb.name)
    return [dest / name for name in sorted(copied)]


def _sign(release: Path, key: SigningKey) -> None:
    signer = ["--local-user", key.fingerprint, "--digest-algo", "SHA512"]
    try:
        _gpg(key.gnupghome, *signer, "--clearsign", "--output",
             str(release.with_name("InRelease")), str(release))
        _gpg(key.gnupghome, *signer, "--armor", "--detach-sign", "--output",
             str(release.with_name("Release.gpg")), str(release))
    finally:
        _stop_agent(key.gnupghome)


def publish(repo_dir: Path, suite: str, debs: Sequence[Path], key: SigningKey) -> Path:
    """Write the signed flat repository repo_dir/suite with these debs; replace an older one."""
    check_suite(suite)
    require_tool("apt-ftparchive")
    repo_dir = repo_dir.resolve()
    repo_dir.mkdir(parents=True, exist_ok=True)
    final = repo_dir / suite
    staging = Path(tempfile.mkdtemp(prefix=f".{suite}.new-", dir=repo_dir))
    release_outside = repo_dir / f".{suite}.Release.tmp"
    try:
        staging.chmod(0o755)
        for deb in _copy_debs(debs, staging):
            _publish_seed(deb)
        packages = _ftparchive(["packages", "."], cwd=staging)
        (staging / "Packages").write_text(packages)
        # mtime 0: the same packages give the same Packages.gz
        with gzip.GzipFile(staging / "Packages.gz", "wb", mtime=0) as gz:
            gz.write(packages.encode())
        # Written outside: apt-ftparchive would otherwise list a half-written Release itself.
        release_outside.write_text(_ftparchive(
            ["-o", "APT::FTPArchive::Release::Origin=vatools",
             "-o", "APT::FTPArchive::Release::Label=vatools",
             "-o", f"APT::FTPArchive::Release::Suite={suite}",
             "-o", f"APT::FTPArchive::Release::Codename={suite}",
             "-o", f"APT::FTPArchive::Release::Description=vatools appliances for {suite}",
             "release", "."], cwd=staging))
        release_outside.rename(staging / "Release")
        _sign(staging / "Release", key)
        (staging / "vatools.sources").write_text(sources_entry(final))
        shutil.copyfile(key.public_keyring, repo_dir / KEYRING_NAME)
        _replace_dir(staging, final)
    finally:
        release_outside.unlink(missing_ok=True)
        remove_tree(staging)
    return final


def _replace_dir(new: Path, final: Path) -> None:
    """Put new in final's place; the old suite dir is removed only once the new one is there."""
    old = final.with_name(f".{final.name}.old")
    remove_tree(old)
    if final.exists():
        final.rename(old)
    new.rename(final)
    remove_tree(old)


def find_sources(top: Path, extra_sources: Sequence[Path] = ()) -> list[Path]:
    """The toolkit, appliances/*/, packages/*/ and the extra dirs, each once, all checked."""
    top = top.resolve()
    found = [top]
    for group in ("appliances", "packages"):
        if (top / group).is_dir():
            found += sorted(p for p in (top / group).iterdir() if p.is_dir())
    found += [p.resolve() for p in extra_sources]
    unique = list(dict.fromkeys(found))
    for source in unique:
        source_name(source)  # raises, naming the dir, when debian/control is missing
    return unique


def build_repository(repo_dir: Path, *, top: Path, suites: Sequence[str], key_dir: Path,
                     extra_sources: Sequence[Path] = (),
                     test_sources: Sequence[Path] = (), test_repo_dir: Path | None = None,
                     progress: Callable[[str], None] = print) -> None:
    """Build every package of the tree once (per-release ones once per suite), publish per suite.

    Packages of `test_sources` are built in the same run but published apart, in their own
    signed repository `test_repo_dir` (same key): the repository users install from holds
    only what users should see.
    """
    suites = list(dict.fromkeys(check_suite(s) for s in suites))
    if not suites:
        raise VatoolsError("no suite to publish", hint="pass --suite bookworm (or trixie)")
    if test_sources and test_repo_dir is None:
        raise VatoolsError("test packages need their own repository directory",
                           hint="pass test_repo_dir")
    tests = [p.resolve() for p in test_sources]
    sources = find_sources(top, [*extra_sources, *tests])
    tools = ["dpkg-buildpackage", "apt-ftparchive", "gpg"]
    if any(needs_chroot(s) for s in sources):
        tools.append("mmdebstrap")
    for tool in tools:  # fail now, not after minutes of building
        require_tool(tool)
    key = ensure_signing_key(key_dir)

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="vatools-repo-", dir=WORK_ROOT))
    # (repository, suite or None for packages built once) -> debs
    built: dict[tuple[Path, str | None], list[Path]] = defaultdict(list)

    def destination(source: Path) -> Path:
        return test_repo_dir if source in tests and test_repo_dir else repo_dir

    # On failure `work` stays: the error names the build log inside it.
    # Per-release builds (each in its own chroot, mostly one long compiler process) run side
    # by side, one per suite, while the quick ones build on this system meanwhile.
    with ThreadPoolExecutor(max_workers=len(suites), thread_name_prefix="build") as pool:
        in_chroots = [(destination(source), suite,
                       pool.submit(build_package, source, work / suite, suite=suite,
                                   progress=progress))
                      for source in sources if needs_chroot(source) for suite in suites]
        try:
            for source in sources:
                if not needs_chroot(source):
                    built[destination(source), None] += build_package(
                        source, work / "all", progress=progress)
            for where, suite, build in in_chroots:
                built[where, suite] += build.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # no build left running behind us
            raise
    for where in dict.fromkeys(where for where, _ in built):
        for suite in suites:
            debs = built[where, None] + built[where, suite]
            published = publish(where, suite, debs, key)
            progress(f"published {published} ({len(debs)} packages)")
    shutil.rmtree(work)
    progress(f"repository {repo_dir.resolve()} ready in {time.monotonic() - started:.1f} s")
