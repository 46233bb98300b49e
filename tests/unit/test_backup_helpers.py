"""Synthetic target roots for the backup tests: a temp tree with a dpkg status paragraph.

Pure-logic input standing in for an installed appliance (no package is installed anywhere).
"""

from __future__ import annotations

import os
from pathlib import Path

APPLIANCE = "wiki-appliance"

STATUS = """Package: base-files
Status: install ok installed
Version: 12.4

Package: {name}
Status: install ok installed
Priority: optional
Section: misc
Architecture: all
Version: {version}
Provides: virtual-appliance
Depends: wikiengine (>= 1.0), apache2
Conflicts: virtual-appliance
Vatools-Services: apache2
Vatools-Backup-Config: /etc/wiki
Vatools-Backup-Data: /var/lib/wiki/data /var/lib/wiki/users.txt
Description: a test appliance

Package: wikiengine
Status: install ok installed
Version: 2.5-1

Package: other-appliance
Status: deinstall ok config-files
Version: 1
Provides: virtual-appliance
"""


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


def make_target(root: Path, version: str = "1.0", name: str = APPLIANCE) -> Path:
    """A tree with the appliance "installed" and some content in its declared paths."""
    write(root / "var/lib/dpkg/status", STATUS.format(name=name, version=version))
    write(root / "etc/passwd", "root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/sh\n")
    write(root / "etc/group", "root:x:0:\nwww-data:x:33:\n")
    write(root / "etc/wiki/local.php", "<?php $conf['title'] = 'Before';\n")
    write(root / "etc/wiki/secret.php", "<?php // secret\n", 0o640)
    os.symlink("/var/lib/wiki/users.txt", root / "etc/wiki/users.link")
    data = root / "var/lib/wiki/data"
    write(data / "pages/start.txt", "====== Start ======\nHello\n")
    write(data / "pages/ns/deep page.txt", "deep\n")
    os.symlink("../start.txt", data / "pages/ns/to-start")
    os.link(data / "pages/start.txt", data / "pages/start.hardlink")
    (data / "empty").mkdir()
    os.chmod(data / "empty", 0o2770)  # setgid on a directory is allowed
    os.chown(data / "pages/start.txt", 33, 33)
    os.utime(data / "pages/start.txt", (1_000_000_000, 1_000_000_000))
    write(root / "var/lib/wiki/users.txt", "admin:hash\n", 0o600)
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything a restore must preserve or leave alone, for every entry of the tree."""
    state: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            rel = str(path.relative_to(root))
            if path.is_symlink():
                state[rel] = ("link", os.readlink(path), st.st_uid, st.st_gid)
            elif path.is_dir():
                state[rel] = ("dir", st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns)
            else:
                state[rel] = ("file", st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns,
                              st.st_nlink, path.read_bytes())
    return state
