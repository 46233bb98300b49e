"""A Debian tree used as a throwaway "server": run commands in it, read it, remove it safely.

Removing a chroot is the dangerous moment: `rm -rf` through a bind-mounted /dev or /proc
deletes the host's files. `Chroot.remove()` therefore unmounts everything under the tree
(deepest first), checks /proc/self/mountinfo again, and refuses when anything is left.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import signal
import subprocess
from pathlib import Path, PurePosixPath
from typing import Iterator, Sequence

CHROOT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

# Maintainer scripts call invoke-rc.d, which asks this script; 101 = "action not allowed",
# so installing a package never starts its service in the chroot (or, worse, on the host).
POLICY_RC_D = (
    "#!/bin/sh\n# vatools test harness: never start services from maintainer scripts.\nexit 101\n"
)

# What dpkg and debconf keep: equal digests before and after mean "nothing was changed".
STATE_FILES = (
    "/var/lib/dpkg/status",
    "/var/cache/debconf/config.dat",
    "/var/cache/debconf/passwords.dat",
    "/var/cache/debconf/templates.dat",
)


class ChrootCommandFailed(subprocess.CalledProcessError):
    """A command in a chroot exited non-zero; the message carries the tail of its output."""

    def __str__(self) -> str:
        lines = ((self.stdout or "") + (self.stderr or "")).strip().splitlines()
        tail = "\n".join(lines[-25:])
        return f"{' '.join(map(str, self.cmd))} exited with status {self.returncode}:\n{tail}"


class UnsafeRemoval(Exception):
    """Something is still mounted under a tree we were asked to delete."""


def _unescape_mountinfo(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes."""
    for escaped, plain in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(escaped, plain)
    return field


