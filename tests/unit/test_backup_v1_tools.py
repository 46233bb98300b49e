"""Format 1 backups made by other tools verify and restore to what tar itself extracts.

A version 1 .abf is a zip of tar.gz members, made by whatever tar the original tool ran:
GNU tar (names relative to "/", or absolute with -P, or "./"-prefixed; with or without
directory entries; hard links; long names), Python's tarfile (GNU and PAX formats), busybox.
Each archive here is made by that real tool from a real tree; the reference is the same
archive extracted by GNU tar (as root: owners and modes kept). Directories missing from an
archive are made as tar makes them: mode 0777 minus the umask, owned by the restoring user.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml
from test_backup_helpers import APPLIANCE, make_target, write

from vatools.cli.main import main

V1_ROOTS = {"sysconfig.tar.gz": "etc/wiki", "appdata.tar.gz": "var/lib/wiki/data"}
LONG_NAME = "a-page-with-a-very-long-name-" + "x" * 171  # 200 characters: GNU longname / pax


def source_tree(root: Path) -> Path:
    """The appliance's content as the old machine had it: the helpers' tree plus a hard link
    pair, a 200-character name and a path well over tar's 100-character name field."""
    make_target(root)
    data = root / "var/lib/wiki/data"
    write(data / "pages" / LONG_NAME, "long name\n")
    deep = data / "media" / ("sub" * 20) / ("dir" * 20)
    write(deep / "image.png", "not really a png\n", 0o640)
    os.link(deep / "image.png", data / "media/image-again.png")
    os.chown(deep / "image.png", 33, 33)
    os.utime(data / "pages", (1_600_000_000, 1_600_000_000))
    return root


def v1_abf(path: Path, archives: dict[str, bytes]) -> Path:
    """A format 1 .abf around the given tar.gz members (version 0.1, sha1sums)."""
    info = {"version": "0.1", "appliance": APPLIANCE, "timestamp": "2009-10-31 20:12:33",
            "sysconf": {"dirs": ["/etc/wiki"]}, "appdata": {"dirs": ["/var/lib/wiki/data"]}}
    members = {"version": b"0.1\n", **archives, "info.yaml": yaml.safe_dump(info).encode()}
    sums = "".join(f"{hashlib.sha1(blob).hexdigest()}  {name}\n" for name, blob in members.items())
    members["sha1sums"] = sums.encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    return path


def state(root: Path, rel: str, dir_times: bool) -> dict[str, tuple]:
    """Everything tar restores below root/rel (directory mtimes only when the archive has
    directory entries: tar leaves an implied directory's time to the moment it was made)."""
    found: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root / rel):
        for name in [".", *dirnames, *filenames]:
            path = Path(dirpath, name)
            st = path.lstat()
            key = os.path.normpath(path.relative_to(root))
            if path.is_symlink():
                found[key] = ("link", os.readlink(path), st.st_uid, st.st_gid)
            elif path.is_dir():
                found[key] = ("dir", st.st_mode, st.st_uid, st.st_gid,
                              st.st_mtime_ns if dir_times else None)
            else:
                found[key] = ("file", st.st_mode, st.st_uid, st.st_gid, st.st_mtime // 1,
                              st.st_nlink, path.read_bytes())
    return found


def gnu_tar(src: Path, rel: str, *options: str) -> bytes:
    return subprocess.run(["tar", "-cz", "-C", str(src), *options, "-f", "-", rel], check=True,
                          capture_output=True).stdout


def gnu_tar_files_only(src: Path, rel: str) -> bytes:
    """GNU tar given a list of files and symlinks only: no directory entries at all."""
    listing = subprocess.run(["find", rel, "!", "-type", "d"], cwd=src, check=True,
                             capture_output=True, text=True).stdout
    return subprocess.run(["tar", "-cz", "-C", str(src), "--no-recursion", "-T", "-",
                           "-f", "-"], input=listing.encode(), check=True,
                          capture_output=True).stdout


def gnu_tar_absolute(src: Path, rel: str) -> bytes:
    """GNU tar -P: members named /etc/wiki/... (as the original tool stored them)."""
    return subprocess.run(["tar", "-czP", "--transform", f"s,^{src},,S", "-f", "-",
                           str(src / rel)], check=True, capture_output=True).stdout


def python_tar(src: Path, rel: str, fmt: int) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz", format=fmt) as tar:
        tar.add(src / rel, arcname=rel)
    return raw.getvalue()


def busybox_tar(src: Path, rel: str) -> bytes:
    return subprocess.run(["busybox", "tar", "-cz", "-C", str(src), "-f", "-", rel], check=True,
                          capture_output=True).stdout


MAKERS = {
    "gnu tar": (lambda src, rel: gnu_tar(src, rel), True),
    "gnu tar ./ prefixes": (lambda src, rel: gnu_tar(src, "./" + rel), True),
    "gnu tar -P leading /": (gnu_tar_absolute, True),
    "gnu tar -P without directory entries": (lambda src, rel: gnu_tar_absolute_files_only(
        src, rel), False),
    "gnu tar without directory entries": (gnu_tar_files_only, False),
    "gnu tar posix format": (lambda src, rel: gnu_tar(src, rel, "--format=posix"), True),
    "python tarfile gnu": (lambda src, rel: python_tar(src, rel, tarfile.GNU_FORMAT), True),
    "python tarfile pax": (lambda src, rel: python_tar(src, rel, tarfile.PAX_FORMAT), True),
    "busybox tar": (busybox_tar, True),
}


