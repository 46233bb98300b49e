"""Everything `vatools image build` is asked to do, checked before any long work starts.

Bad input (an unknown appliance or suite, a size too small, an output directory that exists)
fails here, in a second, before mmdebstrap runs: nothing is created.

>>> parse_size("4G")
4294967296
>>> parse_size("1536M")
1610612736
>>> parse_size("lots")
Traceback (most recent call last):
...
vatools.errors.UsageError: --size 'lots': not a size
"""

from __future__ import annotations

import gzip
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from debian.deb822 import Deb822, Packages

from vatools.appliance import is_appliance
from vatools.errors import UsageError, VatoolsError
from vatools.packaging.repo import CLIENT_KEYRING, KEYRING_NAME
from vatools.run import require_tool

SUITES = ("bookworm", "trixie")
FORMATS = ("tar", "qcow2", "oci")
DEFAULT_SIZE = 4 << 30
# Below this no appliance fits (the minimal bootable tree alone is ~600 MiB, plus the ESP).
MIN_SIZE = 1 << 30
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SIZE = re.compile(r"(\d+)([KMGT]?)(i?B)?", re.IGNORECASE)
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
HOST_SOURCES_DIR = Path("/etc/apt/sources.list.d")


def parse_size(text: str) -> int:
    """Bytes from 4G, 1536M, 2GiB, or a plain number of bytes."""
    match = SIZE.fullmatch(text.strip())
    if not match:
        raise UsageError(f"--size {text!r}: not a size", hint="for example --size 4G or --size 1536M")
    return int(match.group(1)) * UNITS[match.group(2).upper()]


@dataclass(frozen=True)
class Repository:
    """Where the appliance comes from: a flat suite directory URL and its public key."""

    url: str  # ends in SUITE/
    keyring: bytes = field(repr=False)


@dataclass(frozen=True)
class ImagePlan:
    name: str
    version: str
    suite: str
    formats: tuple[str, ...]
    size: int
    output: Path
    repository: Repository
    image_repository: str | None  # the source the image keeps for updates; None: none
    seed: Path | None
    overrides: tuple[tuple[str, str], ...]
    mirror: str = DEFAULT_MIRROR
    cache: Path | None = None  # apt's downloaded debs, kept between builds
    source_date_epoch: int = 0


def check_suite(suite: str) -> str:
    if suite not in SUITES:
        raise UsageError(
            f"--suite {suite!r}: unknown suite", hint=f"use one of: {', '.join(SUITES)}"
        )
    return suite


def check_formats(formats: list[str]) -> tuple[str, ...]:
    chosen: list[str] = []
    for item in formats:
        for name in item.split(","):
            if name not in FORMATS:
                raise UsageError(
                    f"--format {name!r}: unknown format", hint=f"use {', '.join(FORMATS)} (comma-separated)"
                )
            if name not in chosen:
                chosen.append(name)
    return tuple(chosen) or ("tar",)


# The host tools each format needs, checked before any work (vatools.run names the package).
TOOLS = {
    "tar": ("mmdebstrap", "zstd"),
    "oci": ("mmdebstrap", "zstd"),
    "qcow2": ("mmdebstrap", "sfdisk", "mkfs.fat", "mmd", "mcopy", "mke2fs", "grub-mkimage", "qemu-img"),
}
# Files the disk is made with, and their packages.
DISK_FILES = {
    "/usr/lib/systemd/boot/efi/systemd-bootx64.efi": "systemd-boot-efi",
    "/usr/lib/grub/i386-pc/boot.img": "grub-pc-bin",
}


def check_tools(formats: tuple[str, ...]) -> None:
    for fmt in formats:
        for tool in TOOLS[fmt]:
            require_tool(tool)
    if "qcow2" in formats:
        for path, package in DISK_FILES.items():
            if not Path(path).is_file():
                raise VatoolsError(f"{path} is missing", hint=f"install it: apt-get install {package}")


def check_size(size: int) -> int:
    if size < MIN_SIZE:
        raise UsageError(
            f"--size {size >> 20} MiB is too small for any appliance image",
            hint=f"give at least {MIN_SIZE >> 20} MiB (the default is {DEFAULT_SIZE >> 30}G)",
        )
    return size


def check_output(output: Path) -> Path:
    output = output.absolute()
    if output.exists() or output.is_symlink():
        raise UsageError(
            f"output directory {output} exists",
            hint="give a new directory with --output, or remove the old one first",
        )
    if not output.parent.is_dir():
        raise UsageError(f"{output.parent} is not a directory", hint="create it first")
    staging = staging_dir(output)
    if staging.exists():
        raise UsageError(
            f"{staging} exists: another build of {output.name} runs, or one was killed",
            hint=f"wait for it, or remove {staging} (umount anything mounted below it first)",
        )
    return output