def mount_points(mountinfo: str) -> list[Path]:
    """The mount points listed in the text of a /proc/PID/mountinfo file (field 5)."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) > 4:
            points.append(Path(_unescape_mountinfo(fields[4])))
    return points


def mounts_under(root: Path, mountinfo: str | None = None) -> list[Path]:
    """Mount points at or below `root`, deepest first (the order to unmount them in)."""
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    top = Path(os.path.realpath(root))
    found = {p for p in mount_points(mountinfo) if p == top or top in p.parents}
    return sorted(found, key=lambda p: (len(p.parts), str(p)), reverse=True)


def unmount_all(root: Path) -> None:
    """Unmount everything at or below `root`, deepest first; raise if anything stays mounted."""
    for point in mounts_under(root):
        # Stacked mounts on one point need one umount each; stop when it no longer helps.
        while point in mounts_under(root):
            done = subprocess.run(["umount", str(point)], capture_output=True, text=True)
            if done.returncode != 0:
                break
    left = mounts_under(root)
    if left:
        raise UnsafeRemoval(
            f"still mounted under {root}: {', '.join(map(str, left))}; "
            "not removing anything. Stop what uses them, umount them, then remove the tree."
        )


class Chroot:
    """A Debian root directory that commands run in with `chroot` and a clean environment."""

    def __init__(self, root: Path, owned: Path | None = None) -> None:
        self.root = Path(root)
        # What remove() deletes: the tree, or the directory holding an overlay's layers.
        self.owned = Path(owned) if owned is not None else self.root

    def __repr__(self) -> str:
        return f"Chroot({str(self.root)!r})"

    def path(self, inside: str) -> Path:
        """Where a path of the chroot lies as seen from the host."""
        return self.root / inside.lstrip("/")

    def resolve(self, inside: str) -> Path:
        """Like path(), with symlinks followed inside the tree.

        An absolute link such as /var/run -> /run must lead to the tree's /run, not the host's.
        """
        pending = list(PurePosixPath("/", inside).parts[1:])
        current = PurePosixPath("/")
        hops = 0
        while pending:
            candidate = current / pending.pop(0)
            host = self.path(str(candidate))
            if not host.is_symlink():
                current = candidate
                continue
            hops += 1
            if hops > 40:
                raise OSError(f"too many symlinks resolving {inside} in {self.root}")
            target = PurePosixPath(os.readlink(host))
            # Restart from the tree's root (absolute link) or the link's directory (relative).
            base = PurePosixPath("/") if target.is_absolute() else current
            joined = PurePosixPath(posixpath.normpath(str(base / target)))
            pending = list(joined.parts[1:]) + pending
            current = PurePosixPath("/")
        return self.path(str(current))

    def read_bytes(self, inside: str) -> bytes:
        return self.resolve(inside).read_bytes()

    def read_text(self, inside: str) -> str:
        return self.resolve(inside).read_text()

    def write_text(self, inside: str, text: str, mode: int = 0o644) -> None:
        target = self.resolve(inside)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def argv(self, argv: Sequence[str], env: dict[str, str] | None = None) -> list[str]:
        """The host command line that runs `argv` inside, inheriting nothing of our environment."""
        variables = {"PATH": CHROOT_PATH, "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
        variables.update(env or {})
        assignments = [f"{key}={value}" for key, value in variables.items()]
        return ["env", "-i", *assignments, "chroot", str(self.root), *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
        timeout: float | None = 1800,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside; text stdout and stderr are captured.

        On timeout the whole process group is killed (apt leaves dpkg and maintainer scripts
        behind otherwise) and subprocess.TimeoutExpired is raised.
        """
        full = self.argv(argv, env)
        proc = subprocess.Popen(
            full,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group we started, and only it
            proc.communicate()
            raise
        if check and proc.returncode != 0:
            raise ChrootCommandFailed(proc.returncode, full, out, err)
        return subprocess.CompletedProcess(full, proc.returncode, out, err)

    def install_policy_rc_d(self) -> None:
        self.write_text("/usr/sbin/policy-rc.d", POLICY_RC_D, mode=0o755)

    def state_digest(self) -> dict[str, str]:
        """sha256 of dpkg's status and debconf's databases ("missing" for an absent file)."""
        digests = {}
        for inside in STATE_FILES:
            file = self.resolve(inside)
            digests[inside] = (
                hashlib.sha256(file.read_bytes()).hexdigest() if file.exists() else "missing"
            )
        return digests

    def mounts(self) -> list[Path]:
        """Mount points inside the tree, deepest first; not its root (an overlay's own mount)."""
        top = Path(os.path.realpath(self.root))
        return [point for point in mounts_under(self.root) if point != top]

    @contextlib.contextmanager
    def mount_proc(self) -> Iterator[None]:
        """/proc mounted inside for the duration (apache2ctl wants it)."""
        proc_dir = self.path("/proc")
        proc_dir.mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "proc", "proc", str(proc_dir)], check=True)
        try:
            yield
        finally:
            subprocess.run(["umount", str(proc_dir)], check=True)

    def remove(self) -> None:
        """Unmount all below (deepest first), then delete the tree; refuse if a mount stays."""
        if not self.owned.exists():
            return
        if Path(os.path.realpath(self.owned)) == Path("/"):
            raise UnsafeRemoval("refusing to remove /")
        unmount_all(self.owned)
        # --one-file-system: even a mount appearing after the check is not crossed.
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.owned)], check=True)


def overlay_tree(lower: Path, dest: Path) -> Chroot:
    """A private writable view of a tree that never changes again (a cached pristine or server
    tree): an overlayfs mount at dest/root, its changes in dest/upper.  Milliseconds, where a
    copy takes seconds; remove() unmounts it, then deletes dest."""
    if dest.exists():
        raise FileExistsError(f"{dest} exists; remove it first")
    root, upper, work = dest / "root", dest / "upper", dest / "work"
    for directory in (root, upper, work):
        directory.mkdir(parents=True)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(root)], check=True)
    chroot = Chroot(root, owned=dest)
    chroot.install_policy_rc_d()
    return chroot


def copy_tree(source: Path, dest: Path) -> Chroot:
    """A private copy of a tree (reflinked where the filesystem can), with policy-rc.d in place."""
    if dest.exists():
        raise FileExistsError(f"{dest} exists; remove it first")
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(dest)], check=True)
    chroot = Chroot(dest)
    chroot.install_policy_rc_d()
    return chroot
