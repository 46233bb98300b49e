"""`vatools new NAME --depends PKG[,PKG...]`: scaffold a new appliance (vatools.packaging.generate)."""

from __future__ import annotations

from pathlib import Path

import click

from vatools.cli import common, complete

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


@common.command("new", DESCRIPTION, epilog=EPILOG,
                short_help="scaffold a new appliance: Debian source package and seed skeleton")
@click.argument("name", metavar="NAME", cls=common.Arg,
                help="the appliance's package name, e.g. postfix-appliance")
@click.option("--depends", required=True, metavar="PKG[,PKG...]", shell_complete=complete.packages,
              help="what the appliance installs: comma-separated packages, optionally"
                   " with versions and alternatives ('postfix (>= 3.7), bsd-mailx | mailutils')")
@click.option("--description", metavar="TEXT",
              help="one-line synopsis (default: 'single-purpose PKG server', PKG the first one)")
@click.option("--maintainer", metavar='"NAME <MAIL>"',
              help="default: DEBFULLNAME and DEBEMAIL from the environment")
@click.option("--web", type=click.Choice(["apache2", "nginx"]),
              help="the web server the appliance serves with (added to Depends and services)")
@click.option("--services", metavar="UNIT[,UNIT...]",
              help="systemd services the appliance runs, for backups (Vatools-Services;"
                   " default: the --web server)")
@click.option("--initial-version", default="1.0", metavar="VERSION",
              help="version of the first changelog entry (default: 1.0)")
@click.option("--output", type=common.DIR, default=Path("."),
              metavar="DIR", help="top of the tree to write appliances/ and seeds/ into (default: .)")
@click.option("--force", is_flag=True, help="replace an existing appliance of that name")
@common.root_option()
@common.debug_option()
def new(name: str, depends: str, description: str | None, maintainer: str | None, web: str | None,
        services: str | None, initial_version: str, output: Path, force: bool) -> int:
    from vatools.packaging.generate import generate, make_spec

    spec = make_spec(name, depends, description=description, maintainer=maintainer, web=web,
                     services=services, version=initial_version)
    made = generate(spec, output, common.target(), force=force)
    print(f"wrote {made.appliance_dir}/ and {made.seed}")
    print(f"next: answer the questions in {made.seed}, then build and publish with"
          " `vatools repo build`, and install with `vainstall " + spec.name + "`")
    return 0
