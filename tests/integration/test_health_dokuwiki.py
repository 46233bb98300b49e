"""`vatools check` against a real dokuwiki-appliance, installed by vainstall in a bookworm
server chroot (bookworm only: the checks are the same code on trixie, and this saves a tree).

Apache and appliance-control are started in the chroot on free loopback ports (no systemd
there); `vatools check --root` on the host sends the declared probes (ports 80 and 8080) to
them with --http-port. Healthy: exit 0, the wiki answers with its seeded title, the login page
answers, dpkg --audit is clean, apache2 is "unknown" (no systemd runs the tree). Then a broken
Apache configuration (the wiki forbidden) and Apache stopped each fail the wiki's probe, exit 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.apache import serve_apache
from tests.support.chroot import Chroot
from tests.support.commands import vainstall
from tests.support.control import serve_control
from tests.support.net import free_port

pytestmark = [pytest.mark.integration, pytest.mark.suite("bookworm")]

TOP = Path(__file__).resolve().parents[2]
SEEDED_TITLE = "DokuWiki Appliance"  # seeds/dokuwiki-appliance.seed: dokuwiki/wiki/title
DENY_CONF = "/etc/apache2/conf-enabled/zz-test-deny-wiki.conf"  # a breaking change


def check(chroot: Chroot, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vatools", "check", "--root", str(chroot.root),
                           *args], cwd=TOP, capture_output=True, text=True)


def by_name(output: str) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in json.loads(output)["checks"]}


def test_check_passes_with_the_wiki_serving_and_fails_when_apache_is_broken(
        server_root: Chroot, tmp_path: Path) -> None:
    chroot = server_root
    installed = vainstall(chroot, "--yes", "dokuwiki-appliance")
    assert installed.returncode == 0, installed.stdout + installed.stderr

    control_port = free_port()
    with serve_control(chroot, control_port, tmp_path / "control-logs"):
        with serve_apache(chroot, free_port()) as url:
            wiki_port = url.rsplit(":", 1)[1]
            healthy = check(chroot, "--json", "--http-port", f"80={wiki_port}",
                            "--http-port", f"8080={control_port}")
            assert healthy.returncode == 0, healthy.stdout + healthy.stderr
            checks = by_name(healthy.stdout)
            wiki = checks["http://127.0.0.1/dokuwiki/"]
            assert wiki["status"] == "ok", wiki
            assert f"answered 200 with '[{SEEDED_TITLE}]'" in wiki["detail"]
            assert checks["http://127.0.0.1:8080/login"]["status"] == "ok"
            assert checks["dpkg --audit"]["status"] == "ok"
            assert checks["apache2"]["status"] == "unknown"

        # A broken configuration: Apache runs, but the wiki is forbidden.
        chroot.write_text(DENY_CONF, "<Location /dokuwiki>\n    Require all denied\n</Location>\n")
        with serve_apache(chroot, free_port()) as url:
            wiki_port = url.rsplit(":", 1)[1]
            broken = check(chroot, "--json", "--deadline", "3", "--http-port", f"80={wiki_port}",
                           "--http-port", f"8080={control_port}")
            assert broken.returncode == 1, broken.stdout + broken.stderr
            report = json.loads(broken.stdout)
            assert report["ok"] is False
            wiki = by_name(broken.stdout)["http://127.0.0.1/dokuwiki/"]
            assert wiki["status"] == "failed" and "answered 403, expected 200" in wiki["detail"]
            assert by_name(broken.stdout)["http://127.0.0.1:8080/login"]["status"] == "ok"
        chroot.run(["rm", DENY_CONF])

        # Apache stopped: nothing answers the wiki's probe.
        stopped = check(chroot, "--deadline", "3", "--http-port", f"80={free_port()}",
                        "--http-port", f"8080={control_port}")
        assert stopped.returncode == 1, stopped.stdout + stopped.stderr
        assert "FAILED   http http://127.0.0.1/dokuwiki/: no answer" in stopped.stdout
        assert "ok       http http://127.0.0.1:8080/login" in stopped.stdout