def gnu_tar_absolute_files_only(src: Path, rel: str) -> bytes:
    listing = subprocess.run(["find", str(src / rel), "!", "-type", "d"], check=True,
                             capture_output=True, text=True).stdout
    return subprocess.run(["tar", "-czP", "--no-recursion", "--transform", f"s,^{src},,S",
                           "-T", "-", "-f", "-"], input=listing.encode(), check=True,
                          capture_output=True).stdout


@pytest.mark.parametrize("maker", MAKERS)
def test_format_1_backup_made_by_another_tool_restores_as_tar_extracts_it(
        maker: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, has_dirs = MAKERS[maker]
    if maker.startswith("busybox") and not shutil.which("busybox"):
        pytest.skip("busybox is not installed (apt-get install busybox)")
    src = source_tree(tmp_path / "src")
    archives = {member: make(src, rel) for member, rel in V1_ROOTS.items()}
    reference = tmp_path / "reference"  # what GNU tar itself extracts from these archives
    reference.mkdir()
    for blob in archives.values():
        subprocess.run(["tar", "-xz", "-C", str(reference), "-f", "-"], input=blob, check=True,
                       capture_output=True)
    abf = v1_abf(tmp_path / "v1.abf", archives)
    target = make_target(tmp_path / "target")
    shutil.rmtree(target / "var/lib/wiki/data/pages")
    write(target / "etc/wiki/local.php", "<?php $conf['title'] = 'Changed';\n")

    assert main(["backup", "verify", str(abf)]) == 0, capsys.readouterr()
    assert main(["backup", "restore", "--foreign", "--root", str(target), str(abf)]) == 0, capsys.readouterr()
    for rel in V1_ROOTS.values():
        assert state(target, rel, has_dirs) == state(reference, rel, has_dirs)
    data = target / "var/lib/wiki/data"
    assert (data / "pages" / LONG_NAME).read_text() == "long name\n"
    assert (data / "pages/start.txt").stat().st_ino == (data / "pages/start.hardlink").stat().st_ino
    assert (data / "pages/start.txt").stat().st_uid == 33
    if not has_dirs:  # made as tar makes a missing parent
        umask = os.umask(0)
        os.umask(umask)
        st = (data / "media").stat()
        assert (st.st_mode & 0o7777, st.st_uid) == (0o777 & ~umask, os.geteuid())
    assert (target / "var/lib/wiki/users.txt").read_text() == "admin:hash\n"  # not in v1: kept


def test_format_1_directory_entry_after_its_content_sets_its_attributes(tmp_path: Path) -> None:
    """GNU tar -c a/file a: the directory comes after what it holds; tar gives it its
    attributes at the end, and so does the restore."""
    src = source_tree(tmp_path / "src")
    os.chmod(src / "etc/wiki", 0o750)
    config = subprocess.run(["tar", "-cz", "-C", str(src), "--no-recursion", "-f", "-",
                             "etc/wiki/local.php", "etc/wiki"], check=True,
                            capture_output=True).stdout
    archives = {"sysconfig.tar.gz": config, "appdata.tar.gz": gnu_tar(src, "var/lib/wiki/data")}
    target = make_target(tmp_path / "target")
    assert main(["backup", "restore", "--foreign", "--root", str(target),
                 str(v1_abf(tmp_path / "v1.abf", archives))]) == 0
    st = (target / "etc/wiki").stat()
    assert st.st_mode & 0o7777 == 0o750
    assert st.st_mtime_ns == (src / "etc/wiki").stat().st_mtime_ns // 10**9 * 10**9  # seconds
    assert sorted(os.listdir(target / "etc/wiki")) == ["local.php"]


HOSTILE_V1 = {
    "dot-dot": (["etc/wiki/../../../root/.profile"], "contains '..'"),
    "absolute outside": (["/etc/cron.d/evil"], "is outside the directories listed in info.yaml"),
    "relative outside": (["etc/cron.d/evil"], "is outside the directories listed in info.yaml"),
    "through a symlink": (["etc/wiki/link", "etc/wiki/link/evil"],
                          "is not below a directory member that comes before it"),
    "hard link outside": (["etc/wiki/h"], "is a hard link to '/etc/shadow'"),
    "device": (["etc/wiki/mem"], "is a character device"),
}


@pytest.mark.parametrize("case", HOSTILE_V1)
def test_hostile_format_1_members_stay_refused(case: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    names, message = HOSTILE_V1[case]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            if name.endswith("/link"):
                info.type, info.linkname = tarfile.SYMTYPE, "/var/lib/wiki/data"
            elif name.endswith("/h"):
                info.type, info.linkname = tarfile.LNKTYPE, "/etc/shadow"
            elif name.endswith("/mem"):
                info.type = tarfile.CHRTYPE
            tar.addfile(info, io.BytesIO(b"") if info.isreg() else None)
    abf = v1_abf(tmp_path / "v1.abf", {"sysconfig.tar.gz": raw.getvalue(),
                                       "appdata.tar.gz": gnu_tar(source_tree(tmp_path / "src"),
                                                                 "var/lib/wiki/data")})
    target = make_target(tmp_path / "target")
    before = state(target, ".", True)
    assert main(["backup", "verify", str(abf)]) == 1
    assert message in capsys.readouterr().out
    assert main(["backup", "restore", "--foreign", "--root", str(target), str(abf)]) == 3
    assert message in capsys.readouterr().err
    assert state(target, ".", True) == before
