"""`vatools image build NAME`: an appliance as a rootfs tarball, a bootable qcow2, an OCI image."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from vatools.cli import common

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


def register(subparsers: Any) -> None:
    image = subparsers.add_parser("image", help="build appliance images (tar, qcow2, OCI)")
    actions = image.add_subparsers(dest="image_command", metavar="COMMAND", required=True)
    build = actions.add_parser(
        "build",
        help="build an appliance image",
        description=DESCRIPTION,
        epilog=EPILOG + "\n\n" + common.EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument("name", metavar="NAME", help="the appliance package")
    build.add_argument("--suite", required=True, metavar="SUITE", help="bookworm or trixie")
    build.add_argument(
        "--format", dest="formats", action="append", default=[], metavar="FORMAT[,FORMAT]",
        help="tar, qcow2 or oci; repeatable or comma-separated, all made from one tree (default: tar)",
    )
    build.add_argument("--size", metavar="SIZE", help="the qcow2 disk's size, e.g. 4G (default 4G)")
    build.add_argument(
        "--output", type=Path, metavar="DIR", help="a new directory for the outputs (default: NAME-SUITE)"
    )
    build.add_argument("--seed", type=Path, metavar="FILE", help="vainstall's --seed, copied into the tree")
    build.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="QUESTION=VALUE",
        help="vainstall's --set (repeatable)",
    )
    build.add_argument(
        "--repository", metavar="URL",
        help="the vatools repository to install from (URL/SUITE/ is used; default: this host's"
        " vatools source)",
    )
    build.add_argument("--keyring", type=Path, metavar="FILE", help="the repository's public key")
    build.add_argument(
        "--image-repository", metavar="URL|none",
        help="the repository the image keeps for updates (default: --repository; none: no source)",
    )
    build.add_argument(
        "--mirror", default="http://deb.debian.org/debian", metavar="URL", help="the Debian mirror"
    )
    build.add_argument(
        "--cache", type=Path, metavar="DIR",
        help="keep downloaded debs here and reuse them in later builds",
    )
    build.add_argument("--json", action="store_true", help="print the result as JSON")
    build.add_argument("--debug", action="store_true", help="show the commands run, and tracebacks")
    build.set_defaults(func=build_handler)


def _interrupt(signum: int, frame: object) -> NoReturn:
    # SIGTERM takes the way out of Ctrl-C: the staging directory is removed.
    raise KeyboardInterrupt


def build_handler(args: argparse.Namespace) -> int:
    from vatools.image.build import build
    from vatools.image.plan import make_plan

    common.require_root("vatools image build")
    signal.signal(signal.SIGTERM, _interrupt)
    plan = make_plan(
        args.name,
        suite=args.suite,
        formats=args.formats,
        size=args.size,
        output=args.output,
        repository_url=args.repository,
        keyring=args.keyring,
        image_repository=args.image_repository,
        seed=args.seed,
        overrides=args.overrides,
        mirror=args.mirror,
        cache=args.cache,
    )
    result = build(plan)
    if args.json:
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
