"""--host: vainstall and valist on another server, through vatools.remote."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from vatools.cli import common
from vatools.errors import UsageError, VatoolsError


def vainstall(host_text: str, name: str, *, seed: Path | None, overrides: Sequence[str],
              dry_run: bool, check: bool, replace: bool, yes: bool, lock_timeout: float,
              stall_timeout: float, repositories: Sequence[str], keyring: Path | None) -> int:
    from vatools import remote
    from vatools.progress import step

    if common.settings().root is not None:
        raise UsageError("--root and --host exclude each other", hint="give one of them")
    host = remote.Host.parse(host_text)
    for text in overrides:
        question, sep, _ = text.partition("=")
        if not sep or "/" not in question:
            raise UsageError(f"--set {text.split('=')[0]!r}...: expected QUESTION=VALUE",
                             hint="for example --set dokuwiki/wiki/title=Wiki")
    if bool(repositories) != (keyring is not None):
        raise UsageError("--repository and --keyring go together",
                         hint="give the repository's URL and its public key file")
    keyring_bytes = _read(keyring, "--keyring") if keyring is not None else b""
    seed_text = _read(seed, "--seed").decode("utf-8", "replace") if seed is not None else None
    asks = not (yes or dry_run or check)
    if asks and not sys.stdin.isatty():
        raise VatoolsError(
            "not asking for confirmation: standard input is not a terminal",
            hint="add --yes to install without confirmation; nothing was changed",
        )
    facts = remote.probe(host, batch=not asks)
    if repositories:
        step(f"Adding the repository on {host} and installing vatools there")
        remote.bootstrap(host, facts, repositories, keyring_bytes, batch=not asks)
    elif not facts.has_vatools:
        raise VatoolsError(f"{host}: vatools is not installed there",
                           hint="add --repository URL --keyring FILE to install it first")
    if name in facts.installed and not check:
        print(f"{name} is already installed on {host}: nothing to do.")
        return 0
    options = [f"--lock-timeout={lock_timeout:g}", f"--stall-timeout={stall_timeout:g}"]
    options += ["--replace"] * replace + ["--debug"] * common.settings().debug
    if check:
        options.append("--check")
    elif dry_run:
        options += ["--dry-run"] + ["--json"] * common.settings().json

    def on_host(*more: str) -> int:
        return remote.vainstall(host, facts, [*options, *more, "--", name], batch=not asks,
                                seed=seed_text, seed_name=seed.name if seed else "seed",
                                overrides=list(overrides))

    if not asks:
        return on_host("--yes") if not (check or dry_run) else on_host()
    status = on_host("--dry-run")  # the plan, made and checked on the host
    if status != 0:
        return status
    answer = input(f"\nInstall on {host}? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise VatoolsError("cancelled; nothing was changed")
    return on_host("--yes")


def valist(host_text: str, *, installed: bool, available: bool) -> int:
    from vatools import remote

    if common.settings().root is not None:
        raise UsageError("--root and --host exclude each other", hint="give one of them")
    host = remote.Host.parse(host_text)
    facts = remote.probe(host, need_root=False)  # names the host in every failure
    if not facts.has_vatools:
        raise VatoolsError(f"{host}: vatools is not installed there",
                           hint=f"`vainstall --host {host} --repository URL --keyring FILE NAME`"
                           " installs it first")
    options = ["--installed"] * installed + ["--available"] * available
    options += ["--json"] * common.settings().json
    return remote.valist(host, options)


def backup_create(host_text: str, output: Path | None) -> int:
    from vatools import remote

    if common.settings().root is not None:
        raise UsageError("--root and --host exclude each other", hint="give one of them")
    host = remote.Host.parse(host_text)
    facts = remote.probe(host)
    if not facts.has_vatools:
        raise VatoolsError(f"{host}: vatools is not installed there", hint="nothing to back up with")
    local, summary = remote.backup_create(host, facts, output)
    print(f"{local}: from {host}" + (f" ({summary.partition(': ')[2]})" if summary else ""))
    return 0


def _read(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise UsageError(f"{option} {path}: {error.strerror}", hint="give a readable file") from None