def staging_dir(output: Path) -> Path:
    """Where a build happens: beside the output, renamed to it only when complete."""
    return output.parent / f".{output.name}.partial"


def check_overrides(texts: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for text in texts:
        question, sep, value = text.partition("=")
        if not sep or "/" not in question:
            raise UsageError(
                f"--set {text!r}: expected QUESTION=VALUE",
                hint="for example --set dokuwiki/wiki/title=Wiki",
            )
        pairs.append((question, value))
    return tuple(pairs)


def host_repository(suite: str) -> tuple[str, Path]:
    """The vatools source this host uses (its URIs and Signed-By key), for --repository's default.

    Only a flat repository signed by our key counts; its URL's last part is changed to SUITE.
    """
    for path in sorted(HOST_SOURCES_DIR.glob("*.sources")):
        for entry in Deb822.iter_paragraphs(path.read_text()):
            signed_by = entry.get("Signed-By", "").strip()
            if signed_by.endswith(KEYRING_NAME) and entry.get("URIs"):
                url = entry["URIs"].split()[0].rstrip("/")
                base = url.rsplit("/", 1)[0]
                return f"{base}/{suite}/", Path(signed_by)
    raise UsageError(
        "this host has no vatools repository configured to build the image from",
        hint=f"give --repository URL (a vatools repository; its SUITE/ directories are used)"
        f" and --keyring FILE (its public key, as in {CLIENT_KEYRING})",
    )


def _read_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - http(s) or file
        return bytes(response.read())


def appliance_version(repository: Repository, name: str) -> str:
    """The appliance's version in the repository's index; refuses anything not an appliance.

    The index read here is not trusted for anything but this early check: apt inside the
    tree verifies the signed InRelease before it installs a byte.
    """
    try:
        data = _read_url(repository.url + "Packages.gz")
        text = gzip.decompress(data).decode("utf-8", "replace")
    except (OSError, urllib.error.URLError, EOFError) as error:
        raise VatoolsError(
            f"cannot read the repository index {repository.url}Packages.gz: {error}",
            hint="check --repository (a vatools repository URL; SUITE/ is appended)",
        ) from error
    appliances = {}
    for para in Packages.iter_paragraphs(text, use_apt_pkg=False):
        if is_appliance(para):
            appliances[para["Package"]] = para["Version"]
    if name not in appliances:
        known = ", ".join(sorted(appliances)) or "none"
        raise UsageError(
            f"unknown appliance {name!r} in {repository.url}",
            hint=f"appliances there: {known}",
        )
    return appliances[name]


def make_plan(
    name: str,
    *,
    suite: str,
    formats: list[str],
    size: str | None,
    output: Path | None,
    repository_url: str | None,
    keyring: Path | None,
    image_repository: str | None,
    seed: Path | None,
    overrides: list[str],
    mirror: str = DEFAULT_MIRROR,
    cache: Path | None = None,
) -> ImagePlan:
    """Check every input, cheapest first; the only network access is the index download."""
    check_suite(suite)
    chosen = check_formats(formats)
    check_tools(chosen)
    size_bytes = check_size(parse_size(size)) if size is not None else DEFAULT_SIZE
    out = check_output(output if output is not None else Path(f"{name}-{suite}"))
    if seed is not None and not seed.is_file():
        raise UsageError(f"--seed {seed}: no such file", hint="give the path of a seed file")
    pairs = check_overrides(overrides)
    if repository_url is None:
        url, key_path = host_repository(suite)
        keyring = keyring or key_path
    else:
        url = repository_url.rstrip("/") + f"/{suite}/"
    if not url.startswith(("http://", "https://")):
        raise UsageError(
            f"repository {url}: apt inside the image tree reaches it only over http(s)",
            hint="serve the repository over HTTP (a loopback server is fine) and give --repository URL",
        )
    if keyring is None:
        raise UsageError(
            "--repository needs --keyring FILE", hint=f"the repository's public key ({KEYRING_NAME})"
        )
    if not keyring.is_file():
        raise UsageError(f"--keyring {keyring}: no such file", hint="give the repository's public key")
    repository = Repository(url, keyring.read_bytes())
    version = appliance_version(repository, name)
    if image_repository == "none":
        kept: str | None = None
    else:
        kept = (image_repository.rstrip("/") + f"/{suite}/") if image_repository else url
    # Unset: now (a tar is then only as reproducible as its clock); see vatools(1).
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or time.time())
    return ImagePlan(
        name=name,
        version=version,
        suite=suite,
        formats=chosen,
        size=size_bytes,
        output=out,
        repository=repository,
        image_repository=kept,
        seed=seed.absolute() if seed else None,
        overrides=pairs,
        mirror=mirror,
        cache=cache,
        source_date_epoch=epoch,
    )
