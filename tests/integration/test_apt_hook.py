"""vatools' apt hook (vatools/apthook.py): apt's own installs and upgrades get the appliance's seed.

Fresh servers with vatools installed from the signed repository; apt-get, not vainstall, installs
the appliances.  Every refusal is checked twice: the message, and dpkg's status and debconf's
database byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.support.chroot import Chroot
from tests.support.commands import secrets_of, vainstall
from tests.support.net import serve_directory
from tests.support.repo import Repo, sources_entry

pytestmark = pytest.mark.integration

CONFFILE = "/etc/apt/apt.conf.d/69vatools"
HOOK = "/usr/lib/vatools/apt-hook"


def apt_get(chroot: Chroot, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return chroot.run(["apt-get", *args], check=False, env=env)


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def installed_version(chroot: Chroot, package: str) -> str:
    result = chroot.run(["dpkg-query", "-W", "-f", "${db:Status-Status} ${Version}", package],
                        check=False)
    words = result.stdout.split()
    return words[1] if result.returncode == 0 and words[:1] == ["installed"] else ""


def test_apt_get_install_seeds_the_appliance_and_will_not_swap_it(server_root: Chroot) -> None:
    chroot = server_root
    result = apt_get(chroot, "install", "-y", "probe-appliance")
    assert result.returncode == 0, output(result)
    # The seed reached the package: its config file holds the seeded answers and the
    # generated password, which apt's output (no terminal here) does not show.
    conf = chroot.read_text("/etc/probe-questions.conf")
    assert "name=probe-one" in conf and "color=green" in conf and "features=alpha, gamma" in conf
    password = secrets_of(chroot, "probe-appliance")["probe-questions/password"]
    assert f"password={password}" in conf
    assert password not in output(result)
    # Used by the package, so debconf keeps no copy after dpkg (DPkg::Post-Invoke), as with
    # vainstall: the root-only secrets file is the one left.
    assert password not in chroot.read_text("/var/cache/debconf/passwords.dat")
    assert not chroot.path("/var/lib/vatools/apt-hook/forget").exists()
    assert "stored root-only in /var/lib/vatools/secrets/probe-appliance" in output(result)
    record = json.loads(chroot.read_text("/var/lib/vatools/installed/probe-appliance.json"))
    assert record["seed"]["source"] == "repository"  # the published seed, hash-checked
    assert record["installed_by"] == "apt-hook"
    # debconf's database as it was before the seed, kept root-only.
    saved = chroot.resolve("/var/lib/vatools/apt-hook/debconf-before")
    assert saved.stat().st_mode & 0o777 == 0o700 and (saved / "config.dat").is_file()

    # apt would remove probe-appliance for the Conflicts: stopped, nothing changed.
    before = chroot.state_digest()
    result = apt_get(chroot, "install", "-y", "probe-appliance-two")
    assert result.returncode != 0
    assert "vainstall --replace probe-appliance-two" in output(result)
    assert chroot.state_digest() == before
    assert installed_version(chroot, "probe-appliance")

    # vainstall tells the hook that it seeds its own apt-get run: the swap goes through.
    result = vainstall(chroot, "--yes", "--replace", "probe-appliance-two")
    assert result.returncode == 0, output(result)
    assert installed_version(chroot, "probe-appliance-two")
    assert not installed_version(chroot, "probe-appliance")


def test_a_seed_with_errors_stops_apt_and_changes_nothing(server_root: Chroot) -> None:
    chroot = server_root
    before = chroot.state_digest()
    result = apt_get(chroot, "install", "-y", "probe-badseed-appliance")
    assert result.returncode != 0
    text = output(result)
    assert "probe-badseed-appliance_1.0_all.seed has 2 error(s)" in text, text
    assert "probe-badseed-appliance_1.0_all.seed:4: error:" in text
    assert "probe-badseed-appliance_1.0_all.seed:5: error:" in text
    assert chroot.state_digest() == before
    assert not installed_version(chroot, "probe-badseed-appliance")

    # The administrator's switch: without the hook apt installs it, unseeded.
    result = apt_get(chroot, "-o", "Vatools::Apt-Hook=false", "install", "-y",
                     "probe-badseed-appliance")
    assert result.returncode == 0, output(result)
    assert "color=purple" not in chroot.read_text("/etc/probe-questions.conf")


def test_removing_vatools_leaves_apt_working(server_root: Chroot) -> None:
    chroot = server_root
    dump = chroot.run(["apt-config", "dump"]).stdout
    # apt keys the hook's options by the command's first word, which is ours alone.
    assert 'DPkg::Tools::Options::VATOOLS_APT_HOOK%3d/usr/lib/vatools/apt-hook::Version "3";' in dump
    assert "sh -c 'if [ -x $VATOOLS_APT_HOOK ]" in dump

    result = apt_get(chroot, "remove", "-y", "vatools")
    assert result.returncode == 0, output(result)
    assert chroot.path(CONFFILE).is_file()  # a conffile stays until purged
    assert not chroot.path(HOOK).exists()
    result = apt_get(chroot, "install", "-y", "probe-questions")
    assert result.returncode == 0, output(result)
    assert installed_version(chroot, "probe-questions")


def test_apt_get_install_dokuwiki_gets_the_seeded_title(server_root: Chroot) -> None:
    # No terminal and debconf's teletype frontend: a question asked would show in the output.
    result = apt_get(server_root, "install", "-y", "dokuwiki-appliance",
                     env={"DEBIAN_FRONTEND": "teletype"})
    assert result.returncode == 0, output(result)
    local = server_root.read_text("/etc/dokuwiki/local.php")
    assert "$conf['title'] = 'DokuWiki Appliance';" in local
    assert "dokuwiki/wiki/password" in secrets_of(server_root, "dokuwiki-appliance")
    assert "Wiki administrator" not in output(result) and "[Yes/no]" not in output(result)


# --- an upgrade that brings a new question, by unattended-upgrades -----------------------------


def build_deb(workdir: Path, name: str, version: str, control: str,
              files: dict[str, str], scripts: dict[str, str]) -> Path:
    """A small .deb made with dpkg-deb (no build system needed for a test's own package)."""
    tree = workdir / f"{name}-{version}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
        f"Maintainer: vatools tests <vatools@lists.example.org>\n{control}"
    )
    for inside, text in files.items():
        path = tree / inside.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for script, text in scripts.items():
        path = tree / "DEBIAN" / script
        path.write_text(text)
        path.chmod(0o755 if script != "templates" else 0o644)
    deb = workdir / f"{name}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)],
                   check=True, capture_output=True)
    return deb


