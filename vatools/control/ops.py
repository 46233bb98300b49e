"""The root helper's allow-list: every operation the web process may ask for, with its typed
arguments. Nothing else runs as root on the web's behalf; no argument reaches a shell.

>>> validate("backup-verify", {"name": "wiki-2026.abf"})
{'name': 'wiki-2026.abf'}
>>> validate("backup-verify", {"name": "../etc/shadow"})
Traceback (most recent call last):
...
vatools.control.ops.BadRequest: backup-verify: name '../etc/shadow' is not valid: \
a backup file name (letters, digits, . _ -, ending in .abf)
>>> validate("sh", {})
Traceback (most recent call last):
...
vatools.control.ops.BadRequest: unknown operation 'sh'
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vatools.aptrun import APT_ENV, follow
from vatools.errors import CommandFailed, VatoolsError
from vatools.run import HOST, run, start

Emit = Callable[[float, str], None]  # progress: percent (0-100), text


class BadRequest(VatoolsError):
    """The request is not one of the allowed operations with valid arguments."""


@dataclass(frozen=True)
class Arg:
    pattern: str
    describe: str


BACKUP_NAME = Arg(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.abf",
                  "a backup file name (letters, digits, . _ -, ending in .abf)")
# host, [host] (no MX lookup), either with :port; empty means "deliver directly".
RELAYHOST = Arg(r"(|\[[A-Za-z0-9.-]{1,253}\](:[0-9]{1,5})?|[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?)",
                "empty, HOST, [HOST] or either with :PORT")

SCHEMAS: dict[str, dict[str, Arg]] = {
    "ping": {},
    "apt-update": {},
    "apt-upgrade": {},
    "list-upgrades": {},
    "backup-create": {},
    "backup-verify": {"name": BACKUP_NAME},
    "backup-restore": {"name": BACKUP_NAME},
    "backup-delete": {"name": BACKUP_NAME},
    "restart-services": {},
    "reboot": {},
    "poweroff": {},
    "set-relayhost": {"relayhost": RELAYHOST},
    "appliance-stats": {},
}
STATS_HOOK = "control-stats"


def validate(op: object, args: object) -> dict[str, str]:
    if not isinstance(op, str) or op not in SCHEMAS:
        raise BadRequest(f"unknown operation {op!r}")
    if not isinstance(args, dict):
        raise BadRequest(f"{op}: arguments must be an object")
    schema = SCHEMAS[op]
    extra = sorted(set(args) - set(schema))
    if extra:
        raise BadRequest(f"{op}: unexpected argument {', '.join(map(str, extra))}")
    for name, arg in schema.items():
        value = args.get(name)
        if not isinstance(value, str) or not re.fullmatch(arg.pattern, value):
            raise BadRequest(f"{op}: {name} {value!r} is not valid: {arg.describe}")
    return dict(args)


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


class Operations:
    """The operations themselves (run as root). `backups` is the directory the web user reads."""

    def __init__(self, backups: Path, web_user: str) -> None:
        self.backups = backups
        self.web_user = web_user

    def perform(self, op: str, args: dict[str, str], emit: Emit) -> Any:
        method = getattr(self, "op_" + op.replace("-", "_"))
        return method(emit, **args)

    # -- apt ---------------------------------------------------------------------------------
    def _apt(self, argv: list[str], emit: Emit) -> str:
        """apt-get with progress from its status fd; errors carry apt's output."""
        read_fd, write_fd = os.pipe()
        full = ["apt-get", "-o", f"APT::Status-Fd={write_fd}", *argv]
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

    def op_ping(self, emit: Emit) -> str:
        return "pong"

    def op_apt_update(self, emit: Emit) -> str:
        emit(0, "Reading the package lists from the repositories")
        out = self._apt(["update"], emit)
        emit(100, "Package lists updated")
        return out

    def op_apt_upgrade(self, emit: Emit) -> str:
        emit(0, "Installing updates")
        out = self._apt(["upgrade", "--yes", "-o", "Dpkg::Options::=--force-confdef",
                         "-o", "Dpkg::Options::=--force-confold"], emit)
        emit(100, "Updates installed")
        return out

    def op_list_upgrades(self, emit: Emit) -> list[dict[str, str]]:
        # A simulation: apt-get computes the upgrade and changes nothing.
        return parse_upgrades(run(["apt-get", "--simulate", "upgrade"]).stdout)

    # -- backups -------------------------------------------------------------------------------
    def _backup_path(self, name: str) -> Path:
        path = self.backups / name
        if path.is_symlink() or not path.is_file():
            raise VatoolsError(f"no backup named {name} in {self.backups}")
        return path

    def op_backup_create(self, emit: Emit) -> dict[str, Any]:
        from vatools import appliance
        from vatools.backup.create import create_backup, default_output
        from vatools.backup.manifest import BackupManifest
        import datetime

        manifest = BackupManifest.of(appliance.installed(HOST))
        name = default_output(manifest, datetime.datetime.now(datetime.timezone.utc)).name
        emit(0, f"Backing up {manifest.appliance}")
        created = create_backup(HOST, self.backups / name,
                                lambda done, total: emit(100 * done / max(total, 1),
                                                         f"{done // 1000} of {total // 1000} kB"))
        account = pwd.getpwnam(self.web_user)
        os.chown(created.path, account.pw_uid, account.pw_gid)
        os.chmod(created.path, 0o640)
        emit(100, "Backup written")
        return {"name": created.path.name}

    def op_backup_verify(self, emit: Emit, name: str) -> str:
        from vatools.backup.archive import BackupFile

        with BackupFile.open(self._backup_path(name)) as backup:
            sizes = backup.verify(lambda d, t: emit(100 * d / max(t, 1), "verifying"))
            entries = sum(s.entries for s in sizes.values())
            return (f"OK: {backup.info.appliance} {backup.info.appliance_version}, "
                    f"{entries} entries, all checksums match")

    def op_backup_restore(self, emit: Emit, name: str) -> str:
        from vatools.backup.restore import plan_restore, restore

        emit(0, "Verifying the backup")
        plan = plan_restore(self._backup_path(name), HOST,
                            lambda d, t: emit(50 * d / max(t, 1), "verifying"))
        said = plan.describe()
        restore(plan, HOST, lambda d, t: emit(50 + 50 * d / max(t, 1), "restoring"), said.append)
        emit(100, "Restored")
        return "\n".join(said)

    def op_backup_delete(self, emit: Emit, name: str) -> str:
        self._backup_path(name).unlink()
        return f"{name} deleted"

    # -- services and the machine -------------------------------------------------------------
    def op_restart_services(self, emit: Emit) -> str:
        from vatools import appliance
        from vatools.backup import actions

        services = appliance.installed(HOST).services
        for unit in services:
            emit(0, f"restarting {unit}")
            actions.stop_services(HOST, (unit,))
            actions.start_services(HOST, (unit,))
        return "restarted: " + (" ".join(services) or "(the appliance declares no services)")

    def op_reboot(self, emit: Emit) -> str:
        run(["systemctl", "reboot"], hint="is systemd running this machine?")
        return "rebooting"

    def op_poweroff(self, emit: Emit) -> str:
        run(["systemctl", "poweroff"], hint="is systemd running this machine?")
        return "shutting down"

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

    def op_set_relayhost(self, emit: Emit, relayhost: str) -> str:
        from vatools.control import settings

        settings.set_relayhost(relayhost)
        reload = run(["postfix", "reload"], check=False)
        note = "" if reload.returncode == 0 else f" (postfix not reloaded: {reload.stdout.strip()})"
        return f"relayhost = {relayhost}{note}"
