"""The one place that starts processes, on the host or inside a target root directory.

A `Target` is the system being changed: the running system ("/") or a root directory
(a chroot, an image tree). Commands for a root directory run inside it with `chroot`,
so a trixie tree is changed by trixie's own apt and dpkg even from a bookworm host.
Every command gets a known environment; its argv is logged under --debug (arguments
never carry secrets: those travel on stdin or in 0600 files).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import IO, Sequence

from vatools.errors import CommandFailed, VatoolsError
from vatools.target import HOST, Target

__all__ = ["HOST", "Target", "clean_env", "require_tool", "run", "start"]

log = logging.getLogger("vatools")

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Which Debian package provides a tool, for the "install it" hint.
TOOL_PACKAGES = {
    "apt-get": "apt",
    "apt-ftparchive": "apt-utils",
    "chroot": "coreutils",
    "debconf-set-selections": "debconf",
    "dpkg": "dpkg",
    "dpkg-buildpackage": "dpkg-dev",
    "dpkg-query": "dpkg",
    "gpg": "gnupg",
    "lintian": "lintian",
    "mmdebstrap": "mmdebstrap",
    "grub-mkimage": "grub-pc-bin",
    "mcopy": "mtools",
    "mke2fs": "e2fsprogs",
    "mkfs.fat": "dosfstools",
    "mmd": "mtools",
    "qemu-img": "qemu-utils",
    "sfdisk": "fdisk",
    "ssh": "openssh-client",
    "zstd": "zstd",
}


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every command gets: no inherited locale, prompts or PATH surprises."""
    env = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    if "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    if extra:
        env.update(extra)
    return env




def require_tool(name: str) -> None:
    """Fail early, with the package to install, when a tool is missing on the host."""
    if shutil.which(name, path=SYSTEM_PATH) is None:
        package = TOOL_PACKAGES.get(name, name)
        raise VatoolsError(f"{name} is not installed", hint=f"install it: apt-get install {package}")


def run(
    argv: Sequence[str],
    *,
    target: Target = HOST,
    input: str | bytes | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    hint: str | None = None,
    shown: Sequence[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion and capture its output (stdout and stderr merged).

    `shown` is what --debug logs instead of argv, when an argument may be a secret.
    """
    full = target.argv(argv)
    require_tool(full[0])
    log.debug("run: %s", " ".join(target.argv(shown) if shown is not None else full))
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(
        full,
        input=data,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=clean_env(env),
        cwd=cwd,
        check=False,
    )
    out = proc.stdout.decode("utf-8", "replace")
    result = subprocess.CompletedProcess(full, proc.returncode, out, "")
    if check and proc.returncode != 0:
        raise CommandFailed(full, proc.returncode, out, hint)
    return result


def start(
    argv: Sequence[str],
    *,
    target: Target = HOST,
    env: dict[str, str] | None = None,
    stdout: IO[bytes] | int | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start a long-running command in its own process group, so it can be stopped whole."""
    full = target.argv(argv)
    require_tool(full[0])
    log.debug("start: %s", " ".join(full))
    return subprocess.Popen(
        full,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        env=clean_env(env),
        pass_fds=tuple(pass_fds),
        start_new_session=True,
    )


def stream(
    argv: Sequence[str],
    *,
    input: str | bytes | None = None,
    env: dict[str, str] | None = None,
) -> int:
    """Run a command whose output goes straight to ours, as it comes (a remote vainstall's plan
    and progress); `input` is its whole stdin (secrets travel there, never in argv)."""
    require_tool(argv[0])
    log.debug("stream: %s", " ".join(argv))
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(
        list(argv),
        input=data if data is not None else b"",
        env=clean_env(env),
        check=False,
    )
    return proc.returncode
