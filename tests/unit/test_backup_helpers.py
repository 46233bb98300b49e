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


# --- hand-made archives, for hostile input ------------------------------------------------

import gzip  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import tarfile  # noqa: E402
import zipfile  # noqa: E402
from typing import Any, Callable  # noqa: E402

import yaml  # noqa: E402

Member = tuple[tarfile.TarInfo, bytes]


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", mode: int = 0o644,
          linkname: str = "", **fields: Any) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode if kind != tarfile.DIRTYPE or mode != 0o644 else 0o755
    info.size = len(data) if kind in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
    info.linkname = linkname
    info.mtime = 1_700_000_000
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def tar_gz(members: list[Member]) -> tuple[bytes, int, int, int]:
    """The .tar.gz bytes, uncompressed size, content bytes and entry count."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    tar_bytes = raw.getvalue()
    content = sum(i.size for i, _ in members if i.isreg())
    return gzip.compress(tar_bytes, mtime=0), len(tar_bytes), content, len(members)


def good_config() -> list[Member]:
    return [entry("etc-wiki", tarfile.DIRTYPE),
            entry("etc-wiki/local.php", data=b"<?php $conf['title'] = 'Restored';\n")]


def good_data() -> list[Member]:
    return [entry("var-lib-wiki-data", tarfile.DIRTYPE),
            entry("var-lib-wiki-data/pages", tarfile.DIRTYPE),
            entry("var-lib-wiki-data/pages/start.txt", data=b"restored page\n"),
            entry("var-lib-wiki-users.txt", data=b"admin:restored\n", mode=0o600)]


def build_abf(path: Path, config: list[Member] | None = None, data: list[Member] | None = None,
              info: dict[str, Any] | None = None, version: bytes = b"2\n",
              tamper: Callable[[dict[str, bytes]], None] | None = None,
              sums_name: str = "sha256sums", algorithm: str = "sha256") -> Path:
    """An .abf made by hand: by default a valid backup of wiki-appliance 1.0."""
    members: dict[str, bytes] = {"version": version}
    sizes = {}
    for archive, content in (("sysconfig.tar.gz", good_config() if config is None else config),
                             ("appdata.tar.gz", good_data() if data is None else data)):
        blob, tar_bytes, content_bytes, entries = tar_gz(content)
        members[archive] = blob
        sizes[archive] = {"compressed": len(blob), "tar_bytes": tar_bytes,
                          "content_bytes": content_bytes, "entries": entries}
    description: dict[str, Any] = {
        "version": "2", "appliance": APPLIANCE, "appliance_version": "1.0",
        "hostname": "old-host", "timestamp": "2026-11-23 12:00:00",
        "packages": {APPLIANCE: "1.0"}, "manifest": {}, "services": ["apache2"],
        "sysconf": {"roots": {"etc-wiki": "/etc/wiki"}},
        "appdata": {"roots": {"var-lib-wiki-data": "/var/lib/wiki/data",
                              "var-lib-wiki-users.txt": "/var/lib/wiki/users.txt"}},
        "sizes": sizes}
    description.update(info or {})
    members["info.yaml"] = yaml.safe_dump(description).encode()
    if tamper:
        tamper(members)  # may change content after the sizes were taken
    sums = "".join(f"{hashlib.new(algorithm, blob).hexdigest()}  {name}\n"
                   for name, blob in members.items() if name != sums_name)
    members.setdefault(sums_name, sums.encode())
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    return path
