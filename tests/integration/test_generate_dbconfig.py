"""A dbconfig-common application made into an appliance: roundcube on sqlite3.

dbconfig-common registers its questions under the application's prefix while the package
configures (roundcube/database-type, roundcube/db/basepath, ...); they are in no templates
file. `vatools new` must list them in the skeleton, `vatools seed check` must check them like
any other answer, and vainstall must seed them -- and treat dbconfig-common's "noninteractive
fail" (apt succeeds, the application has no database) as a failure it rolls back.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.test_generate_postfix import JANE, vatools
from tests.support.chroot import Chroot
from tests.support.net import serve_directory
from tests.support.repo import Repo, sources_entry
from vatools.packaging.build import build_package
from vatools.packaging.repo import ensure_signing_key, publish

pytestmark = pytest.mark.integration

NAME = "roundcube-appliance"
BASEPATH = "/var/lib/dbconfig-common/sqlite3/roundcube"
ANSWERS = {
    "roundcube/database-type": "sqlite3",
    "roundcube/dbconfig-install": "true",
    "roundcube/db/dbname": "roundcube",
    "roundcube/db/basepath": BASEPATH,
    "roundcube/hosts": "imap.example.org:143",
}


def fill_in(skeleton: str, answers: dict[str, str]) -> str:
    for question, value in answers.items():
        pattern = re.compile(rf"^#(roundcube-core {re.escape(question)} \S+)(?: .*)?$", re.M)
        assert len(pattern.findall(skeleton)) == 1, f"{question} is not in the skeleton once"
        skeleton = pattern.sub(lambda m: f"{m.group(1)} {value}", skeleton)
    return skeleton


def generate_and_publish(chroot: Chroot, suite: str, repo: Repo, work: Path,
                         answers: dict[str, str]) -> Path:
    """vatools new against the server tree, the skeleton filled and checked, built, published."""
    top = work / "tree"
    made = vatools("new", NAME, "--depends", "roundcube-core,roundcube-sqlite3",
                   "--description", "webmail on a local sqlite3 database",
                   "--maintainer", JANE, "--output", top, "--root", chroot.root, cwd=work)
    assert made.returncode == 0, made.stdout + made.stderr
    seed_file = top / "seeds" / f"{NAME}.seed"
    skeleton = seed_file.read_text()
    # dbconfig-common's questions under roundcube's prefix, next to roundcube's own.
    for question in ("roundcube/database-type", "roundcube/db/basepath", "roundcube/hosts",
                     "roundcube/mysql/method"):
        assert f"roundcube-core {question} " in skeleton, question
    seed_file.write_text(fill_in(skeleton, answers))
    checked = vatools("seed", "check", seed_file, "--against", "roundcube-core", "--against", "roundcube-sqlite3",
                      "--root", chroot.root, cwd=work)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 error(s), 0 warning(s)" in checked.stdout, checked.stdout
    debs = build_package(top / "appliances" / NAME, work / "debs", progress=lambda _: None)
    return publish(work / "repo", suite, debs, ensure_signing_key(repo.key_dir)).parent


def test_dbconfig_appliance_is_seeded_and_gets_its_database(
    server: "callable", suite: str, repo: Repo, tmp_path: Path  # type: ignore[valid-type]
) -> None:
    chroot: Chroot = server(suite)
    published = generate_and_publish(chroot, suite, repo, tmp_path, ANSWERS)
    with serve_directory(published) as url:
        chroot.write_text("/etc/apt/sources.list.d/generated.sources", sources_entry(f"{url}/{suite}/"))
        chroot.run(["apt-get", "update"])
        installed = chroot.run(["vainstall", "--yes", NAME], check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "not asked" not in installed.stdout + installed.stderr
    tables = chroot.run(["sqlite3", f"{BASEPATH}/roundcube", ".tables"]).stdout.split()
    assert "users" in tables and "session" in tables, tables
    config = chroot.read_text("/etc/roundcube/debian-db.php")
    assert re.search(r"\$dbtype\s*=\s*'sqlite3'", config), config


@pytest.mark.suite("bookworm")
def test_dbconfig_noninteractive_fail_is_rolled_back(
    server: "callable", suite: str, repo: Repo, tmp_path: Path  # type: ignore[valid-type]
) -> None:
    """A basepath under a file: dbconfig-common cannot create the database, says
    "noninteractive fail" and lets apt succeed; vainstall rolls back (exit 4)."""
    chroot: Chroot = server(suite)
    broken = {**ANSWERS, "roundcube/db/basepath": "/etc/hostname/roundcube"}
    published = generate_and_publish(chroot, suite, repo, tmp_path, broken)
    with serve_directory(published) as url:
        chroot.write_text("/etc/apt/sources.list.d/generated.sources", sources_entry(f"{url}/{suite}/"))
        chroot.run(["apt-get", "update"])
        before = chroot.state_digest()
        installed = chroot.run(["vainstall", "--yes", NAME], check=False)
    assert installed.returncode == 4, installed.stdout + installed.stderr
    assert "dbconfig-common could not set up the database of roundcube" in installed.stderr
    assert chroot.state_digest() == before
