"""vainstall and valist on a fresh server: a chroot with vatools installed from our signed repo.

Every refusal is checked twice: the message says what is wrong, and dpkg's status and debconf's
database are byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.support.chroot import Chroot
from tests.support.commands import secrets_of, valist_json, vainstall
from tests.support.net import serve_directory
from tests.support.repo import TEST_SOURCES_INSIDE, Repo, sources_entry

pytestmark = pytest.mark.integration


def test_dokuwiki_on_a_fresh_server_replacing_another_appliance(server_root: Chroot) -> None:
    chroot = server_root
    # A first (small) appliance; its generated password reaches the package's own config file.
    result = vainstall(chroot, "--yes", "probe-appliance")
    assert result.returncode == 0, result.stdout + result.stderr
    probe_conf = chroot.read_text("/etc/probe-questions.conf")
    assert "color=green" in probe_conf and "features=alpha, gamma" in probe_conf
    probe_password = secrets_of(chroot, "probe-appliance")["probe-questions/password"]
    assert f"password={probe_password}" in probe_conf
    # Used by the package, so debconf keeps no copy: the root-only secrets file is the one left.
    assert probe_password not in chroot.read_text("/var/cache/debconf/passwords.dat")

    # One appliance per system: refused without --replace, and nothing changes.
    before = chroot.state_digest()
    result = vainstall(chroot, "--yes", "dokuwiki-appliance")
    assert result.returncode == 3
    assert "probe-appliance is installed, and a system runs one appliance at a time" in result.stderr
    assert "vainstall --replace dokuwiki-appliance" in result.stderr
    assert chroot.state_digest() == before

    result = vainstall(
        chroot, "--yes", "--replace", "--set", "dokuwiki/wiki/title=Team Wiki", "dokuwiki-appliance"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Seed:       repository" in result.stdout  # the published seed, hash-checked

    # The seeded answers, in dokuwiki's own files.
    assert "$conf['title'] = 'Team Wiki';" in chroot.read_text("/etc/dokuwiki/local.php")
    password = secrets_of(chroot, "dokuwiki-appliance")["dokuwiki/wiki/password"]
    assert password in result.stdout  # shown once
    users = chroot.read_text("/var/lib/dokuwiki/acl/users.auth.php")
    admin = [line for line in users.splitlines() if line.startswith("admin:")]
    assert admin, users
    fields = admin[0].split(":")
    assert fields[3] == "webmaster@localhost" and "admin" in fields[4]
    assert fields[1] == hashlib.md5(password.encode()).hexdigest()  # dokuwiki's debconf hash
    acl = chroot.read_text("/var/lib/dokuwiki/acl/acl.auth.php")
    assert re.search(r"^\*\s+@ALL\s+1$", acl, re.M), acl  # "public": anonymous may only read

    listing = valist_json(chroot)
    assert listing["dokuwiki-appliance"]["state"] == "installed"
    assert listing["dokuwiki-appliance"]["seed"].startswith("repository: http://127.0.0.1:")
    assert listing["probe-appliance"]["state"] == "available"


BAD_SEEDS = {
    "malformed line": (
        "probe-questions probe-questions/name string ok\nprobe-questions probe-questions/color\n",
        "/root/bad.seed:2: error: cannot parse 'probe-questions probe-questions/color'",
    ),
    "unknown type": (
        "probe-questions probe-questions/name strng ok\n",
        "/root/bad.seed:1: error: unknown type 'strng' for probe-questions/name",
    ),
    "select value outside the choices": (
        "probe-questions probe-questions/color select purple\n",
        "/root/bad.seed:1: error: probe-questions/color: 'purple' is not one of its choices",
    ),
    "password without its confirm": (
        "probe-questions probe-questions/password password s3cret\n",
        "/root/bad.seed:1: error: probe-questions/password is answered but"
        " probe-questions/confirm is not",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SEEDS))
def test_bad_seed_is_refused_and_nothing_changes(server_root: Chroot, case: str) -> None:
    text, message = BAD_SEEDS[case]
    server_root.write_text("/root/bad.seed", text)
    before = server_root.state_digest()
    result = vainstall(server_root, "--yes", "--seed", "/root/bad.seed", "probe-appliance")
    assert result.returncode == 3, result.stdout + result.stderr
    assert message in result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    assert server_root.state_digest() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-appliance"], "unknown package 'no-such-appliance'"),
        (["probe-questions"], "probe-questions is not an appliance: it does not provide virtual-appliance"),
        (["--set", "probe-questions/color=purple", "probe-appliance"], "'purple' is not one of its choices"),
        (["--set", "nobody/asks=this", "probe-appliance"], "--set nobody/asks: no package being installed asks"),
    ],
    ids=["unknown package", "not an appliance", "--set outside the choices", "--set unknown question"],
)
def test_bad_request_is_refused_and_nothing_changes(server_root: Chroot, args: list[str], message: str) -> None:
    before = server_root.state_digest()
    result = vainstall(server_root, "--yes", *args)
    assert result.returncode == 3, result.stdout + result.stderr
    assert message in result.stderr
    assert server_root.state_digest() == before


def test_dokuwiki_password_without_confirm_is_refused(server_root: Chroot) -> None:
    """The seed that makes dokuwiki's config script loop forever never reaches debconf."""
    before = server_root.state_digest()
    result = vainstall(server_root, "--yes", "--set", "dokuwiki/wiki/password=s3cret", "dokuwiki-appliance")
    # The shipped seed leaves both empty; setting one alone breaks the pair.
    assert result.returncode == 3, result.stdout + result.stderr
    assert "dokuwiki/wiki/confirm differs from dokuwiki/wiki/password" in result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    assert server_root.state_digest() == before


