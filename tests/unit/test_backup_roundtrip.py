"""Create a backup of a synthetic target, change the target, restore, compare."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from test_backup_helpers import APPLIANCE, build_abf, entry, make_target, snapshot, write

from vatools.backup import spill
from vatools.backup.archive import BackupFile
from vatools.backup.create import create_backup
from vatools.backup.restore import plan_restore, restore
from vatools.cli.main import main
from vatools.run import Target

ROOTS = ("etc/wiki", "var/lib/wiki/data", "var/lib/wiki/users.txt")


def content(root: Path) -> dict[str, object]:
    """The declared paths' full state (modes, owners, mtimes, links, data)."""
    state: dict[str, object] = {}
    for rel in ROOTS:
        path = root / rel
        if path.is_dir():
            state[rel] = snapshot(path)
            st = path.stat()
            state[rel + "/."] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns)
        elif path.exists():
            st = path.stat()
            state[rel] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, path.read_bytes())
    return state


def mess_up(root: Path) -> None:
    (root / "var/lib/wiki/data/pages/start.txt").write_text("vandalised")
    shutil.rmtree(root / "var/lib/wiki/data/pages/ns")
    write(root / "etc/wiki/local.php", "<?php $conf['title'] = 'Changed';\n")
    write(root / "etc/wiki/extra.php", "new file\n")
    os.unlink(root / "var/lib/wiki/users.txt")


@pytest.fixture
def backed_up(tmp_path: Path) -> tuple[Path, Path, dict[str, object]]:
    target = make_target(tmp_path / "target")
    created = create_backup(Target(target), tmp_path / "wiki.abf")
    return target, created.path, content(target)


@pytest.mark.parametrize("in_memory", [spill.IN_MEMORY, 2], ids=["in memory", "spilled"])
def test_roundtrip_restores_content_modes_owners_times_links(backed_up, capsys, in_memory,
                                                             monkeypatch) -> None:
    # "spilled": the names and directories go to SQLite after the second (see spill.py)
    monkeypatch.setattr(spill, "IN_MEMORY", in_memory)
    target, abf, before = backed_up
    mess_up(target)
    assert content(target) != before
    assert main(["backup", "restore", "--root", str(target), str(abf)]) == 0
    assert content(target) == before
    pages = target / "var/lib/wiki/data/pages"
    assert (pages / "start.txt").stat().st_ino == (pages / "start.hardlink").stat().st_ino
    assert os.readlink(pages / "ns/to-start") == "../start.txt"
    assert (pages / "start.txt").stat().st_uid == 33
    assert oct((target / "var/lib/wiki/data/empty").stat().st_mode) == "0o42770"
    leftovers = [p for p in (target / "var/lib/wiki").iterdir() if ".abf-" in p.name]
    assert leftovers == [] and not (target / "var/lib/vatools/backup/restore.journal").exists()
    out = capsys.readouterr().out
    assert "replace: /etc/wiki" in out and "create: /var/lib/wiki/users.txt" in out


def test_restore_onto_a_fresh_machine(backed_up, tmp_path: Path) -> None:
    _, abf, before = backed_up
    fresh = tmp_path / "fresh"
    make_target(fresh)
    shutil.rmtree(fresh / "var/lib/wiki/data")
    shutil.rmtree(fresh / "etc/wiki")
    (fresh / "etc/wiki").mkdir()
    # on the new machine www-data has another number: owners follow the name
    write(fresh / "etc/passwd", "root:x:0:0::/root:/bin/sh\nwww-data:x:1033:1033::/:/bin/sh\n")
    write(fresh / "etc/group", "root:x:0:\nwww-data:x:1033:\n")
    assert main(["backup", "restore", "--foreign", "--root", str(fresh), str(abf)]) == 0
    assert (fresh / "var/lib/wiki/data/pages/start.txt").stat().st_uid == 1033
    after = content(fresh)
    assert after.keys() == before.keys()
    assert snapshot(fresh / "etc/wiki") == before["etc/wiki"]


def test_dry_run_changes_nothing(backed_up, capsys) -> None:
    target, abf, _ = backed_up
    mess_up(target)
    whole = snapshot(target)
    assert main(["backup", "restore", "--dry-run", "--root", str(target), str(abf)]) == 0
    assert snapshot(target) == whole
    assert "dry run: nothing changed" in capsys.readouterr().out


def test_root_absent_in_backup_is_removed_on_restore(tmp_path: Path) -> None:
    target = make_target(tmp_path / "t")
    os.unlink(target / "var/lib/wiki/users.txt")
    abf = create_backup(Target(target), tmp_path / "a.abf").path
    write(target / "var/lib/wiki/users.txt", "created later\n")
    plan = plan_restore(abf, Target(target))
    assert "  remove (absent in the backup): /var/lib/wiki/users.txt" in plan.describe()
    restore(plan, Target(target))
    assert not (target / "var/lib/wiki/users.txt").exists()