EXTRA_TEMPLATES = """Template: probe-extra/motto
Type: string
Default: no motto
Description: The motto of this probe
"""
EXTRA_CONFIG = """#!/bin/sh
set -e
. /usr/share/debconf/confmodule
db_input high probe-extra/motto || true
db_go || true
"""
EXTRA_POSTINST = """#!/bin/sh
set -e
. /usr/share/debconf/confmodule
if [ "$1" = configure ]; then
  db_get probe-extra/motto
  echo "$RET" > /etc/probe-extra.motto
fi
"""


def upgrade_debs(workdir: Path, installed_seed: str) -> list[Path]:
    """probe-appliance 1.1: depends on a new package, probe-extra, which asks a new question."""
    extra = build_deb(workdir, "probe-extra", "1.0", "Depends: debconf\n"
                      "Description: vatools test package with a question\n", {},
                      {"templates": EXTRA_TEMPLATES, "config": EXTRA_CONFIG,
                       "postinst": EXTRA_POSTINST})
    seed = installed_seed + "probe-extra probe-extra/motto string seeded motto\n"
    digest = hashlib.sha256(seed.encode()).hexdigest()
    appliance = build_deb(
        workdir, "probe-appliance", "1.1",
        "Depends: probe-questions, probe-extra\nProvides: virtual-appliance\n"
        f"Conflicts: virtual-appliance\nVatools-Seed-Sha256: {digest}\n"
        "Description: vatools test appliance, version 1.1\n",
        {"/usr/share/vatools/seeds/probe-appliance.seed": seed}, {},
    )
    return [extra, appliance]


UU_CONFIG = """Unattended-Upgrade::Origins-Pattern { "origin=vatools"; };
Unattended-Upgrade::MinimalSteps "true";
"""


def test_unattended_upgrade_answers_a_new_question_from_the_seed(
    server_root: Chroot, repo: Repo, suite: str, tmp_path: Path
) -> None:
    from vatools.packaging.repo import ensure_signing_key, publish

    chroot = server_root
    result = apt_get(chroot, "install", "-y", "probe-appliance", "unattended-upgrades")
    assert result.returncode == 0, output(result)
    seed = chroot.read_text("/usr/share/vatools/seeds/probe-appliance.seed")
    publish(tmp_path / "upgrade", suite, upgrade_debs(tmp_path, seed),
            ensure_signing_key(repo.key_dir))
    with serve_directory(tmp_path / "upgrade") as url:
        chroot.write_text("/etc/apt/sources.list.d/vatools-upgrade.sources",
                          sources_entry(f"{url}/{suite}/"))
        chroot.write_text("/etc/apt/apt.conf.d/51vatools-tests", UU_CONFIG)
        result = apt_get(chroot, "update")
        assert result.returncode == 0, output(result)
        result = chroot.run(["unattended-upgrade", "-v"], check=False, env={"DEBIAN_FRONTEND": ""})
    logs = chroot.path("/var/log/unattended-upgrades")
    detail = output(result) + "".join(p.read_text() for p in logs.glob("*.log"))
    assert result.returncode == 0, detail
    assert installed_version(chroot, "probe-appliance") == "1.1", detail
    assert chroot.read_text("/etc/probe-extra.motto") == "seeded motto\n"
    hook_log = chroot.read_text("/var/log/vatools/apt-hook.log")
    assert "answered 1 new question(s)" in hook_log and "probe-extra/motto" in hook_log
    # The answers given at install time stay.
    assert "name=probe-one" in chroot.read_text("/etc/probe-questions.conf")
