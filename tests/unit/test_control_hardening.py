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
