"""The image's tree: a minimal Debian from mmdebstrap, our repository, then vainstall inside it.

The appliance is installed exactly as on a server: `vainstall NAME -y` runs in the tree
(chroot), with the same seed handling. While the tree is built, no service starts
(policy-rc.d answers 101), dpkg skips fsync (the tree is offline until written out), and
the tree resolves names with the host's resolv.conf; all three are undone afterwards.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from vatools import credentials
from vatools.image.boot import INITRAMFS_FILES
from vatools.image.plan import ImagePlan
from vatools.packaging.repo import KEYRING_NAME
from vatools.run import run
from vatools.target import Target

# What a bootable, networked, resizable appliance needs beyond minbase; the same tree feeds
# every format, so a tar or OCI image of the same inputs is the same files as the disk.
BASE_PACKAGES = (
    "linux-image-amd64",
    "initramfs-tools",
    "systemd-sysv",
    "udev",
    "dbus",  # systemd-logind turns QMP's/ACPI power-button press into a clean shutdown
    "systemd-resolved",
    "fdisk",  # sfdisk grows the root partition at first boot
    "e2fsprogs",
    "kmod",
    "ca-certificates",
)
KEYRING_INSIDE = f"/etc/apt/keyrings/{KEYRING_NAME}"
SOURCES_INSIDE = "/etc/apt/sources.list.d/vatools.sources"
POLICY_RC_D = "/usr/sbin/policy-rc.d"
UNSAFE_IO = "/etc/dpkg/dpkg.cfg.d/vatools-image-unsafe-io"
RESOLV_CONF = "/etc/resolv.conf"
SEED_INSIDE = "/root/vatools-image.seed"


def mmdebstrap(plan: ImagePlan, tree: Path) -> None:
    """The minimal Debian tree (minbase + BASE_PACKAGES); debs kept in plan.cache if given."""
    argv = [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--include=" + ",".join(BASE_PACKAGES),
        "--dpkgopt=force-unsafe-io",
        "--aptopt=Acquire::Retries 3",
    ]
    # Before the kernel's package makes its initrd: the one it makes is then the small one.
    for inside, text in INITRAMFS_FILES.items():
        directory = shlex.quote(os.path.dirname(inside))
        argv.append(f'--essential-hook=mkdir -p "$1"{directory} && printf %s {shlex.quote(text)} > "$1"{shlex.quote(inside)}')
    if plan.cache is not None:
        plan.cache.mkdir(parents=True, exist_ok=True)
        argv += [
            '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
            f"--setup-hook=sync-in {plan.cache} /var/cache/apt/archives/",
            f"--customize-hook=sync-out /var/cache/apt/archives {plan.cache}",
        ]
    argv += [plan.suite, str(tree), plan.mirror]
    run(argv, env={"SOURCE_DATE_EPOCH": str(plan.source_date_epoch)})


def sources_entry(url: str) -> str:
    return f"Types: deb\nURIs: {url}\nSuites: ./\nSigned-By: {KEYRING_INSIDE}\n"


class BuildTree:
    """The tree while it is being built: the temporary settings, put in and taken out."""

    def __init__(self, plan: ImagePlan, tree: Path) -> None:
        self.plan = plan
        self.tree = tree
        self.target = Target(tree)
        self._resolv_link: str | None = None

    def env(self) -> dict[str, str]:
        return {
            "DEBIAN_FRONTEND": "noninteractive",
            "SOURCE_DATE_EPOCH": str(self.plan.source_date_epoch),
        }

    def _write(self, inside: str, data: bytes, mode: int) -> None:
        path = self.target.path(inside)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)

    def prepare(self) -> None:
        """No services, no fsync, the host's name resolution, our repository and its key."""
        self._write(POLICY_RC_D, b"#!/bin/sh\n# vatools image build: start no services\nexit 101\n", 0o755)
        self._write(UNSAFE_IO, b"force-unsafe-io\n", 0o644)
        resolv = self.target.path(RESOLV_CONF)
        if resolv.is_symlink():
            self._resolv_link = os.readlink(resolv)
        if resolv.exists() or resolv.is_symlink():
            resolv.unlink()
        shutil.copyfile("/etc/resolv.conf", resolv)
        self._write(KEYRING_INSIDE, self.plan.repository.keyring, 0o644)
        self._write(SOURCES_INSIDE, sources_entry(self.plan.repository.url).encode(), 0o644)

    def install_vatools(self) -> None:
        self._apt_cache_in()
        run(["apt-get", "update"], target=self.target, env=self.env())
        run(["apt-get", "install", "-y", "--no-install-recommends", "vatools"], target=self.target, env=self.env())

    def vainstall(self) -> str:
        """vainstall NAME -y in the tree; its output holds generated passwords: not logged."""
        argv = ["vainstall", "--yes"]
        if self.plan.seed is not None:
            self._write(SEED_INSIDE, self.plan.seed.read_bytes(), 0o600)
            argv += ["--seed", SEED_INSIDE]
        shown = list(argv)
        for question, value in self.plan.overrides:
            argv += ["--set", f"{question}={value}"]
            shown += ["--set", f"{question}=..."]  # a value may be a password: never logged
        argv.append(self.plan.name)
        shown.append(self.plan.name)
        done = run(argv, target=self.target, env=self.env(), shown=shown,
                   hint="the tree is removed; nothing is kept")
        self._apt_cache_out()
        return done.stdout

    def take_secrets(self, output: Path) -> Path | None:
        """Move the generated passwords out of the image into OUTPUT/secrets (0600).

        Every copy of the image shares them; the deployer keeps this file and changes them.
        """
        inside = credentials.secrets_path(self.target, self.plan.name)
        if not inside.exists():
            return None
        dest = output / f"{self.plan.name}.secrets"
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(inside.read_bytes())
        inside.unlink()
        return dest

    def finish(self) -> None:
        """Undo prepare(): services may start again, dpkg syncs, resolv.conf as the image wants."""
        for inside in (POLICY_RC_D, UNSAFE_IO, SEED_INSIDE, "/etc/dpkg/dpkg.cfg.d/99mmdebstrap"):
            path = self.target.path(inside)
            if path.exists():
                path.unlink()
        resolv = self.target.path(RESOLV_CONF)
        resolv.unlink()
        if self._resolv_link is not None:
            resolv.symlink_to(self._resolv_link)
        else:
            resolv.write_text("")
        sources = self.target.path(SOURCES_INSIDE)
        if self.plan.image_repository is None:
            sources.unlink()
            self.target.path(KEYRING_INSIDE).unlink()
        else:
            sources.write_text(sources_entry(self.plan.image_repository))

    def _apt_cache_in(self) -> None:
        if self.plan.cache is None:
            return
        archives = self.target.path("/var/cache/apt/archives")
        archives.mkdir(parents=True, exist_ok=True)
        for deb in self.plan.cache.glob("*.deb"):
            if (archives / deb.name).exists():
                continue
            if _same_fs(deb, archives):
                os.link(deb, archives / deb.name)  # apt only reads it, then it is deleted
            else:
                shutil.copy2(deb, archives)

    def _apt_cache_out(self) -> None:
        if self.plan.cache is None:
            return
        for deb in self.target.path("/var/cache/apt/archives").glob("*.deb"):
            if not (self.plan.cache / deb.name).exists():
                shutil.copy2(deb, self.plan.cache / deb.name)


def _same_fs(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev
