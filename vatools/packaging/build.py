"""Building binary packages with dpkg-buildpackage, on this system or in a fresh chroot.

A source dir is copied first (symlinks dereferenced, so `appliances/NAME/NAME.seed`, a link
to `../../seeds/NAME.seed`, becomes a real file and the copy is self-contained), then built
with `dpkg-buildpackage -us -uc -b`. The source tree itself is never written to.

A source dir holding the marker `debian/vatools-build-in-chroot` must be built per Debian
release (it carries binaries tied to that release's Python): it is built inside a copy of a
cached minbase tree of the requested suite, with its Build-Depends installed by
`apt-get satisfy`; the chroot is removed afterwards.
"""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from debian.deb822 import Deb822

from vatools.errors import CommandFailed, VatoolsError
from vatools.run import HOST, Target, require_tool, run

CHROOT_MARKER = "debian/vatools-build-in-chroot"

# Minbase trees made once per suite by mmdebstrap, copied for every chroot build.
CHROOT_CACHE = Path("/var/cache/vatools/build-chroots")

# Where build copies and chroots live: on disk, not in a tmpfs /tmp.
WORK_ROOT = Path("/var/tmp")

# Left out when copying a source dir: version control, build output, caches.
JUNK_NAMES = (".git", "build", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
              ".pybuild", ".venv", ".tox", "*.egg-info", "*.pyc")

SUITE_NAME = re.compile(r"[a-z][a-z0-9.-]*")

CHROOT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
# No -dbgsym packages: appliances are not debugged from our repository, and they double its size.
BUILD_ENV = {"DEB_BUILD_OPTIONS": "noddebs"}
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
HOST_CA_INSIDE = "/etc/ssl/certs/vatools-build-host-ca.crt"


class BuildFailed(CommandFailed):
    """A build step failed; the message names the step (not just "chroot") and the full log."""

    def __init__(self, failed: CommandFailed, step: list[str], where: str, log_file: Path) -> None:
        super().__init__(failed.argv, failed.returncode, failed.output, failed.hint)
        tail = "\n".join(failed.output.strip().splitlines()[-15:])
        self.message = (f"{' '.join(step)} {where}exited with status {failed.returncode}:\n"
                        f"{tail}\nfull build log: {log_file}")
        self.log_file = log_file


def source_name(source_dir: Path) -> str:
    """The Source field of debian/control, checked to exist."""
    control = source_dir / "debian" / "control"
    if not control.is_file():
        raise VatoolsError(f"{source_dir} is not a Debian source dir: {control} is missing",
                           hint="point at a directory that contains debian/control")
    with control.open(encoding="utf-8") as f:
        name = Deb822(f).get("Source")
    if not name:
        raise VatoolsError(f"{control}: the first paragraph has no Source field",
                           hint="start debian/control with 'Source: NAME'")
    return str(name)


def build_depends(source_dir: Path) -> str:
    """All build dependencies of a source package as one apt-get satisfy argument."""
    with (source_dir / "debian" / "control").open(encoding="utf-8") as f:
        para = Deb822(f)
    fields = ("Build-Depends", "Build-Depends-Arch", "Build-Depends-Indep")
    relations = [" ".join(r.split()) for k in fields for r in para.get(k, "").split(",")]
    # Trailing commas (a common style) leave empty items that apt would refuse.
    return ", ".join(["build-essential"] + [r for r in relations if r])


def check_suite(suite: str) -> str:
    """A suite name is used in paths and apt sources: allow only what Debian uses."""
    if not SUITE_NAME.fullmatch(suite):
        raise VatoolsError(f"invalid suite name {suite!r}",
                           hint="use a Debian codename such as bookworm or trixie")
    return suite


def needs_chroot(source_dir: Path) -> bool:
    return (source_dir / CHROOT_MARKER).is_file()


def is_junk(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in JUNK_NAMES)


def copy_source(source_dir: Path, dest: Path) -> None:
    """Copy a source tree with symlinks dereferenced and junk left out."""
    for link in source_dir.rglob("*"):
        if link.is_symlink() and not link.exists() and not any(is_junk(p) for p in link.parts):
            raise VatoolsError(f"{link} is a dangling symlink (to {link.readlink()})",
                               hint="create the file it points to, or remove the link")
    shutil.copytree(source_dir, dest, symlinks=False,
                    ignore=lambda _dir, names: [n for n in names if is_junk(n)])


def build_package(source_dir: Path, out_dir: Path, *, suite: str | None = None,
                  progress: Callable[[str], None] = print) -> list[Path]:
    """Build the binary packages of source_dir into out_dir and return the .deb paths.

    The full log is written to out_dir/logs/SOURCE[-SUITE].log. A source dir with the chroot
    marker needs `suite` (e.g. "bookworm"); others are built on this system and ignore it.
    """
    source_dir = source_dir.resolve()
    name = source_name(source_dir)
    in_chroot = needs_chroot(source_dir)
    if in_chroot and not suite:
        raise VatoolsError(f"{source_dir} must be built in a chroot ({CHROOT_MARKER}), "
                           "but no suite was given", hint="pass the suite, e.g. bookworm")
    if in_chroot and suite:
        check_suite(suite)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_file = out_dir / "logs" / (f"{name}-{suite}.log" if in_chroot else f"{name}.log")
    log_file.parent.mkdir(exist_ok=True)
    log_file.write_text("")
    require_tool("dpkg-buildpackage" if not in_chroot else "mmdebstrap")

    started = time.monotonic()
    cached = _cached_debs(source_dir, suite if in_chroot else None, out_dir)
    if cached:
        progress(f"reused {name}{' for ' + suite if in_chroot and suite else ''} from the build"
                 f" cache: " + ", ".join(d.name for d in cached))
        return cached
    work = Path(tempfile.mkdtemp(prefix=f"vatools-build-{name}-", dir=WORK_ROOT))
    try:
        if in_chroot:
            assert suite is not None
            built = _build_in_chroot(source_dir, name, suite, work, log_file)
        else:
            built = _build_here(source_dir, name, work, log_file)
        debs = []
        for deb in built:
            dest = out_dir / deb.name
            shutil.move(deb, dest)
            debs.append(dest)
    finally:
        remove_tree(work)
    _remember_debs(source_dir, suite if in_chroot else None, debs)
    where = f" for {suite}" if in_chroot else ""
    progress(f"built {name}{where} in {time.monotonic() - started:.1f} s: "
             + ", ".join(d.name for d in debs))
    return debs