def test_tampered_repository_seed_is_refused(
    server_root: Chroot, repo: Repo, suite: str, tmp_path: Path
) -> None:
    assert repo.test_directory is not None
    tampered = tmp_path / "repo"
    shutil.copytree(repo.test_directory, tampered)
    (seed,) = (tampered / suite).glob("probe-appliance_*.seed")
    seed.write_text(seed.read_text() + "probe-questions probe-questions/name string evil\n")
    with serve_directory(tampered) as url:
        server_root.write_text(TEST_SOURCES_INSIDE, sources_entry(f"{url}/{suite}/"))
        server_root.run(["apt-get", "update"])
        before = server_root.state_digest()
        result = vainstall(server_root, "--yes", "probe-appliance")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "does not match the signed index" in result.stderr
    assert server_root.state_digest() == before


def test_dry_run_shows_the_plan_and_changes_nothing(server_root: Chroot) -> None:
    before = server_root.state_digest()
    result = vainstall(server_root, "--dry-run", "probe-appliance")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "probe-questions probe-questions/password password (generated)" in result.stdout
    assert "Dry run: nothing was changed." in result.stdout
    assert server_root.state_digest() == before
    assert not server_root.resolve("/var/lib/vatools/secrets/probe-appliance").exists()


def test_valist_lists_available_appliances_with_their_seed_source(server_root: Chroot) -> None:
    listing = valist_json(server_root)
    assert listing["dokuwiki-appliance"]["state"] == "available"
    assert listing["dokuwiki-appliance"]["seed"] == "repository (signed hash)"
    assert "probe-questions" not in listing
    assert server_root.run(["valist", "--installed"]).stdout.strip() == "No appliance is installed."


AGREEMENT_SEEDS = {
    "warnings": (
        "someone-else probe-questions/name string probe-one\n"
        "probe-questions probe-questions/color select green\n"
        "probe-questions probe-questions/features multiselect alpha\n"
        "probe-questions probe-questions/password password\n"
        "probe-questions probe-questions/confirm password\n"
        "probe-questions probe-questions/legacy-mode boolean true\n"
    ),
    "errors": (
        "someone-else probe-questions/name string probe-one\n"
        "probe-questions probe-questions/enabled boolean yes\n"
        "probe-questions probe-questions/color select purple\n"
        "probe-questions probe-questions/legacy-mode boolean true\n"
    ),
}
_PROBLEM_LINE = re.compile(r"^  (?:(\S+): )?(error|warning): (.*)$", re.M)


def test_plan_check_and_seed_check_agree_on_a_seed(server_root: Chroot) -> None:
    """One seed, three commands on the same server: the seed policy speaks through all three."""
    for case, text in sorted(AGREEMENT_SEEDS.items()):
        server_root.write_text("/root/agree.seed", text)
        seed_args = ["--seed", "/root/agree.seed", "probe-appliance"]

        checked = vainstall(server_root, "--check", *seed_args)
        assert checked.returncode == (1 if case == "errors" else 0), checked.stdout + checked.stderr
        rows = checked.stdout.split("\n\n")[0].splitlines()[1:]  # the table, without its header
        by_check = [tuple(row.split(None, 2)) for row in rows]

        # The plan shows its warnings, or refuses with every problem.
        planned = vainstall(server_root, "--dry-run", *seed_args)
        assert planned.returncode == (3 if case == "errors" else 0), planned.stdout + planned.stderr
        shown = planned.stderr if case == "errors" else planned.stdout
        by_plan = [(sev, where or "-", msg) for where, sev, msg in _PROBLEM_LINE.findall(shown)]

        seed_check = server_root.run(
            ["vatools", "seed", "check", "--json", "/root/agree.seed", "--against", "probe-appliance"],
            check=False,
        )
        assert seed_check.returncode == (1 if case == "errors" else 0), seed_check.stderr
        by_seed_check = [
            (p["severity"], f"{p['file']}:{p['line']}" if p["file"] else "-", p["message"])
            for p in json.loads(seed_check.stdout)
        ]

        assert by_check == by_plan == by_seed_check, case
        assert any(msg.startswith("probe-questions/name belongs to") for _, _, msg in by_check)
        assert any("does not ask probe-questions/legacy-mode" in msg for _, _, msg in by_check)
