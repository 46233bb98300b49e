"""The operations the root helper performs for the web process: one method per allow-listed
operation of protocol.OPERATIONS, bound to its name with @implements(NAME). The binding is
checked when this module loads: a name that is not allow-listed, or parameters that are not
exactly the operation's arguments, raise TypeError; `unbound()` names the allow-listed
operations still without an implementation (a unit test requires none).

This module runs as root; the web process never imports it (protocol.py is what both share).
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import os
import pwd
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from vatools.aptrun import APT_ENV, follow
from vatools.control.protocol import OPERATIONS, BadRequest
from vatools.control.rootfs import OpenedPath, open_dir, open_regular, private_dir
from vatools.errors import CommandFailed, VatoolsError
from vatools.run import HOST, Target, run, start

Emit = Callable[[float, str], None]  # progress: percent (0-100), text
Method = TypeVar("Method", bound=Callable[..., Any])
STATS_HOOK = "control-stats"
# Root's own directory (the helper unit's StateDirectory): a backup is written here, where the
# web user can change no name, and only then handed over into the web user's backups directory.
STAGING_DIR = Path("/var/lib/appliance-control-helper")

# Operation name -> the method of Operations that performs it (filled by @implements).
IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {}


def implements(name: str) -> Callable[[Method], Method]:
    """Bind a method `(self, emit, **arguments)` of Operations to the allow-listed operation
    `name`; its parameters after (self, emit) must be the operation's arguments.

    >>> @implements("sh")
    ... def op_sh(self: Operations, emit: Emit, c: str) -> str: ...
    Traceback (most recent call last):
    ...
    TypeError: op_sh: 'sh' is not an allow-listed operation (protocol.OPERATIONS)
    >>> @implements("set-relayhost")
    ... def op_relay(self: Operations, emit: Emit, host: str) -> str: ...
    Traceback (most recent call last):
    ...
    TypeError: op_relay: parameters (host) are not set-relayhost's arguments (relayhost)
    """
    def bind(method: Method) -> Method:
        where = method.__qualname__
        if name not in OPERATIONS:
            raise TypeError(f"{where}: {name!r} is not an allow-listed operation "
                            "(protocol.OPERATIONS)")
        parameters = list(inspect.signature(method).parameters.values())[2:]  # self, emit
        names = [p.name for p in parameters]
        if (sorted(names) != sorted(OPERATIONS[name].args)
                or any(p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                       or p.default is not p.empty for p in parameters)):
            raise TypeError(f"{where}: parameters ({', '.join(names)}) are not {name}'s "
                            f"arguments ({', '.join(OPERATIONS[name].args)})")
        if name in IMPLEMENTATIONS:
            raise TypeError(f"{where}: {name} is implemented already by "
                            f"{IMPLEMENTATIONS[name].__qualname__}")
        IMPLEMENTATIONS[name] = method
        return method
    return bind


def unbound() -> list[str]:
    """The allow-listed operations without an implementation (none, when all is well)."""
    return sorted(set(OPERATIONS) - set(IMPLEMENTATIONS))


def parse_upgrades(simulation: str) -> list[dict[str, str]]:
    """The upgrades in `apt-get --simulate upgrade` output (its "Inst" lines).

    >>> parse_upgrades("Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable [all])")
    [{'package': 'tzdata', 'installed': '2024a-0+deb12u1', 'candidate': '2025b-0+deb12u1', \
'origin': 'Debian:12.11/stable [all]'}]
    """
    upgrades = []
    for line in simulation.splitlines():
        m = re.match(r"Inst (\S+) \[([^\]]+)\] \((\S+) (.*)\)$", line)
        if m:
            upgrades.append({"package": m[1], "installed": m[2], "candidate": m[3],
                             "origin": m[4]})
    return upgrades


def systemd_running() -> bool:
    """Whether systemd runs this machine (sd_booted(3)); not in a chroot or container without."""
    return os.path.isdir("/run/systemd/system")


def apt_argv(argv: list[str], under_systemd: bool, unit: str) -> list[str]:
    """apt-get's command line. Under systemd, apt, dpkg and the maintainer scripts run in a
    transient scope of their own, outside the helper's cgroup: stopping or restarting the
    helper's service (an upgrade of appliance-control does, unless told not to) does not
    kill them halfway. Without systemd (a chroot) apt-get runs directly.

    >>> apt_argv(["update"], False, "x")
    ['apt-get', 'update']
    >>> apt_argv(["update"], True, "appliance-control-apt-1")  # doctest: +NORMALIZE_WHITESPACE
    ['systemd-run', '--scope', '--collect', '--quiet', '--unit=appliance-control-apt-1',
     '--description=apt-get run by appliance-control-helper', '--', 'apt-get', 'update']
    """
    if not under_systemd:
        return ["apt-get", *argv]
    return ["systemd-run", "--scope", "--collect", "--quiet", f"--unit={unit}",
            "--description=apt-get run by appliance-control-helper", "--", "apt-get", *argv]


class Operations:
    """The operations themselves (run as root). `backups` is the directory the web user reads;
    `staging` root's own directory where a backup is written before it is handed over."""

    def __init__(self, backups: Path, web_user: str, staging: Path = STAGING_DIR,
                 target: Target = HOST) -> None:
        self.backups = backups
        self.target = target  # the system a backup is restored onto (a tree in tests)
        self.web_user = web_user
        self.staging = staging
        # Set (by helper.serve) when an upgrade replaced the helper's own code: the helper
        # then exits once idle, and systemd's socket starts the new code on the next request.
        self.restart_wanted = False
        self._apt_runs = 0

    def perform(self, op: str, args: dict[str, str], emit: Emit) -> Any:
        """Run `op` with arguments validated by protocol.validate."""
        method = IMPLEMENTATIONS.get(op)
        if method is None:
            raise BadRequest(f"{op} is allow-listed but has no implementation",
                             hint="a bug of appliance-control: report it")
        return method(self, emit, **args)

    # -- apt ---------------------------------------------------------------------------------
    def _apt(self, argv: list[str], emit: Emit) -> str:
        """apt-get with progress from its status fd; errors carry apt's output."""
        read_fd, write_fd = os.pipe()
        self._apt_runs += 1
        full = apt_argv(["-o", f"APT::Status-Fd={write_fd}", *argv], systemd_running(),
                        f"appliance-control-apt-{os.getpid()}-{self._apt_runs}")
        proc = start(full, env=APT_ENV, stdout=subprocess.PIPE, pass_fds=(write_fd,))
        os.close(write_fd)
        assert proc.stdout is not None
        with proc.stdout:
            output = follow(proc, read_fd, lambda status: emit(status.percent, status.text),
                            output_fd=proc.stdout.fileno()).output
        text = output.decode("utf-8", "replace")
        if proc.returncode != 0:
            raise CommandFailed(full, proc.returncode, text)
        return text

    @implements("ping")
    def op_ping(self, emit: Emit) -> str:
        return "pong"

    @implements("apt-update")
    def op_apt_update(self, emit: Emit) -> str:
        emit(0, "Reading the package lists from the repositories")
        out = self._apt(["update"], emit)
        emit(100, "Package lists updated")
        return out

    @implements("apt-upgrade")
    def op_apt_upgrade(self, emit: Emit) -> str:
        emit(0, "Installing updates")
        out = self._apt(["upgrade", "--yes", "-o", "Dpkg::Options::=--force-confdef",
                         "-o", "Dpkg::Options::=--force-confold"], emit)
        emit(100, "Updates installed")
        return out

    @implements("list-upgrades")
    def op_list_upgrades(self, emit: Emit) -> list[dict[str, str]]:
        # A simulation: apt-get computes the upgrade and changes nothing.
        return parse_upgrades(run(["apt-get", "--simulate", "upgrade"]).stdout)

    # -- backups -------------------------------------------------------------------------------
    def _no_backup(self, name: str) -> VatoolsError:
        return VatoolsError(f"no backup named {name} in {self.backups}",
                            hint="reload the backups page: it lists the backups there")

    @contextlib.contextmanager
    def _backups_dir(self) -> Iterator[int]:
        """The web user's backups directory, as a descriptor reached without symlinks."""
        fd = open_dir(self.backups)
        try:
            yield fd
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _backup_path(self, name: str) -> Iterator[Path]:
        """The backup `name`, opened and checked (a regular file, no symlink): the path
        given reads that very file, whatever the web user renames meanwhile."""
        with self._backups_dir() as directory:
            try:
                fd = open_regular(directory, name, self.backups)
            except FileNotFoundError:
                raise self._no_backup(name) from None
        try:
            yield OpenedPath.of(self.backups / name, fd)
        finally:
            os.close(fd)

    def _hand_over(self, staging: int, name: str) -> None:
        """Give the finished backup `name` in root's staging directory to the web user and
        put it into the backups directory, under a name that must not exist there yet."""
        account = pwd.getpwnam(self.web_user)
        fd = open_regular(staging, name, self.staging)
        try:
            os.fchown(fd, account.pw_uid, account.pw_gid)
            os.fchmod(fd, 0o640)
            with self._backups_dir() as backups:
                try:  # linkat: never follows, never replaces
                    os.link(name, name, src_dir_fd=staging, dst_dir_fd=backups,
                            follow_symlinks=False)
                except FileExistsError:
                    raise VatoolsError(f"{self.backups / name} exists already",
                                       hint="remove it, then back up again") from None
                except OSError as e:
                    if e.errno != errno.EXDEV:
                        raise
                    self._copy_into(fd, backups, name, account)
        finally:
            os.close(fd)

    def _copy_into(self, source: int, backups: int, name: str, account: pwd.struct_passwd) -> None:
        """The backup copied into a new file of the backups directory (staging and backups
        on two file systems): created exclusively, written and handed over by descriptor."""
        try:
            out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                          0o600, dir_fd=backups)
        except FileExistsError:
            raise VatoolsError(f"{self.backups / name} exists already",
                               hint="remove it, then back up again") from None
        try:
            with open(source, "rb", closefd=False) as reader, \
                    open(out, "wb", closefd=False) as writer:
                reader.seek(0)
                shutil.copyfileobj(reader, writer, 1 << 20)
                writer.flush()
                os.fsync(out)
            os.fchown(out, account.pw_uid, account.pw_gid)
            os.fchmod(out, 0o640)
        except BaseException:
            os.unlink(name, dir_fd=backups)
            raise
        finally:
            os.close(out)

    @implements("backup-create")
    def op_backup_create(self, emit: Emit) -> dict[str, Any]:
        from vatools import appliance
        from vatools.backup.create import create_backup, default_output
        from vatools.backup.manifest import BackupManifest
        import datetime

        manifest = BackupManifest.of(appliance.installed(HOST))
        name = default_output(manifest, datetime.datetime.now(datetime.timezone.utc)).name
        emit(0, f"Backing up {manifest.appliance}")
        with self._backups_dir():
            pass  # refuse a replaced backups directory before the long work
        staging = private_dir(self.staging)
        try:
            # Leftovers of an interrupted run are root's own: remove them.
            for leftover in (name, name + ".partial"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover, dir_fd=staging)
            create_backup(HOST, self.staging / name,
                          lambda done, total: emit(100 * done / max(total, 1),
                                                   f"{done // 1000} of {total // 1000} kB"))
            try:
                self._hand_over(staging, name)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=staging)
        finally:
            os.close(staging)
        emit(100, "Backup written")
        return {"name": name}

    @implements("backup-verify")
    def op_backup_verify(self, emit: Emit, name: str) -> str:
        from vatools.backup.archive import BackupFile

        with self._backup_path(name) as path, BackupFile.open(path) as backup:
            sizes = backup.verify(lambda d, t: emit(100 * d / max(t, 1), "verifying"))
            entries = sum(s.entries for s in sizes.values())
            return (f"OK: {backup.info.appliance} {backup.info.appliance_version}, "
                    f"{entries} entries, all checksums match; "
                    f"{backup.authenticity(self.target).describe()}")

    @implements("backup-restore")
    def op_backup_restore(self, emit: Emit, name: str, trust_foreign: str) -> str:
        from vatools.backup.restore import plan_restore, restore

        emit(0, "Verifying the backup")
        with self._backup_path(name) as path:
            # A backup this system did not make is refused, naming the risk, unless the user
            # confirmed it (the Backups page's second box); see backup/authenticity.py.
            plan = plan_restore(path, self.target,
                                lambda d, t: emit(50 * d / max(t, 1), "verifying"),
                                trust_foreign=trust_foreign == "yes")
            said = plan.describe()
            restore(plan, self.target, lambda d, t: emit(50 + 50 * d / max(t, 1), "restoring"),
                    said.append)
        emit(100, "Restored")
        return "\n".join(said)

    @implements("backup-delete")
    def op_backup_delete(self, emit: Emit, name: str) -> str:
        with self._backups_dir() as directory:
            try:
                mode = os.lstat(name, dir_fd=directory).st_mode
            except FileNotFoundError:
                raise self._no_backup(name) from None
            if not stat.S_ISREG(mode):
                raise self._no_backup(name)
            os.unlink(name, dir_fd=directory)  # unlink never follows a symlink
        return f"{name} deleted"

    # -- services and the machine -------------------------------------------------------------
    @implements("restart-services")
    def op_restart_services(self, emit: Emit) -> str:
        from vatools import appliance
        from vatools.backup import actions

        services = appliance.installed(HOST).services
        for unit in services:
            emit(0, f"restarting {unit}")
            actions.stop_services(HOST, (unit,))
            actions.start_services(HOST, (unit,))
        return "restarted: " + (" ".join(services) or "(the appliance declares no services)")

    @implements("reboot")
    def op_reboot(self, emit: Emit) -> str:
        run(["systemctl", "reboot"], hint="is systemd running this machine?")
        return "rebooting"

    @implements("poweroff")
    def op_poweroff(self, emit: Emit) -> str:
        run(["systemctl", "poweroff"], hint="is systemd running this machine?")
        return "shutting down"

    @implements("appliance-stats")
    def op_appliance_stats(self, emit: Emit) -> dict[str, str]:
        """The appliance's own figures (wiki pages...): its root-owned hook
        /usr/share/vatools/appliances/NAME/control-stats prints one JSON object."""
        import json

        from vatools import appliance

        installed = appliance.installed(HOST)
        hook = Path(installed.hooks_dir) / STATS_HOOK
        if not hook.is_file() or hook.stat().st_uid != 0 or not os.access(hook, os.X_OK):
            raise VatoolsError(f"{installed.name} has no statistics hook {hook}")
        output = run([str(hook)]).stdout
        try:
            data = json.loads(output)
            return {str(key): str(value) for key, value in dict(data).items()}
        except (ValueError, TypeError):
            raise CommandFailed([str(hook)], 0, output, "the hook must print one JSON object") from None

    @implements("set-relayhost")
    def op_set_relayhost(self, emit: Emit, relayhost: str) -> str:
        from vatools.control import settings

        settings.set_relayhost(relayhost)
        reload = run(["postfix", "reload"], check=False)
        note = "" if reload.returncode == 0 else f" (postfix not reloaded: {reload.stdout.strip()})"
        return f"relayhost = {relayhost}{note}"

    @implements("health-check")
    def op_health_check(self, emit: Emit) -> dict[str, Any]:
        """The appliance's health checks (vatools.health) as JSON; a dashboard reloaded by many
        clients runs them once per HEALTH_CACHE_SECONDS."""
        return HEALTH_CACHE.get()  # type: ignore[no-any-return]


# health-check: probes wait HEALTH_DEADLINE seconds at most (a page is waiting), and the
# results are reused for HEALTH_CACHE_SECONDS.
HEALTH_DEADLINE = 3
HEALTH_CACHE_SECONDS = 15


def _health_of_host() -> dict[str, Any]:
    from vatools import health

    return health.check_installed(HOST, deadline=HEALTH_DEADLINE).to_json()


def new_health_cache() -> Any:
    """An empty cache of the host's health-check results."""
    from vatools.control.sysinfo import Cached

    return Cached(HEALTH_CACHE_SECONDS, _health_of_host)


HEALTH_CACHE = new_health_cache()
