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


# -- the postinst in the web user's state directory -----------------------------------------------
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
    """Run a command as the web user (nobody), as a forked child that drops root for real."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(WEB_GID)
            os.setuid(WEB_UID)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, argv


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


def test_provision_makes_the_session_key_once_as_the_web_user(place: Path) -> None:
    state = place / "state"
    assert provision("state", str(state), WEB_USER).returncode == 0
    victim = root_only(place / "victim")
    as_web_user("ln", "-s", str(victim), str(state / "session-key"))  # planted before configure
    assert provision("session-key", str(state), WEB_USER).returncode == 0
    assert_untouched(victim, 0o600)
    assert victim.read_text() == "root's secret\n"
    key = state / "session-key"
    status = key.lstat()
    assert stat.S_ISREG(status.st_mode) and status.st_uid == WEB_UID and status.st_size == 32
    first = key.read_bytes()
    assert provision("session-key", str(state), WEB_USER).returncode == 0  # an upgrade keeps it
    assert key.read_bytes() == first


def test_the_postinst_leaves_the_state_directory_to_provision() -> None:
    postinst = (REPO / "debian/appliance-control.postinst").read_text()
    assert "python3 -I -m vatools.control.provision state" in postinst
    assert "python3 -I -m vatools.control.provision session-key" in postinst
    assert "python3 -I -m vatools.control.provision password" in postinst
    assert "install -d" not in postinst and "chown" not in postinst


# -- files opened by descriptor -------------------------------------------------------------------
def test_open_regular_refuses_a_fifo_a_symlink_and_a_directory_without_blocking(
        place: Path) -> None:
    from vatools.control.rootfs import open_dir, open_regular
    from vatools.errors import VatoolsError

    os.mkfifo(place / "fifo")  # no writer: a blocking open would wait forever
    (place / "link").symlink_to("/etc/passwd")
    (place / "dir").mkdir()
    (place / "file").write_text("x")
    directory = open_dir(place)
    try:
        for name, problem in (("fifo", "is not a regular file"), ("link", "is a symlink"),
                              ("dir", "is not a regular file")):
            with pytest.raises(VatoolsError) as caught:
                open_regular(directory, name, place)
            assert problem in caught.value.message
        os.close(open_regular(directory, "file", place))
    finally:
        os.close(directory)


def test_open_dir_refuses_a_symlink_on_the_way(place: Path) -> None:
    from vatools.control.rootfs import open_dir, private_dir
    from vatools.errors import VatoolsError

    (place / "real").mkdir()
    (place / "link").symlink_to(place / "real")
    with pytest.raises(VatoolsError, match="is a symlink: refused"):
        open_dir(place / "link" / "sub")
    (place / "open").mkdir(mode=0o777)
    (place / "open").chmod(0o777)
    with pytest.raises(VatoolsError, match="is not root's alone"):
        private_dir(place / "open" / "staging")  # others could swap its names
    os.close(private_dir(place / "staging"))
    assert stat.S_IMODE((place / "staging").lstat().st_mode) == 0o700


# -- apt outside the helper's cgroup; the helper not restarted under its own feet -----------------
def test_apt_runs_in_a_scope_of_its_own_under_systemd_and_directly_without() -> None:
    from vatools.control.ops import apt_argv

    scoped = apt_argv(["upgrade", "--yes"], True, "appliance-control-apt-7-1")
    assert scoped[:2] == ["systemd-run", "--scope"] and "--collect" in scoped
    assert "--unit=appliance-control-apt-7-1" in scoped
    assert scoped[scoped.index("--") + 1:] == ["apt-get", "upgrade", "--yes"]
    assert apt_argv(["upgrade", "--yes"], False, "x") == ["apt-get", "upgrade", "--yes"]


def test_the_helper_exits_once_idle_after_its_own_package_was_upgraded(place: Path) -> None:
    import socket
    import threading

    from vatools.control.helper import serve
    from vatools.control.ops import Operations

    operations = Operations(place / "backups", WEB_USER, place / "staging")
    operations.restart_wanted = True  # as op_apt_upgrade sets it
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(place / "helper.sock"))
        sock.listen(1)
        server = threading.Thread(target=serve, args=(sock, WEB_UID, operations), daemon=True)
        server.start()
        server.join(60)
        assert not server.is_alive(), "the helper still serves after upgrading itself"


def test_an_upgrade_does_not_restart_the_helpers_units() -> None:
    rules = (REPO / "debian/rules").read_text()
    assert ("dh_installsystemd -pappliance-control --name=appliance-control-helper "
            "--no-stop-on-upgrade") in rules
    # Without a unit list, the web service's call would take the helper's units too (seen in
    # the built postinst: deb-systemd-invoke restart of all three on upgrade).
    assert "\tdh_installsystemd -pappliance-control appliance-control.service\n" in rules


# -- the units' sandboxing ------------------------------------------------------------------------
UNITS = {"appliance-control.service": "debian/appliance-control.service",
         "appliance-control-helper.service":
             "debian/appliance-control.appliance-control-helper.service"}


def exposure(name: str, place: Path, text: str | None = None) -> float:
    """`systemd-analyze security --offline=yes`'s overall exposure of the unit (0 best, 10);
    `text` instead of the unit's file."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = place / name
    unit.write_text(text if text is not None else (REPO / UNITS[name]).read_text())
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)],
                            capture_output=True, text=True)
    line = next(line for line in result.stdout.splitlines()
                if "Overall exposure level" in line)
    print(line if text is None else f"(without its sandboxing) {line}")
    return float(line.split(": ", 1)[1].split()[0])


