# No shebang: Ansible then picks the host's Python (ansible_python_interpreter or discovery).
# Copyright: vatools developers
# GNU General Public License v2.0+ (see debian/copyright)
"""Ansible module vatools.appliance.bootstrap: our apt repository and vatools on a server."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bootstrap
short_description: Add the vatools apt repository and install vatools
version_added: "0.1.0"
description:
  - Writes the repository's public key to C(/etc/apt/keyrings/vatools.gpg) (or C(.asc) when
    armored) and one deb822 source, C(/etc/apt/sources.list.d/vatools.sources), for the flat
    repositories given (as C(vatools repo build) publishes them), then runs C(apt-get update) and
    installs C(vatools).
  - Nothing is written, updated or installed when the files are already so and vatools is
    installed (C(changed=false)). The same as C(vainstall --host HOST --repository URL --keyring FILE).
options:
  repositories:
    description:
      - URLs of flat repositories; C({suite}) in a URL becomes the host's Debian release
        (C(VERSION_CODENAME) of C(/etc/os-release)), so one list serves bookworm and trixie hosts.
    type: list
    elements: str
    required: true
  keyring:
    description:
      - The repository's public key, as the armored text (C(-----BEGIN PGP PUBLIC KEY BLOCK-----))
        or as the base64 of the binary keyring (C(lookup('file', 'key.gpg.b64'))).
    type: str
    required: true
notes:
  - Supports check mode and diff mode (the source file before and after).
author:
  - vatools developers
"""

EXAMPLES = r"""
- name: vatools from our repository
  vatools.appliance.bootstrap:
    repositories: ["https://apt.example.org/vatools/{suite}/"]
    keyring: "{{ lookup('file', 'vatools-archive-keyring.asc') }}"
"""

RETURN = r"""
suite:
  description: The host's Debian release.
  returned: always
  type: str
"""

import base64
import binascii
import os

from ansible.module_utils.basic import AnsibleModule

KEYRING_DIR = "/etc/apt/keyrings"
SOURCES_FILE = "/etc/apt/sources.list.d/vatools.sources"


def read(path, mode="rb"):
    try:
        with open(path, mode) as f:
            return f.read()
    except FileNotFoundError:
        return None


def codename():
    for line in (read("/etc/os-release", "r") or "").splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.partition("=")[2].strip().strip('"')
    return ""


def keyring_file(module, text):
    """(path, bytes) of the keyring as apt reads it."""
    if text.lstrip().startswith("-----BEGIN PGP"):
        return os.path.join(KEYRING_DIR, "vatools.asc"), text.encode()
    try:
        return os.path.join(KEYRING_DIR, "vatools.gpg"), base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        module.fail_json(msg="keyring: neither an armored key nor the base64 of a binary keyring")


def write(path, data):
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    new = path + ".new"
    with open(new, "wb") as out:
        out.write(data)
    os.chmod(new, 0o644)
    os.rename(new, path)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            repositories=dict(type="list", elements="str", required=True),
            keyring=dict(type="str", required=True, no_log=False),
        ),
        supports_check_mode=True,
    )
    suite = codename()
    repositories = [url.replace("{suite}", suite) for url in module.params["repositories"]]
    keyring_path, keyring = keyring_file(module, module.params["keyring"])
    sources = "Types: deb\nURIs: %s\nSuites: ./\nSigned-By: %s\n" % (" ".join(repositories), keyring_path)
    old_sources = read(SOURCES_FILE)
    rc, out, _ = module.run_command(["dpkg-query", "-W", "-f=${Status}", "vatools"])
    has_vatools = rc == 0 and out.strip() == "install ok installed"
    files_right = read(keyring_path) == keyring and old_sources == sources.encode()
    result = dict(changed=not (files_right and has_vatools), suite=suite)
    if module._diff:
        result["diff"] = {
            "before": {"sources": (old_sources or b"").decode("utf-8", "replace"), "vatools": has_vatools},
            "after": {"sources": sources, "vatools": True},
        }
    if not result["changed"] or module.check_mode:
        module.exit_json(**result)
    write(keyring_path, keyring)
    write(SOURCES_FILE, sources.encode())
    environ = {"DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8"}
    for argv in (["apt-get", "update", "-q", "-o", "APT::Update::Error-Mode=any"],
                 ["apt-get", "install", "-q", "-y", "vatools"]):
        rc, out, err = module.run_command(argv, environ_update=environ)
        if rc != 0:
            module.fail_json(msg="%s failed: %s" % (" ".join(argv[:2]), (err or out).strip()[-2000:]),
                             rc=rc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
