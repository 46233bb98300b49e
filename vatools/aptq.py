"""python-apt, set up for a target: appliance lookups, install plans, verified downloads.

For a root directory, apt's configuration must point at that tree BEFORE apt_pkg reads any
configuration, so that only the target's apt.conf.d and sources are used.  That is why this
module configures apt_pkg itself instead of letting `import apt` do it.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import apt_pkg

from vatools.appliance import SEED_SHA256_FIELD, VIRTUAL_PACKAGE
from vatools.errors import VatoolsError
from vatools.target import Target

_configured_for: Target | None = None


def configure(target: Target) -> None:
    """Point apt_pkg at the target; once per process (apt_pkg's configuration is global)."""
    global _configured_for
    if _configured_for is not None:
        if _configured_for != target:
            raise RuntimeError("apt_pkg is already configured for another target")
        return
    if not target.is_host:
        root = str(target.root)
        apt_pkg.config.set("Dir", root)
        apt_pkg.config.set("Dir::State::status", f"{root}/var/lib/dpkg/status")
    apt_pkg.init_config()
    if not target.is_host:
        # A pkgcache.bin written from here is invalid inside the tree and vice versa: keep
        # the cache in memory. On the system itself, share apt-get's (0.3 s instead of 0.7).
        apt_pkg.config.set("Dir::Cache::pkgcache", "")
        apt_pkg.config.set("Dir::Cache::srcpkgcache", "")
    apt_pkg.init_system()
    _configured_for = target


def open_cache(target: Target):  # type: ignore[no-untyped-def]
    """An apt.Cache of the target (imported late: `import apt` costs 60 ms)."""
    configure(target)
    import apt

    try:
        return apt.Cache()
    except SystemError as exc:
        raise VatoolsError(
            f"cannot read apt's package lists of {target}: {exc}", hint="run apt-get update"
        ) from exc


@dataclass(frozen=True)
class Candidate:
    """An appliance version apt can install, with what its Packages record says."""

    name: str
    version: str
    description: str
    uri: str
    seed_sha256: str | None
    provides_appliance: bool


def candidate(cache, name: str) -> Candidate:  # type: ignore[no-untyped-def]
    """The version apt would install for `name`; refused when apt has none."""
    if name not in cache:
        raise VatoolsError(
            f"unknown package {name!r}: apt knows no package of that name",
            hint="check the name with valist, or run apt-get update",
        )
    version = cache[name].candidate
    if version is None:
        raise VatoolsError(
            f"{name} has no installation candidate", hint="check your apt sources; apt-get update"
        )
    record = version.record
    return Candidate(
        name=name,
        version=version.version,
        description=version.summary or "",
        uri=version.uri or "",
        seed_sha256=record.get(SEED_SHA256_FIELD),
        provides_appliance=VIRTUAL_PACKAGE in version.provides,
    )


def installed_appliances(cache) -> list[str]:  # type: ignore[no-untyped-def]
    """Installed packages that provide virtual-appliance."""
    return sorted(
        pkg.name
        for pkg in cache.get_providing_packages(
            VIRTUAL_PACKAGE, candidate_only=False, include_nonvirtual=True
        )
        if pkg.installed is not None and VIRTUAL_PACKAGE in pkg.installed.provides
    )


@dataclass(frozen=True)
class Changes:
    """What apt would do: (package, version) to install or upgrade, packages to remove."""

    install: tuple[tuple[str, str], ...]
    remove: tuple[str, ...]


def mark_install(cache, name: str, replace: str | None) -> Changes:  # type: ignore[no-untyped-def]
    """Let apt's resolver plan the install (and the replaced appliance's removal)."""
    wanted = {name: cache[name].candidate}  # taken first: a failed mark can hide it
    with cache.actiongroup():
        if replace:
            cache[replace].mark_delete()
        cache[name].mark_install()
    _refuse_unresolved(cache, wanted)
    changes = cache.get_changes()
    return Changes(
        install=tuple(
            sorted(
                (p.name, p.candidate.version)
                for p in changes
                if p.marked_install or p.marked_upgrade
            )
        ),
        remove=tuple(sorted(p.name for p in changes if p.marked_delete)),
    )


def _refuse_unresolved(cache, wanted) -> None:  # type: ignore[no-untyped-def]
    """apt's resolver leaves a package unmarked when it cannot install it: say why.

    `wanted` maps each package asked for to its candidate version."""
    names = list(wanted)
    unmarked = [n for n in names if not (cache[n].marked_install or cache[n].is_installed)]
    if not unmarked and not cache.broken_count:
        return
    broken = [p.name for p in cache if p.is_inst_broken or p.is_now_broken]
    missing = [
        " | ".join(d.name for d in group)
        for n in unmarked
        for group in wanted[n].dependencies
        if not group.target_versions
    ]
    detail = f"nothing provides {', '.join(missing)}" if missing else ", ".join(broken[:10])
    # Nothing missing and nothing broken: the resolver kept a package back, e.g. for a conflict.
    detail = detail or "apt's resolver found no solution, e.g. packages that conflict"
    names_text = " ".join(names)
    raise VatoolsError(
        f"apt cannot install {names_text}: unmet dependencies ({detail})",
        hint=f"see: apt-get install --simulate {names_text}",
    )


def mark_all(cache, names: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Mark packages for installation together (for looking at their templates)."""
    wanted = {name: cache[name].candidate for name in names}
    with cache.actiongroup():
        for name in names:
            cache[name].mark_install()
    _refuse_unresolved(cache, wanted)


def fetch_archives(cache, progress) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """Download the marked packages into apt's archive cache (apt checks each hash).

    Returns package name -> .deb path, for every package to install.
    """
    import apt

    archives = Path(apt_pkg.config.find_dir("Dir::Cache::Archives"))
    acquire = apt_pkg.Acquire(progress)
    manager = apt_pkg.PackageManager(cache._depcache)
    try:
        with cache._archive_lock:
            manager.get_archives(acquire, cache._list, cache._records)
            result = acquire.run()
    except apt.cache.LockFailedException as exc:
        raise VatoolsError(
            f"cannot lock apt's archive cache {archives}: another apt is running",
            hint="wait for it to finish, then try again",
        ) from exc
    failed = [item for item in acquire.items if item.status != item.STAT_DONE]
    if result != acquire.RESULT_CONTINUE or failed:
        details = "; ".join(f"{item.desc_uri}: {item.error_text}" for item in failed[:5])
        raise VatoolsError(f"downloading packages failed: {details}", hint="check the network and apt sources")
    paths = {}
    for item in acquire.items:
        deb = Path(item.destfile)
        paths[deb.name.split("_", 1)[0]] = deb
    return paths


def acquire_progress(bar):  # type: ignore[no-untyped-def]
    """An apt download progress that drives one of our progress bars."""
    import apt.progress.base

    class BarProgress(apt.progress.base.AcquireProgress):  # type: ignore[misc]
        def pulse(self, owner) -> bool:  # type: ignore[no-untyped-def]
            total = self.total_bytes or 1
            bar.update(100.0 * self.current_bytes / total, f"{self.current_items} of {self.total_items} files")
            return True

        def stop(self) -> None:
            bar.done(f"{self.total_items} files, {self.fetched_bytes / 1e6:.1f} MB fetched")

    return BarProgress()


def fetch_uri(uri: str) -> bytes | None:
    """Fetch one file through apt's own transports; None when it does not exist."""
    with tempfile.TemporaryDirectory(prefix="vatools-fetch-") as tmp:
        let_apt_sandbox_write(Path(tmp))
        dest = Path(tmp) / "file"
        acquire = apt_pkg.Acquire()
        item = apt_pkg.AcquireFile(acquire, uri, hash="", destfile=str(dest))
        acquire.run()
        if item.status != item.STAT_DONE:
            text = item.error_text or ""
            if "404" in text or "not found" in text.lower() or "No such file" in text:
                return None
            raise VatoolsError(f"cannot fetch {uri}: {text}", hint="check the repository")
        return dest.read_bytes()


def let_apt_sandbox_write(directory: Path) -> None:
    """apt downloads as its unprivileged user _apt when it can write the destination."""
    os.chmod(directory, 0o755)
    if os.geteuid() == 0:
        try:
            os.chown(directory, pwd.getpwnam("_apt").pw_uid, -1)
        except KeyError:
            pass  # no _apt user: apt downloads as root, as it says


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