def bare(name: str) -> str:
    """The unit with its command and user only, as systemd-analyze scores it without any
    sandboxing (on bookworm's systemd 252: 9.2 for the web service, 9.6 for the helper;
    before issue #17 the units scored 8.7 and 9.6, now 1.9 and 9.5)."""
    kept = [line for line in (REPO / UNITS[name]).read_text().splitlines()
            if line.startswith(("[", "ExecStart=", "User=", "Group="))]
    return "\n".join(kept) + "\n"


def test_the_units_are_sandboxed_as_far_as_their_jobs_allow(place: Path) -> None:
    web, helper = "appliance-control.service", "appliance-control-helper.service"
    assert exposure(web, place) <= 2.5 < exposure(web, place, bare(web))
    assert exposure(helper, place) < exposure(helper, place, bare(helper))


def unit_settings(name: str) -> dict[str, str]:
    settings = {}
    for line in (REPO / UNITS[name]).read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            settings[key] = value
    return settings


def test_both_units_start_in_slash_and_the_web_python_is_isolated() -> None:
    web = unit_settings("appliance-control.service")
    helper = unit_settings("appliance-control-helper.service")
    assert web["WorkingDirectory"] == helper["WorkingDirectory"] == "/"
    assert web["ExecStart"].startswith("/usr/bin/python3 -I -m gunicorn ")
    assert web["User"] == "appliance-control" and web["NoNewPrivileges"] == "yes"
    # The helper runs apt and dpkg: nothing that would break them.
    for forbidden in ("ProtectSystem", "PrivateDevices", "NoNewPrivileges", "SystemCallFilter",
                      "RestrictAddressFamilies", "RestrictSUIDSGID", "PrivateTmp", "ProtectHome"):
        assert forbidden not in helper, forbidden
    assert helper["StateDirectory"] == "appliance-control-helper"


def test_an_upgrade_of_the_helpers_code_is_noticed(monkeypatch: pytest.MonkeyPatch,
                                                   place: Path) -> None:
    """dpkg renames a new file over the old one: the helper sees the inode change."""
    from vatools.control import helper

    before = helper.code_identity()
    copy = place / "ops.py"
    shutil.copy(helper.__file__.replace("helper.py", "ops.py"), copy)
    from vatools.control import ops
    monkeypatch.setattr(ops, "__file__", str(copy))
    changed = helper.code_identity()
    assert changed != before and changed[0] == before[0]