def test_link_leaving_the_roots_is_restored_only_where_the_target_has_it(
        tmp_path: Path, capsys) -> None:
    """Like dokuwiki's /var/lib/dokuwiki/inc -> /usr/share/dokuwiki/inc: a package's own link."""
    target = make_target(tmp_path / "t")
    os.symlink("/usr/share/wiki/inc", target / "var/lib/wiki/data/inc")
    abf = tmp_path / "x.abf"
    assert main(["backup", "create", "--root", str(target), "-o", str(abf)]) == 0
    assert main(["backup", "verify", str(abf)]) == 0
    assert "is a symlink to /usr/share/wiki/inc, outside" in capsys.readouterr().out
    assert main(["backup", "restore", "--root", str(target), str(abf)]) == 0  # same link there
    elsewhere = make_target(tmp_path / "other")
    os.symlink("/etc", elsewhere / "var/lib/wiki/data/inc")  # a different link: refused
    whole = snapshot(elsewhere)
    assert main(["backup", "restore", "--foreign", "--root", str(elsewhere), str(abf)]) == 3
    assert "(and not a link the target has)" in capsys.readouterr().err
    assert snapshot(elsewhere) == whole


def test_create_refuses_setuid_and_fifo(tmp_path: Path, capsys) -> None:
    target = make_target(tmp_path / "t")
    os.chmod(target / "etc/wiki/local.php", 0o4755)
    assert main(["backup", "create", "--root", str(target), "-o", str(tmp_path / "x.abf")]) == 3
    assert "has the setuid bit" in capsys.readouterr().err
    os.chmod(target / "etc/wiki/local.php", 0o644)
    os.mkfifo(target / "var/lib/wiki/data/fifo")
    assert main(["backup", "create", "--root", str(target), "-o", str(tmp_path / "x.abf")]) == 3
    assert "is not a directory, regular file or symlink" in capsys.readouterr().err


def test_inspect_and_verify(backed_up, capsys) -> None:
    _, abf, _ = backed_up
    assert main(["backup", "verify", str(abf)]) == 0
    assert "OK (format 2" in capsys.readouterr().out
    assert main(["backup", "inspect", "--json", str(abf)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["appliance"] == APPLIANCE and info["appliance_version"] == "1.0"
    assert info["packages"] == {APPLIANCE: "1.0", "wikiengine": "2.5-1"}
    assert info["manifest"]["Vatools-Backup-Config"] == "/etc/wiki"
    assert info["sizes"]["appdata.tar.gz"]["entries"] == 9
    with BackupFile.open(abf) as backup:
        assert backup.zip.namelist() == ["version", "sysconfig.tar.gz", "appdata.tar.gz",
                                         "info.yaml", "sha256sums"]


def test_older_backup_is_accepted_and_newer_refused(tmp_path: Path, capsys) -> None:
    target = make_target(tmp_path / "t", version="2.0")
    old = build_abf(tmp_path / "old.abf", info={"appliance_version": "1.0"})
    assert main(["backup", "restore", "--foreign", "--root", str(target), str(old)]) == 0
    assert (target / "var/lib/wiki/data/pages/start.txt").read_text() == "restored page\n"
    newer = build_abf(tmp_path / "new.abf", info={"appliance_version": "2.0+1"})
    whole = snapshot(target)
    assert main(["backup", "restore", "--foreign", "--root", str(target), str(newer)]) == 3
    assert "newer than the installed 2.0" in capsys.readouterr().err
    assert snapshot(target) == whole


def test_format_1_backup_is_read_with_its_absolute_paths_mapped(tmp_path: Path) -> None:
    target = make_target(tmp_path / "t")
    import tarfile
    config = [entry("/etc", tarfile.DIRTYPE), entry("/etc/wiki", tarfile.DIRTYPE),
              entry("/etc/wiki/local.php", data=b"v1 config\n")]
    data = [entry("/var/lib/wiki/data", tarfile.DIRTYPE),
            entry("/var/lib/wiki/data/start.txt", data=b"v1 page\n")]
    v1 = {"version": "0.1", "appliance": APPLIANCE, "timestamp": "2009-10-31 20:12:33",
          "sysconf": {"dirs": ["/etc/wiki"]}, "appdata": {"dirs": ["/var/lib/wiki/data"]}}

    def v1_info(members: dict[str, bytes]) -> None:
        import yaml
        members["info.yaml"] = yaml.safe_dump(v1).encode()

    abf = build_abf(tmp_path / "v1.abf", config, data, version=b"0.1\n", tamper=v1_info,
                    sums_name="sha1sums", algorithm="sha1")
    assert main(["backup", "verify", str(abf)]) == 0
    assert main(["backup", "restore", "--foreign", "--root", str(target), str(abf)]) == 0
    assert (target / "etc/wiki/local.php").read_text() == "v1 config\n"
    assert (target / "var/lib/wiki/data/start.txt").read_text() == "v1 page\n"
    assert (target / "var/lib/wiki/users.txt").exists()  # not in the v1 backup: kept


def test_a_symlinked_parent_is_refused_both_ways(backed_up, tmp_path: Path, capsys) -> None:
    """In a tree, /var/lib/wiki -> /somewhere would be followed on the host: refused."""
    target, abf, _ = backed_up
    elsewhere = tmp_path / "elsewhere"
    shutil.move(target / "var/lib/wiki", elsewhere)
    os.symlink(elsewhere, target / "var/lib/wiki")
    whole = snapshot(elsewhere)
    assert main(["backup", "restore", "--root", str(target), str(abf)]) == 3
    assert "/var/lib/wiki is a symlink in" in capsys.readouterr().err
    assert snapshot(elsewhere) == whole
    assert main(["backup", "create", "--root", str(target), "-o", str(tmp_path / "b.abf")]) == 3
    assert "/var/lib/wiki is a symlink in" in capsys.readouterr().err
