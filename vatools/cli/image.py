"""`vatools image build NAME`: an appliance as a rootfs tarball, a bootable qcow2, an OCI image."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import NoReturn

import click

from vatools.cli import common, complete

DESCRIPTION = """\
Build the appliance NAME as an image: a minimal Debian made with mmdebstrap, the vatools
repository added, vatools installed and `vainstall NAME` run inside the tree exactly as on
a server (same seed handling). The tree is then cleaned for distribution (apt lists and
caches, logs, machine-id, host keys: remade at first boot) and written in each --format:

  tar    NAME.tar.zst, the root filesystem; reproducible: the same inputs and
         SOURCE_DATE_EPOCH give the same bytes (give every password with --set)
  qcow2  NAME.qcow2, a GPT disk booting with UEFI (systemd-boot) or BIOS (GRUB),
         serial console, DHCP, root grown to the disk at first boot; and NAME.xml,
         its libvirt domain
  oci    NAME.oci/, an OCI image layout for a read-only container

Passwords vainstall generates are moved out of the image into OUTPUT/NAME.secrets
(mode 0600). OUTPUT/manifest.json lists the packages and the sha256 of every file.
Every input is checked before the build starts; a failed build leaves nothing."""

EPILOG = """\
examples:
  vatools image build dokuwiki-appliance --suite bookworm --format qcow2
  vatools image build dokuwiki-appliance --suite trixie --format tar,oci \\
      --repository http://repo.example.org/vatools --keyring vatools-archive-keyring.gpg
  SOURCE_DATE_EPOCH=1700000000 vatools image build dokuwiki-appliance --suite bookworm \\
      --set dokuwiki/wiki/password=S3cret --set dokuwiki/wiki/confirm=S3cret"""


@common.group("image", "Build appliance images: a rootfs tarball, a bootable qcow2 disk, an OCI image.",
              short_help="build appliance images (tar, qcow2, OCI)")
@common.debug_option()
def image() -> None:
    pass


def _suites(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [s for s in ("bookworm", "trixie") if s.startswith(incomplete)]


def _formats(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    done, comma, last = incomplete.rpartition(",")
    return [done + comma + f for f in ("tar", "qcow2", "oci") if f.startswith(last)]


_FILE = common.FILE
_DIR = common.DIR


@image.command("build", help=DESCRIPTION, epilog=EPILOG, short_help="build an appliance image")
@click.argument("name", metavar="NAME", cls=common.Arg, help="the appliance package",
                shell_complete=complete.appliances)
@click.option("--suite", required=True, metavar="SUITE", help="bookworm or trixie",
              shell_complete=_suites)
@click.option("--format", "formats", multiple=True, metavar="FORMAT[,FORMAT]", shell_complete=_formats,
              help="tar, qcow2 or oci; repeatable or comma-separated, all made from one tree"
              " (default: tar)")
@click.option("--size", metavar="SIZE", help="the qcow2 disk's size, e.g. 4G (default 4G)")
@click.option("--output", type=_DIR, metavar="DIR",
              help="a new directory for the outputs (default: NAME-SUITE)")
@click.option("--seed", type=_FILE, metavar="FILE", help="vainstall's --seed, copied into the tree")
@click.option("--set", "overrides", multiple=True, metavar="QUESTION=VALUE",
              help="vainstall's --set (repeatable)")
@click.option("--repository", metavar="URL",
              help="the vatools repository to install from (URL/SUITE/ is used; default: this host's"
              " vatools source)")
@click.option("--keyring", type=_FILE, metavar="FILE", help="the repository's public key")
@click.option("--image-repository", metavar="URL|none",
              help="the repository the image keeps for updates (default: --repository; none: no source)")
@click.option("--mirror", default="http://deb.debian.org/debian", metavar="URL",
              help="the Debian mirror (default: http://deb.debian.org/debian)")
@click.option("--cache", type=_DIR, metavar="DIR",
              help="keep downloaded debs here and reuse them in later builds")
@common.json_option("print the result as JSON")
@common.debug_option("show the commands run, and tracebacks")
def build_handler(name: str, suite: str, formats: tuple[str, ...], size: str | None,
                  output: Path | None, seed: Path | None, overrides: tuple[str, ...],
                  repository: str | None, keyring: Path | None, image_repository: str | None,
                  mirror: str, cache: Path | None) -> int:
    from vatools.image.build import build
    from vatools.image.plan import make_plan

    common.require_root("vatools image build")
    signal.signal(signal.SIGTERM, _interrupt)
    plan = make_plan(
        name,
        suite=suite,
        formats=list(formats),
        size=size,
        output=output,
        repository_url=repository,
        keyring=keyring,
        image_repository=image_repository,
        seed=seed,
        overrides=list(overrides),
        mirror=mirror,
        cache=cache,
    )
    result = build(plan)
    if common.settings().json:
        json.dump(
            {
                "output": str(result.output),
                "files": result.files,
                "secrets": str(result.secrets) if result.secrets else None,
                "manifest": str(result.manifest),
                "seconds": round(result.seconds, 1),
            },
            sys.stdout,
            indent=2,
        )
        print()
    else:
        print(f"{plan.name} {plan.version} ({plan.suite}) built in {result.seconds:.0f} s: {result.output}")
        for names in result.files.values():
            for name in names:
                print(f"  {name}")
        print(f"  {result.manifest.name}")
        if result.secrets:
            print(f"  {result.secrets.name}  (generated passwords, mode 0600: keep it safe)")
    return 0


def _interrupt(signum: int, frame: object) -> NoReturn:
    # SIGTERM takes the way out of Ctrl-C: the staging directory is removed.
    raise KeyboardInterrupt
