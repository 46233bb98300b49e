"""Hostile or damaged backups are refused before anything is written.

Every case asserts the message, exit code 3 (refused, nothing changed) for restore, exit
code 1 for verify, and that the whole target tree is byte-for-byte and stat-for-stat the same.
"""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_backup_helpers import build_abf, entry, good_data, make_target, snapshot

from vatools.backup.restore import plan_restore, restore
from vatools.cli.main import main
from vatools.errors import VatoolsError
from vatools.run import Target

DIR, REG, SYM, LNK = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE


def with_data(*extra: Any) -> dict[str, Any]:
    return {"data": good_data() + list(extra)}


def flip_byte(where: str, offset: int) -> Callable[[dict[str, bytes]], None]:
    def tamper(members: dict[str, bytes]) -> None:
        blob = bytearray(members[where])
        blob[offset % len(blob)] ^= 0x40
        members[where] = bytes(blob)
    return tamper


def wrong_sums(members: dict[str, bytes]) -> None:
    members["sha256sums"] = b"".join(
        f"{'0' * 64}  {name}\n".encode() for name in members if name != "sha256sums")


def bomb_sizes(members: dict[str, bytes]) -> None:
    import yaml
    info = yaml.safe_load(members["info.yaml"])
    info["sizes"]["appdata.tar.gz"]["tar_bytes"] = 10 << 30
    members["info.yaml"] = yaml.safe_dump(info).encode()


CASES: dict[str, tuple[dict[str, Any], str]] = {
    "absolute path": (with_data(entry("/etc/cron.d/evil", data=b"* * * * * root sh\n")),
                      "'/etc/cron.d/evil' is an absolute path"),
    "dot-dot": (with_data(entry("var-lib-wiki-data/../../../../etc/passwd", data=b"x")),
                "contains '..'"),
    "symlink outside": (with_data(entry("var-lib-wiki-data/pages/pw", SYM, linkname="/etc/shadow")),
                        "is a symlink to '/etc/shadow', outside the backup's directories"),
    "relative symlink outside": (
        with_data(entry("var-lib-wiki-data/pages/up", SYM, linkname="../../../../etc")),
        "outside the backup's directories"),
    "hard link outside": (with_data(entry("var-lib-wiki-data/pages/h", LNK, linkname="/etc/shadow")),
                          "is a hard link to '/etc/shadow'"),
    "character device": (with_data(entry("var-lib-wiki-data/pages/mem", tarfile.CHRTYPE,
                                         devmajor=1, devminor=1)), "is a character device"),
    "block device": (with_data(entry("var-lib-wiki-data/sda", tarfile.BLKTYPE)),
                     "is a block device"),
    "fifo": (with_data(entry("var-lib-wiki-data/f", tarfile.FIFOTYPE)), "is a FIFO"),
    "setuid": (with_data(entry("var-lib-wiki-data/pages/sh", data=b"#!", mode=0o4755)),
               "has the setuid bit"),
    "setgid file": (with_data(entry("var-lib-wiki-data/pages/sg", data=b"#!", mode=0o2755)),
                    "has the setgid bit"),
    "duplicate tar member": (with_data(entry("var-lib-wiki-data/pages/start.txt", data=b"2nd")),
                             "'var-lib-wiki-data/pages/start.txt' appears twice"),
    "write through a symlink": (
        with_data(entry("var-lib-wiki-data/l", SYM, linkname="pages"),
                  entry("var-lib-wiki-data/l/x", data=b"x")),
        "is not below a directory member that comes before it"),
    "file before its directory": (
        {"data": [entry("var-lib-wiki-data/a/b", data=b"x")] + good_data()},
        "is not below a directory member"),
    "member outside the roots": (with_data(entry("etc-wiki", DIR)),
                                 "'etc-wiki' is not under any root of this archive"),
    "root is a symlink": ({"data": [entry("var-lib-wiki-data", SYM, linkname="/var/lib/wiki/data")]},
                          "is a root but neither a directory nor a regular file"),
    "another appliance": ({"info": {"appliance": "mail-appliance"}},
                          "is a backup of mail-appliance, but wiki-appliance is installed"),
    "newer appliance version": ({"info": {"appliance_version": "1.1"}},
                                "newer than the installed 1.0"),
    "root not declared": ({"info": {"sysconf": {"roots": {"etc-cron.d": "/etc/cron.d"}}},
                           "config": [entry("etc-cron.d", DIR)]},
                          "restores /etc/cron.d, which wiki-appliance 1.0 does not declare"),
    "root path not normal": ({"info": {"sysconf": {"roots": {"etc": "/etc"}}}},
                             "is a top-level directory"),
    "bit flip in data": ({"tamper": flip_byte("appdata.tar.gz", 40)}, ""),
    "bit flip in info.yaml": ({"tamper": flip_byte("info.yaml", 10)}, ""),
    "checksum mismatch": ({"tamper": wrong_sums}, "checksum mismatch for version"),
    "absurd declared ratio": ({"tamper": bomb_sizes}, "an absurd ratio"),
    "unsupported format": ({"version": b"3\n"}, "format version '3' is not supported"),
}


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return make_target(tmp_path / "target")


