"""Hardening of appliance-control's root side (issue #17): what the helper parses, the files it
opens, what the postinst does as root in the web user's directory, how apt is started, and the
systemd units' sandboxing. Attacks are played for real: planted symlinks and FIFOs, a YAML
alias bomb, a web user (nobody) in a forked child.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from vatools.backup.info import FORMAT_VERSION, BadBackup, parse_info

REPO = Path(__file__).resolve().parents[2]

INFO_V2 = """\
version: '2'
appliance: wiki
appliance_version: '1.0'
hostname: host
timestamp: '2026-01-01 00:00:00'
packages: {}
manifest: {}
services: []
sysconf:
  roots:
    etc-wiki: /etc/wiki
appdata:
  roots:
    var-lib-wiki: /var/lib/wiki
sizes:
  sysconfig.tar.gz: {compressed: 1, tar_bytes: 1, content_bytes: 1, entries: 1}
  appdata.tar.gz: {compressed: 1, tar_bytes: 1, content_bytes: 1, entries: 1}
"""


# -- info.yaml: no aliases, no anchors, no tags ---------------------------------------------------
def test_a_plain_info_yaml_still_parses() -> None:
    info = parse_info(INFO_V2.encode(), FORMAT_VERSION)
    assert (info.appliance, info.timestamp) == ("wiki", "2026-01-01 00:00:00")


def _bomb(levels: int) -> str:
    """The billion laughs: each level 9 aliases of the one before (9**levels strings)."""
    lines = ['a0: &a0 "lol"']
    lines += [f"a{i}: &a{i} [{', '.join(['*a%d' % (i - 1)] * 9)}]" for i in range(1, levels + 1)]
    return INFO_V2 + "\n".join(lines) + "\n"


@pytest.mark.parametrize("text, refused", [
    (_bomb(9), "anchors are not allowed"),  # 9**9 strings: memory exhausted if expanded
    (INFO_V2 + "other: *name\n", "aliases are not allowed"),
    (INFO_V2.replace("appliance: wiki", "appliance: &name wiki") + "other: *name\n", "anchor"),
    (INFO_V2.replace("hostname: host", "hostname: !!binary aG9zdA=="), "tag"),
    (INFO_V2.replace("services: []", "services: !!set {a, b}"), "tag"),
    (INFO_V2 + "deep: " + "[" * 200 + "]" * 200 + "\n", "nested"),
], ids=["alias-bomb", "alias", "anchor", "binary-tag", "set-tag", "deep-nesting"])
def test_info_yaml_refuses_aliases_anchors_tags_and_deep_nesting(text: str, refused: str) -> None:
    with pytest.raises(BadBackup) as caught:
        parse_info(text.encode(), FORMAT_VERSION)
    assert refused in caught.value.message


def test_an_unquoted_timestamp_stays_the_string_written() -> None:
    info = parse_info(INFO_V2.replace("'2026-01-01 00:00:00'", "2026-01-01 00:00:00").encode(),
                      FORMAT_VERSION)
    assert info.timestamp == "2026-01-01 00:00:00"


# -- the postinst in the web user's state directory ---------------------------------------------
WEB_USER, WEB_UID, WEB_GID = "nobody", 65534, 65534


@pytest.fixture
def place() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("these tests need root (they switch to other uids)", pytrace=False)
    directory = Path(tempfile.mkdtemp(prefix="vatools-provision-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def provision(*args: str, password: str = "") -> subprocess.CompletedProcess[str]:
    """The postinst's call (`python3 -I -m vatools.control.provision ...`), on this tree."""
    return subprocess.run([sys.executable, "-m", "vatools.control.provision", *args],
                          input=password, capture_output=True, text=True, cwd="/",
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)})


def as_web_user(*argv: str) -> None:
    subprocess.run(["setpriv", f"--reuid={WEB_UID}", f"--regid={WEB_GID}", "--clear-groups",
                    *argv], check=True)


def root_only(path: Path, directory: bool = False) -> Path:
    if directory:
        path.mkdir(mode=0o700)
    else:
        path.write_text("root's secret\n")
        path.chmod(0o600)
    return path


def assert_untouched(path: Path, mode: int) -> None:
    status = path.lstat()
    assert (status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)) == (0, 0, mode)


def test_provision_makes_the_state_directories_of_the_web_user(place: Path) -> None:
    state = place / "state"
    for _ in range(2):  # a reinstall finds them there
        assert provision("state", str(state), WEB_USER).returncode == 0
        for made in (state, state / "backups"):
            status = made.lstat()
            assert stat.S_ISDIR(status.st_mode)
            assert (status.st_uid, stat.S_IMODE(status.st_mode)) == (WEB_UID, 0o750)


def test_provision_follows_no_symlink_planted_for_a_state_directory(place: Path) -> None:
    state = place / "state"
    assert provision("state", str(state), WEB_USER).returncode == 0
    victim = root_only(place / "victim", directory=True)
    as_web_user("sh", "-c", f"rmdir {state}/backups && ln -s {victim} {state}/backups")
    result = provision("state", str(state), WEB_USER)
    assert result.returncode == 1 and "is a symlink: refused" in result.stderr, result
    assert_untouched(victim, 0o700)


def test_provision_writes_the_password_as_the_web_user(place: Path) -> None:
    state = place / "state"
    assert provision("state", str(state), WEB_USER).returncode == 0
    result = provision("password", str(state), WEB_USER, password="a-long-password\n")
    assert result.returncode == 0, result.stderr
    status = (state / "admin-password").lstat()
    assert (status.st_uid, stat.S_IMODE(status.st_mode)) == (WEB_UID, 0o600)
    from vatools.control import auth
    assert auth.verify_password("a-long-password", auth.read_hash(state / "admin-password") or "")


def test_provision_writes_no_password_through_a_planted_symlink(place: Path) -> None:
    state = place / "state"
    assert provision("state", str(state), WEB_USER).returncode == 0
    victim = root_only(place / "victim")
    as_web_user("ln", "-s", str(victim), str(state / "admin-password.new"))
    provision("password", str(state), WEB_USER, password="a-long-password")
    assert_untouched(victim, 0o600)
    assert victim.read_text() == "root's secret\n"


def test_the_postinst_leaves_the_state_directory_to_provision() -> None:
    postinst = (REPO / "debian/appliance-control.postinst").read_text()
    assert "python3 -I -m vatools.control.provision state" in postinst
    assert "python3 -I -m vatools.control.provision password" in postinst
    assert "install -d" not in postinst and "chown" not in postinst
