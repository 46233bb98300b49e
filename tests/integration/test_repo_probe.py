"""Throwaway source packages for the repository tests, written into a temporary dir.

`make_tree(top)` lays out a miniature vatools tree: a stand-in for the toolkit (debian/ at the
top), an appliance whose seed is a symlink into seeds/ (as in the real tree), and a package
that must be built per release inside a chroot (the MoinMoin case). Nothing here is a test.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

APPLIANCE = "probe-appliance"
TOOLKIT = "probe-toolkit"
PER_RELEASE = "probe-per-release"

SEED = textwrap.dedent("""\
    # The probe's seed: one question of a package every minbase tree has.
    tzdata tzdata/Areas select Europe
    tzdata tzdata/Zones/Europe select Berlin
    """)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)


def _source(dir: Path, name: str, *, binary_extra: str = "", rules_extra: str = "",
            build_depends: str = "debhelper-compat (= 13)") -> None:
    """A minimal debhelper-13 native source package with one Architecture: all binary."""
    _write(dir / "debian/changelog", f"""\
        {name} (1.0) unstable; urgency=medium

          * Probe package for the vatools repository tests.

         -- vatools tests <tests@vatools.invalid>  Mon, 23 Nov 2026 12:00:00 +0000
        """)
    _write(dir / "debian/source/format", "3.0 (native)\n")
    control = f"""\
        Source: {name}
        Section: misc
        Priority: optional
        Maintainer: vatools tests <tests@vatools.invalid>
        Build-Depends: {build_depends}
        Standards-Version: 4.6.2
        Rules-Requires-Root: no

        Package: {name}
        Architecture: all
        Depends: ${{misc:Depends}}
        """
    _write(dir / "debian/control", textwrap.dedent(control) + binary_extra
           + f"Description: vatools test probe {name}\n probe package for tests\n")
    _write(dir / "debian/rules", "#!/usr/bin/make -f\n%:\n\tdh $@\n" + rules_extra, mode=0o755)


def make_tree(top: Path) -> None:
    """A miniature vatools tree: toolkit at the top, appliances/ with a seed symlink, packages/."""
    _source(top, TOOLKIT)
    _write(top / f"debian/{TOOLKIT}.install", "README usr/share/doc/probe-toolkit/\n")
    _write(top / "README", "the probe toolkit\n")
    # Junk that must not travel into the build copy.
    _write(top / ".git/HEAD", "ref: refs/heads/main\n")
    _write(top / "build/leftover.deb", "not a deb\n")

    _write(top / f"seeds/{APPLIANCE}.seed", SEED)
    app = top / "appliances" / APPLIANCE
    _source(app, APPLIANCE,
            binary_extra="Provides: virtual-appliance\nConflicts: virtual-appliance\n"
                         "XB-Vatools-Seed-Sha256: ${vatools:SeedSha256}\n",
            rules_extra=f"override_dh_gencontrol:\n"
                        f"\techo \"vatools:SeedSha256=$$(sha256sum {APPLIANCE}.seed | cut -d' ' -f1)\""
                        f" >> debian/{APPLIANCE}.substvars\n\tdh_gencontrol\n")
    _write(app / f"debian/{APPLIANCE}.install", f"{APPLIANCE}.seed usr/share/vatools/seeds/\n")
    (app / f"{APPLIANCE}.seed").symlink_to(f"../../seeds/{APPLIANCE}.seed")

    # Built per release: records the release it was built on, which the tests read back.
    per = top / "packages" / PER_RELEASE
    _source(per, PER_RELEASE,
            rules_extra="override_dh_auto_install:\n"
                        f"\tmkdir -p debian/{PER_RELEASE}/usr/share/{PER_RELEASE}\n"
                        f"\tcp /etc/debian_version debian/{PER_RELEASE}/usr/share/{PER_RELEASE}/built-on\n"
                        "\ttest -r /proc/self/status\n")
    _write(per / "debian/vatools-build-in-chroot", "")
