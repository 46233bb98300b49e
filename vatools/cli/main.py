"""vatools: the packager's and administrator's toolbox (seeds, repositories, backups, new appliances)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from vatools.cli import backup, check, common, container, image, new, repo, seed

DESCRIPTION = """\
Tools around appliances: check seed files, build signed repositories, scaffold new
appliances, back up and restore, build images, check the installed appliance's
health. See vatools(1).

--root, --debug and --json may also be given here, before the command."""


@common.group("vatools", DESCRIPTION)
@common.root_option()
@common.debug_option()
@common.json_option("print the result as JSON (commands that list things)")
@common.version_option("vatools")
def vatools() -> None:
    pass


for group in (seed.seed, repo.repo, new.new, backup.backup, image.image, check.check,
              container.container):
    vatools.add_command(group)


def main(argv: Sequence[str] | None = None) -> int:
    return common.run(vatools, "vatools", argv)


if __name__ == "__main__":
    sys.exit(main())