def refused(target: Path, abf: Path, capsys: pytest.CaptureFixture[str], message: str) -> None:
    whole = snapshot(target)
    assert main(["backup", "restore", "--foreign", "--root", str(target), str(abf)]) == 3
    err = capsys.readouterr().err
    assert message in err
    assert "error:" in err and "hint:" in err or "error:" in err
    assert snapshot(target) == whole  # not one byte, mode, owner or time changed
    assert not (target / "var/lib/vatools").exists()  # not even the lock or journal


@pytest.mark.parametrize("case", CASES)
def test_hostile_backup_is_refused(case: str, target: Path, tmp_path: Path, capsys) -> None:
    kwargs, message = CASES[case]
    abf = build_abf(tmp_path / "hostile.abf", **kwargs)
    refused(target, abf, capsys, message)


def test_valid_hand_made_backup_is_accepted(target: Path, tmp_path: Path) -> None:
    """The control case: the builder makes good backups unless told otherwise."""
    assert main(["backup", "restore", "--foreign", "--root", str(target),
                 str(build_abf(tmp_path / "ok.abf"))]) == 0
    assert (target / "etc/wiki/local.php").read_text() == "<?php $conf['title'] = 'Restored';\n"


def test_truncated_file(target: Path, tmp_path: Path, capsys) -> None:
    abf = build_abf(tmp_path / "ok.abf")
    cut = tmp_path / "cut.abf"
    cut.write_bytes(abf.read_bytes()[: abf.stat().st_size // 2])
    refused(target, cut, capsys, "is not a readable zip file")


def test_verify_reports_problems_with_exit_1(tmp_path: Path, capsys) -> None:
    abf = build_abf(tmp_path / "bad.abf", **with_data(entry("/etc/x", data=b"x")))
    assert main(["backup", "verify", str(abf)]) == 1
    assert "BAD:" in capsys.readouterr().out


def test_duplicate_zip_member(target: Path, tmp_path: Path, capsys) -> None:
    abf = build_abf(tmp_path / "dup.abf")
    with pytest.warns(UserWarning), zipfile.ZipFile(abf, "a") as zf:
        zf.writestr("info.yaml", b"appliance: evil\n")
    refused(target, abf, capsys, "member 'info.yaml' appears more than once")


def test_unexpected_zip_member(target: Path, tmp_path: Path, capsys) -> None:
    abf = build_abf(tmp_path / "extra.abf")
    with zipfile.ZipFile(abf, "a") as zf:
        zf.writestr("../../etc/passwd", b"x")
    refused(target, abf, capsys, "unexpected member '../../etc/passwd'")


def test_zip_bomb_member(target: Path, tmp_path: Path, capsys) -> None:
    """A deflated member that expands 1000-fold is refused from the zip directory alone."""
    abf = build_abf(tmp_path / "zb.abf")
    bomb = tmp_path / "zb2.abf"
    with zipfile.ZipFile(abf) as src, zipfile.ZipFile(bomb, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "info.yaml":
                data += b"#" + b" " * (20 << 20)
            dst.writestr(name, data, zipfile.ZIP_DEFLATED)
    refused(target, bomb, capsys, "member 'info.yaml' expands")


def test_tar_bomb_member_size(target: Path, tmp_path: Path, capsys) -> None:
    """A tar header claiming more bytes than info.yaml declares stops before reading them."""
    big = entry("var-lib-wiki-data/pages/big", data=b"")
    big[0].size = 1 << 40

    def swap_in_bomb(members: dict[str, bytes]) -> None:
        stream = io.BytesIO()
        tar = tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT)
        for info, data in good_data():
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
        header = big[0].tobuf(tarfile.PAX_FORMAT)  # a header only: the data never follows
        bomb = stream.getvalue() + header + b"\0" * 1024
        members["appdata.tar.gz"] = gzip.compress(bomb)
        import yaml
        info = yaml.safe_load(members["info.yaml"])  # consistent sizes: only the header lies
        info["sizes"]["appdata.tar.gz"]["compressed"] = len(members["appdata.tar.gz"])
        info["sizes"]["appdata.tar.gz"]["tar_bytes"] = len(bomb)
        members["info.yaml"] = yaml.safe_dump(info).encode()
    abf = build_abf(tmp_path / "tb.abf", tamper=swap_in_bomb)
    refused(target, abf, capsys, "more than the archive declares")


# --- random corruption: refused cleanly, or (if harmless) restored exactly ----------------

REFERENCE: dict[str, dict[str, tuple]] = {}


def _reference(directory: Path) -> dict[str, dict[str, tuple]]:
    """What a restore of the undamaged backup gives (computed once)."""
    if not REFERENCE:
        target = make_target(directory / "reference")
        abf = build_abf(directory / "good.abf")
        restore(plan_restore(abf, Target(target), trust_foreign=True), Target(target))
        for rel in ("etc/wiki", "var/lib/wiki/data"):
            REFERENCE[rel] = snapshot(target / rel)
    return REFERENCE


corruption = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 64)),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(corruption, min_size=1, max_size=4))
def test_random_corruption_is_refused_or_harmless(changes, tmp_path_factory) -> None:
    work = tmp_path_factory.mktemp("corrupt")
    reference = _reference(tmp_path_factory.getbasetemp())
    blob = bytearray(build_abf(work / "good.abf").read_bytes())
    for kind, offset, value in changes:
        offset %= len(blob) or 1
        if kind == "flip" and blob:
            blob[offset] ^= value
        elif kind == "truncate":
            del blob[offset:]
        elif kind == "insert":
            blob[offset:offset] = bytes([value])
        else:
            del blob[offset:offset + value]
    abf = work / "corrupt.abf"
    abf.write_bytes(bytes(blob))
    target = make_target(work / "t")
    before = snapshot(target)
    try:
        plan = plan_restore(abf, Target(target), trust_foreign=True)
    except VatoolsError as e:  # refused: nothing may have changed
        assert e.exit_code == 3
        assert snapshot(target) == before
    else:  # the damage missed everything that matters (e.g. a zip header's date)
        restore(plan, Target(target))
        for rel in ("etc/wiki", "var/lib/wiki/data"):
            assert snapshot(target / rel) == reference[rel]
    shutil.rmtree(work)


def test_odd_local_header_flags(target: Path, tmp_path: Path, capsys) -> None:
    """Found by the random corruption test: zipfile raises NotImplementedError for flag bit 5."""
    abf = build_abf(tmp_path / "flags.abf")
    blob = bytearray(abf.read_bytes())
    entry_at = blob.index(b"PK\x01\x02")
    while blob[entry_at + 46:entry_at + 46 + 14] != b"appdata.tar.gz":  # its central entry
        entry_at = blob.index(b"PK\x01\x02", entry_at + 4)
    blob[entry_at + 8] |= 0x20  # general purpose flags, bit 5
    abf.write_bytes(bytes(blob))
    refused(target, abf, capsys, "appdata.tar.gz is damaged (compressed patched data")
