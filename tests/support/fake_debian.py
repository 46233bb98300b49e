"""A small Debian tree for unit tests: dpkg's status file and one apt source with its Packages list.

The real python-apt reads such a tree through `--root`/`Target(root)` (vatools.aptq points apt's
Dir at it): a `[trusted=yes]` source needs no Release file, and nothing is ever downloaded (the
source's address is only the name of its list file). No chroot, no root, milliseconds.

The default contents cover what vatools distinguishes:

    status (dpkg)        wiki-appliance 1.0   installed, provides virtual-appliance
                         old-appliance 0.9    removed, config files left ("deinstall ok config-files")
                         gone-appliance       "unknown ok not-installed" (dpkg keeps such entries)
                         notes 1.0            installed, not an appliance in this version
                         base-files 12.4      installed, not an appliance
    Packages (apt)       wiki-appliance 1.1   Vatools-Seed-Sha256, Vatools-Services
                         blog-appliance 2.0 and 1.5, depends on libblog
                         libblog 3            a library
                         notes 2.0            provides virtual-appliance from this version on
                         broken-appliance 1   depends on a package nobody has

`use_file_repository` swaps the source for a `file:` repository whose files exist, for apt's
verified downloads (apt's file method hashes them where they lie; nothing leaves the machine).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import apt_pkg

SOURCE = "deb [trusted=yes] http://127.0.0.1/repo bookworm main"
SEED_SHA256 = "5" * 64

STATUS = """\
Package: base-files
Status: install ok installed
Priority: required
Architecture: {arch}
Version: 12.4
Description: Debian base system miscellaneous files

Package: wiki-appliance
Status: install ok installed
Priority: optional
Architecture: all
Version: 1.0
Provides: virtual-appliance
Conflicts: virtual-appliance
Vatools-Services: apache2
Description: A wiki appliance
 Long description, second line.

Package: old-appliance
Status: deinstall ok config-files
Priority: optional
Architecture: all
Version: 0.9
Provides: virtual-appliance
Conflicts: virtual-appliance
Description: An appliance removed without purge

Package: gone-appliance
Status: unknown ok not-installed
Priority: optional
Architecture: all
Provides: virtual-appliance
Description: An appliance dpkg only remembers

Package: notes
Status: install ok installed
Priority: optional
Architecture: all
Version: 1.0
Description: Notes, not yet an appliance
"""

PACKAGES = """\
Package: wiki-appliance
Version: 1.1
Architecture: all
Provides: virtual-appliance
Conflicts: virtual-appliance
Filename: pool/main/w/wiki-appliance/wiki-appliance_1.1_all.deb
Size: 1000
SHA256: {zeros}
Vatools-Seed-Sha256: {seed_sha256}
Vatools-Services: apache2
Description: A wiki appliance, newer
 Long description.

Package: blog-appliance
Version: 1.5
Architecture: all
Provides: virtual-appliance
Conflicts: virtual-appliance
Depends: libblog
Filename: pool/main/b/blog-appliance/blog-appliance_1.5_all.deb
Size: 1000
SHA256: {zeros}
Description: A blog appliance, older

Package: blog-appliance
Version: 2.0
Architecture: all
Provides: virtual-appliance
Conflicts: virtual-appliance
Depends: libblog (>= 3)
Filename: pool/main/b/blog-appliance/blog-appliance_2.0_all.deb
Size: 1000
SHA256: {zeros}
Description: A blog appliance

Package: libblog
Version: 3
Architecture: all
Filename: pool/main/libb/libblog/libblog_3_all.deb
Size: 1000
SHA256: {zeros}
Description: The blog's library

Package: notes
Version: 2.0
Architecture: all
Provides: virtual-appliance
Conflicts: virtual-appliance
Filename: pool/main/n/notes/notes_2.0_all.deb
Size: 1000
SHA256: {zeros}
Description: Notes, now an appliance

Package: broken-appliance
Version: 1
Architecture: all
Provides: virtual-appliance
Conflicts: virtual-appliance
Depends: no-such-package
Filename: pool/main/b/broken-appliance/broken-appliance_1_all.deb
Size: 1000
SHA256: {zeros}
Description: An appliance apt cannot install
"""


def native_architecture() -> str:
    return subprocess.run(
        ["dpkg", "--print-architecture"], check=True, capture_output=True, text=True
    ).stdout.strip()


def make_tree(root: Path, status: str | None = None, packages: str | None = None) -> Path:
    """Write a Debian tree under `root` (the defaults above unless given) and return root."""
    arch = native_architecture()
    for directory in (
        "var/lib/dpkg",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
        "etc/apt/sources.list.d",
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
    ):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").write_text(STATUS.format(arch=arch) if status is None else status)
    (root / "etc/apt/sources.list.d/test.list").write_text(SOURCE + "\n")
    lists = root / f"var/lib/apt/lists/127.0.0.1_repo_dists_bookworm_main_binary-{arch}_Packages"
    lists.write_text(
        PACKAGES.format(zeros="0" * 64, seed_sha256=SEED_SHA256) if packages is None else packages
    )
    return root


def use_file_repository(root: Path, repository: Path, debs: dict[str, bytes]) -> None:
    """Make `repository` (a directory) the tree's only source, holding package NAME 1.0 with the
    given bytes for each item of `debs`; each provides virtual-appliance. apt checks hashes and
    sizes only, so the bytes need not be a real .deb."""
    repository.mkdir(parents=True, exist_ok=True)
    stanzas = []
    for name, data in debs.items():
        filename = f"{name}_1.0_all.deb"
        (repository / filename).write_bytes(data)
        stanzas.append(
            f"Package: {name}\nVersion: 1.0\nArchitecture: all\nProvides: virtual-appliance\n"
            f"Filename: ./{filename}\nSize: {len(data)}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\nDescription: {name}\n"
        )
    uri = f"file:{repository}"
    (root / "etc/apt/sources.list.d/test.list").write_text(f"deb [trusted=yes] {uri} ./\n")
    lists = root / "var/lib/apt/lists"
    for old in lists.glob("*_Packages"):
        old.unlink()
    # apt names a list file after its URI, quoting some characters ("_" among them).
    (lists / apt_pkg.uri_to_filename(f"{uri}/./Packages")).write_text("\n".join(stanzas))
