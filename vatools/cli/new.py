"""`vatools new NAME --depends PKG[,PKG...]`: scaffold a new appliance (vatools.packaging.generate)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vatools.cli import common

DESCRIPTION = """\
Write a complete Debian source package for a new appliance, appliances/NAME/, and its seed,
seeds/NAME.seed, under DIR. The seed lists, commented out, every debconf question that
installing the dependencies asks (apt resolves them and downloads their .debs to a
temporary directory; nothing on the system changes). Nothing is written unless everything
worked; an existing appliance is replaced only with --force."""

EPILOG = """\
then:
  edit seeds/NAME.seed                 uncomment and answer the questions
  vatools seed check seeds/NAME.seed --against PKG...
  vatools repo build REPO              build with dpkg-buildpackage, publish signed
  vainstall NAME                       on the server, with the repository in its sources

example:
  vatools new postfix-appliance --depends postfix,bsd-mailx --services postfix \\
      --description "mail server for a small office" --maintainer "Jane Doe <jane@example.org>\""""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "new",
        help="scaffold a new appliance: Debian source package and seed skeleton",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", metavar="NAME", help="the appliance's package name, e.g. postfix-appliance")
    p.add_argument("--depends", required=True, metavar="PKG[,PKG...]",
                   help="what the appliance installs: comma-separated packages, optionally"
                        " with versions and alternatives ('postfix (>= 3.7), bsd-mailx | mailutils')")
    p.add_argument("--description", metavar="TEXT",
                   help="one-line synopsis (default: 'single-purpose PKG server', PKG the first one)")
    p.add_argument("--maintainer", metavar='"NAME <MAIL>"',
                   help="default: DEBFULLNAME and DEBEMAIL from the environment")
    p.add_argument("--web", choices=("apache2", "nginx"),
                   help="the web server the appliance serves with (added to Depends and services)")
    p.add_argument("--services", metavar="UNIT[,UNIT...]",
                   help="systemd services the appliance runs, for backups (Vatools-Services;"
                        " default: the --web server)")
    p.add_argument("--initial-version", default="1.0", metavar="VERSION",
                   help="version of the first changelog entry (default: %(default)s)")
    p.add_argument("--output", type=Path, default=Path("."), metavar="DIR",
                   help="top of the tree to write appliances/ and seeds/ into (default: .)")
    p.add_argument("--force", action="store_true", help="replace an existing appliance of that name")
    common.add_target_options(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from vatools.packaging.generate import generate, make_spec

    spec = make_spec(
        args.name,
        args.depends,
        description=args.description,
        maintainer=args.maintainer,
        web=args.web,
        services=args.services,
        version=args.initial_version,
    )
    made = generate(spec, args.output, common.target(args), force=args.force)
    print(f"wrote {made.appliance_dir}/ and {made.seed}")
    print(f"next: answer the questions in {made.seed}, then build and publish with"
          " `vatools repo build`, and install with `vainstall " + spec.name + "`")
    return 0