def _cache_key(source_dir: Path, suite: str | None) -> str:
    """A digest of everything a build reads from the source tree (as copy_source copies it)."""
    digest = hashlib.sha256(f"{suite}\0{Path('/etc/debian_version').read_text()}".encode())
    for path in sorted(source_dir.rglob("*")):
        relative = path.relative_to(source_dir)
        if any(is_junk(part) for part in relative.parts) or path.is_dir():
            continue
        digest.update(f"{relative}\0{path.stat().st_mode & 0o777}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _cache_dir(source_dir: Path, suite: str | None) -> Path | None:
    """Opt-in for developers (VATOOLS_BUILD_CACHE=DIR): debs of an unchanged source are reused."""
    root = os.environ.get("VATOOLS_BUILD_CACHE")
    return Path(root) / _cache_key(source_dir, suite) if root else None


def _cached_debs(source_dir: Path, suite: str | None, out_dir: Path) -> list[Path]:
    cache = _cache_dir(source_dir, suite)
    if cache is None or not cache.is_dir():
        return []
    debs = []
    for deb in sorted(cache.glob("*.deb")):
        shutil.copy2(deb, out_dir / deb.name)
        debs.append(out_dir / deb.name)
    return debs


def _remember_debs(source_dir: Path, suite: str | None, debs: list[Path]) -> None:
    cache = _cache_dir(source_dir, suite)
    if cache is None:
        return
    partial = cache.with_name(cache.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for deb in debs:
        shutil.copy2(deb, partial / deb.name)
    partial.rename(cache)


def _logged(log_file: Path, argv: list[str], *, target: Target = HOST,
            env: dict[str, str] | None = None, cwd: Path | None = None,
            hint: str | None = None) -> str:
    """Run a build step, append its output to the log, and fail with the log's path."""
    started = time.monotonic()
    try:
        result = run(argv, target=target, env=env, cwd=cwd, hint=hint)
    except CommandFailed as failed:
        _append(log_file, argv, failed.output, time.monotonic() - started)
        where = "" if target.is_host else f"(in {target.root}) "
        raise BuildFailed(failed, argv, where, log_file) from None
    _append(log_file, argv, result.stdout, time.monotonic() - started)
    return result.stdout


def _append(log_file: Path, argv: list[str], output: str, seconds: float) -> None:
    with log_file.open("a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(argv)}\n{output}\n[{seconds:.1f} s]\n")


def _built_debs(directory: Path, source: str) -> list[Path]:
    debs = sorted(directory.glob("*.deb"))
    if not debs:
        raise VatoolsError(f"dpkg-buildpackage of {source} succeeded but made no .deb",
                           hint="check debian/control lists at least one binary package")
    return debs


def _build_here(source_dir: Path, name: str, work: Path, log_file: Path) -> list[Path]:
    tree = work / name
    copy_source(source_dir, tree)
    _logged(log_file, ["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=tree, env=BUILD_ENV,
            hint=f"install the build dependencies: apt-get build-dep {source_dir}")
    return _built_debs(work, name)


def _build_in_chroot(source_dir: Path, name: str, suite: str, work: Path,
                     log_file: Path) -> list[Path]:
    root = work / "chroot"
    _logged(log_file, ["cp", "-a", str(minbase_tree(suite, log_file)), str(root)])
    target = Target(root)
    _prepare_chroot(root)
    copy_source(source_dir, root / "build" / name)
    _logged(log_file, ["apt-get", "update"], target=target, env=CHROOT_ENV)
    # unsafe-io: no fsync per unpacked file; the chroot is thrown away after the build.
    _logged(log_file, ["apt-get", "-o", "DPkg::Options::=--force-unsafe-io", "satisfy", "-y",
                       "--no-install-recommends", build_depends(source_dir)],
            target=target, env=CHROOT_ENV)
    # The build gets its own /proc in private mount and PID namespaces: the mount is never
    # visible on this host, and it vanishes with the build's last process, even one killed
    # by a signal, so removing the chroot can never run through a leftover mount.
    _logged(log_file, ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
                       "--kill-child", f"--mount-proc={root / 'proc'}", "chroot", str(root),
                       "env", "-C", f"/build/{name}", "dpkg-buildpackage", "-us", "-uc", "-b"],
            env=_build_env())
    return _built_debs(root / "build", name)


def _prepare_chroot(root: Path) -> None:
    """Keep services from starting, and give the build this host's resolver and TLS trust.

    A build that downloads (pip, from PyPI) must trust what this host trusts: networks that
    inspect TLS add their own certificate authority to the host's bundle, not to the chroot's.
    """
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    resolv = root / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    shutil.copyfile("/etc/resolv.conf", resolv)
    if Path(HOST_CA_BUNDLE).is_file():
        (root / HOST_CA_INSIDE.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HOST_CA_BUNDLE, root / HOST_CA_INSIDE.lstrip("/"))


def _build_env() -> dict[str, str]:
    """The build's environment: the host's TLS trust (copied in) and proxy settings."""
    env = CHROOT_ENV | BUILD_ENV
    if Path(HOST_CA_BUNDLE).is_file():
        env.update(PIP_CERT=HOST_CA_INSIDE, SSL_CERT_FILE=HOST_CA_INSIDE,
                   REQUESTS_CA_BUNDLE=HOST_CA_INSIDE)
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def minbase_tree(suite: str, log_file: Path) -> Path:
    """The cached minbase tree of a suite, made with mmdebstrap on first use."""
    tree = CHROOT_CACHE / suite
    CHROOT_CACHE.mkdir(parents=True, exist_ok=True)
    with open(CHROOT_CACHE / f".{suite}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent builds make the tree once
        if tree.is_dir():
            return tree
        partial = Path(tempfile.mkdtemp(prefix=f".{suite}-", dir=CHROOT_CACHE))
        partial.chmod(0o755)  # the tree's root: apt's _apt user must get through it
        try:
            _logged(log_file, ["mmdebstrap", "--variant=minbase", suite, str(partial)])
            partial.rename(tree)  # whole or not at all: a half-made tree is never used
        finally:
            remove_tree(partial)
    return tree


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below path, as the kernel lists them."""
    prefix = str(path.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return found


def remove_tree(path: Path) -> None:
    """Delete a work tree, but never through a mount point (a bound /dev is the host's)."""
    if not path.exists():
        return
    mounted = mounts_under(path)
    if mounted:
        raise VatoolsError(f"not removing {path}: still mounted: {', '.join(mounted)}",
                           hint=f"umount {' '.join(reversed(mounted))} && rm -rf {path}")
    # --one-file-system: a mount appearing after the check is still not crossed.
    run(["rm", "-rf", "--one-file-system", str(path)])
