"""vainstall and valist on another server, over the system's OpenSSH.

The user's own `ssh` runs every command: their ~/.ssh/config, agent and known_hosts apply, and
nothing here stores a key or a password.  A server is named `[USER@]HOST[:PORT]`:

>>> Host.parse("admin@web1.example.org:2222")
Host(hostname='web1.example.org', user='admin', port=2222)
>>> str(Host.parse("web1"))
'web1'
>>> Host.parse("[2001:db8::5]:22").hostname
'2001:db8::5'

The steps, each one ssh command:

1. `probe`: can we log in, are we root or may we `sudo -n`, which Debian release, is vatools
   there, which appliance is installed.  Failures name the host and get their own exit codes
   (unreachable 10, login refused 11, no root and no sudo 12).
2. `bootstrap` (with --repository): our apt source and keyring written on the server (the keyring
   travels on stdin), `apt-get update`, `apt-get install vatools`; nothing is rewritten when the
   files are already right and vatools is installed.
3. `vainstall`: the server's own vainstall runs with the same options, its output shown as it
   comes.  Secrets never travel as arguments (a process list on either side would show them): a
   seed file and the --set answers go on stdin into 0600 files in a private directory on the
   server, removed afterwards.  The server validates the seed, as a local run does.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vatools import run
from vatools.errors import ExitCode, UsageError, VatoolsError

KEYRING_DIR = "/etc/apt/keyrings"
SOURCES_FILE = "/etc/apt/sources.list.d/vatools.sources"
SUITE_PLACEHOLDER = "{suite}"  # in a --repository URL: the server's Debian release (bookworm, ...)
SSH_FAILED = 255  # ssh's own exit status when it could not run the command


class HostUnreachable(VatoolsError):
    """No SSH connection to the host (name unknown, refused, no route, timeout)."""

    exit_code = ExitCode.UNREACHABLE


class LoginRefused(VatoolsError):
    """The host answered but refused our key, or its host key is unknown or changed."""

    exit_code = ExitCode.LOGIN_REFUSED


class NoPrivilege(VatoolsError):
    """Logged in, but neither root nor allowed `sudo -n`."""

    exit_code = ExitCode.NO_PRIVILEGE


class ConnectionLost(VatoolsError):
    """The connection broke while the server was working: its state is unknown here."""

    exit_code = ExitCode.CONNECTION_LOST


@dataclass(frozen=True)
class Host:
    hostname: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> Host:
        user, at, rest = text.rpartition("@")
        if not at:
            user, rest = "", text
        port: int | None = None
        bracketed = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", rest)
        if bracketed:
            hostname, port_text = bracketed.group(1), bracketed.group(2)
        elif rest.count(":") == 1:
            hostname, _, port_text = rest.partition(":")
        else:
            hostname, port_text = rest, None
        if port_text is not None:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise UsageError(f"--host {text!r}: the port must be a number from 1 to 65535",
                                   hint="for example --host admin@web1:2222")
            port = int(port_text)
        if not hostname or hostname.startswith("-") or (at and not user) or re.search(r"\s", text):
            raise UsageError(f"--host {text!r}: expected [USER@]HOST[:PORT]",
                               hint="for example --host admin@web1.example.org")
        return cls(hostname=hostname, user=user or None, port=port)

    def __str__(self) -> str:
        name = f"[{self.hostname}]" if ":" in self.hostname and self.port else self.hostname
        return (f"{self.user}@" if self.user else "") + name + (f":{self.port}" if self.port else "")

    def ssh_argv(self, command: Sequence[str], *, batch: bool) -> list[str]:
        """The ssh command line that runs `command` (an argv, quoted here) on the host."""
        argv = ["ssh", "-o", "LogLevel=ERROR"]
        if batch:  # nothing may wait for a passphrase or a host-key question nobody sees
            argv += ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15"]
        if self.port:
            argv += ["-p", str(self.port)]
        if self.user:
            argv += ["-l", self.user]
        return [*argv, "--", self.hostname, shlex.join(command)]


@dataclass(frozen=True)
class Facts:
    """What the probe found on the host."""

    root: bool  # logged in as root (else every change goes through sudo -n)
    suite: str  # VERSION_CODENAME of /etc/os-release
    has_vatools: bool
    installed: tuple[str, ...]  # installed appliances (valist --installed)

    def privileged(self, argv: Sequence[str]) -> list[str]:
        return list(argv) if self.root else ["sudo", "-n", "--", *argv]


# Runs as the login user; prints key=value lines.  `sudo -n true` fails at once without a
# password prompt when sudo would ask.
PROBE = r"""
echo "uid=$(id -u)"
. /etc/os-release 2>/dev/null; echo "suite=${VERSION_CODENAME:-}"
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then echo "sudo=missing"
  elif sudo -n true 2>/dev/null; then echo "sudo=ok"
  else echo "sudo=refused"; fi
fi
if command -v valist >/dev/null 2>&1; then
  echo "vatools=yes"
  printf 'installed='; valist --installed --json | tr -d '\n'; echo
fi
"""


def probe(host: Host, *, batch: bool = True, need_root: bool = True) -> Facts:
    # input="": ssh forwards its stdin to the command, and must not eat the user's typed answer.
    done = run.run(host.ssh_argv(["sh", "-c", PROBE], batch=batch), input="", env=_agent(),
                   check=False)
    if done.returncode != 0:
        raise connection_error(host, done.returncode, done.stdout)
    values = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    if "uid" not in values:
        raise HostUnreachable(f"{host}: the login shell printed no answer to the probe",
                              hint=f"check that `ssh {host} id` works:\n{done.stdout.strip()}")
    root = values["uid"] == "0"
    if need_root and not root and values.get("sudo") != "ok":
        why = "sudo is not installed" if values.get("sudo") == "missing" else \
            "sudo asks for a password or refuses"
        raise NoPrivilege(
            f"{host}: logged in as uid {values['uid']}, not root, and {why}",
            hint="log in as root (root@HOST) or allow this user `sudo` without a password"
            " (NOPASSWD in /etc/sudoers.d/); nothing was changed",
        )
    installed: tuple[str, ...] = ()
    if values.get("installed"):
        try:
            installed = tuple(entry["name"] for entry in json.loads(values["installed"]))
        except (ValueError, KeyError, TypeError):
            installed = ()
    return Facts(root=root, suite=values.get("suite", ""), has_vatools=values.get("vatools") == "yes",
                 installed=installed)


def _agent() -> dict[str, str]:
    """The user's ssh-agent (run.clean_env drops the rest of the environment)."""
    return {key: os.environ[key] for key in ("SSH_AUTH_SOCK",) if key in os.environ}


def connection_error(host: Host, returncode: int, output: str) -> VatoolsError:
    """What went wrong with ssh itself, in words, with the exit code that says which kind."""
    said = " ".join(output.strip().splitlines()[-3:]) or f"ssh exited with status {returncode}"
    if "Host key verification failed" in output or "REMOTE HOST IDENTIFICATION HAS CHANGED" in output:
        return LoginRefused(f"{host}: the host key is unknown or has changed ({said})",
                            hint=f"check the key, then add it to known_hosts (ssh {host} once)")
    if "Permission denied" in output or "Too many authentication failures" in output:
        return LoginRefused(f"{host}: login refused ({said})",
                            hint="check the user and that your key (or agent) is in its"
                            " authorized_keys; vatools never asks for a password")
    if returncode == SSH_FAILED:
        return HostUnreachable(f"{host}: cannot connect ({said})",
                               hint="check the name, the port and that sshd runs there")
    return HostUnreachable(f"{host}: the probe failed with status {returncode} ({said})",
                           hint=f"check that `ssh {host} sh -c true` works")


# --- bootstrap: our repository and vatools on a fresh server ---------------------------------

BOOTSTRAP = r"""
set -e
keyring="$1"; sources="$2"
mkdir -p /etc/apt/keyrings
cat > "$keyring.new"; chmod 0644 "$keyring.new"
printf '%s' "$3" > "$sources.new"; chmod 0644 "$sources.new"
status=$(dpkg-query -W -f='${Status}' vatools 2>/dev/null || true)
if cmp -s "$keyring.new" "$keyring" && cmp -s "$sources.new" "$sources" \
   && [ "$status" = "install ok installed" ]; then
  rm -f "$keyring.new" "$sources.new"; echo "bootstrap: unchanged"; exit 0
fi
mv "$keyring.new" "$keyring"; mv "$sources.new" "$sources"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q -o APT::Update::Error-Mode=any
apt-get install -q -y vatools
echo "bootstrap: changed"
"""


def keyring_name(keyring: bytes) -> str:
    """apt reads binary keyrings as *.gpg and armored ones as *.asc only."""
    armored = keyring.lstrip().startswith(b"-----BEGIN PGP")
    return f"{KEYRING_DIR}/vatools.{'asc' if armored else 'gpg'}"


def sources_text(repositories: Sequence[str], keyring_path: str, suite: str) -> str:
    """One deb822 stanza for flat repositories (as `vatools repo build` publishes them)."""
    uris = " ".join(url.replace(SUITE_PLACEHOLDER, suite) for url in repositories)
    return f"Types: deb\nURIs: {uris}\nSuites: ./\nSigned-By: {keyring_path}\n"


def bootstrap(host: Host, facts: Facts, repositories: Sequence[str], keyring: bytes,
              *, batch: bool = True) -> bool:
    """Our repository and vatools on the host; True when anything changed."""
    if SUITE_PLACEHOLDER in " ".join(repositories) and not facts.suite:
        raise VatoolsError(f"{host}: /etc/os-release names no VERSION_CODENAME for {SUITE_PLACEHOLDER}",
                           hint="give the repository URL of the host's release")
    path = keyring_name(keyring)
    sources = sources_text(repositories, path, facts.suite)
    command = facts.privileged(["sh", "-c", BOOTSTRAP, "bootstrap", path, SOURCES_FILE, sources])
    done = run.run(host.ssh_argv(command, batch=batch), input=keyring, env=_agent(), check=False)
    if done.returncode == SSH_FAILED:
        raise connection_error(host, done.returncode, done.stdout)
    if done.returncode != 0:
        tail = "\n".join(done.stdout.strip().splitlines()[-12:])
        raise VatoolsError(f"{host}: installing vatools from {' '.join(repositories)} failed:\n{tail}",
                           hint="check the repository URL and keyring; the server's apt said why above")
    return "bootstrap: changed" in done.stdout


# --- the server's own commands -----------------------------------------------------------------

# Runs on the server as root: stdin is JSON {"seed": text or null, "set": [QUESTION=VALUE...]};
# both go into 0600 files in a private directory, removed whatever happens.
WITH_SECRETS = r"""
import json, os, subprocess, sys, tempfile
given = json.load(sys.stdin)
with tempfile.TemporaryDirectory(prefix="vainstall-remote-") as work:
    argv = ["vainstall"]
    for key, option, text in (("seed", "--seed", given.get("seed")),
                              ("set", "--set-file", "\n".join(given.get("set") or ()) or None)):
        if text is not None:
            path = os.path.join(work, given.get("seed_name") or "seed" if key == "seed" else key)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
                f.write(text + ("" if text.endswith("\n") else "\n"))
            argv += [option, path]
    sys.exit(subprocess.run(argv + sys.argv[1:], stdin=subprocess.DEVNULL).returncode)
"""


def vainstall(host: Host, facts: Facts, options: Sequence[str], *, seed: str | None = None,
              seed_name: str = "seed", overrides: Sequence[str] = (), batch: bool = True) -> int:
    """Run vainstall on the host with `options` (no secrets in them); its output is shown as it
    comes; returns its exit status."""
    payload = json.dumps({"seed": seed, "seed_name": seed_name, "set": list(overrides)})
    command = facts.privileged(["python3", "-c", WITH_SECRETS, *options])
    return _stream(host, command, payload, batch)


def valist(host: Host, options: Sequence[str], *, batch: bool = True) -> int:
    """valist on the host (dpkg's status and apt's lists are readable by anyone: no sudo)."""
    return _stream(host, ["valist", *options], None, batch)


def _stream(host: Host, command: list[str], payload: str | None, batch: bool) -> int:
    returncode = run.stream(host.ssh_argv(command, batch=batch), input=payload, env=_agent())
    if returncode == SSH_FAILED:
        raise ConnectionLost(
            f"{host}: the SSH connection failed during the command",
            hint=f"the host's state is unknown here: `valist --host {host}` shows it, and"
            " /var/log/vatools/vainstall.log there says what happened",
        )
    return returncode


# --- backups: made on the server, copied here, removed there ---------------------------------

BACKUP = r"""
set -e
dir=$(mktemp -d /var/tmp/vatools-backup-XXXXXX)
cd "$dir"
if ! vatools backup create; then rm -rf "$dir"; exit 3; fi
echo "backup-file=$dir/$(ls "$dir")"
"""


def backup_create(host: Host, facts: Facts, output: Path | None, *, batch: bool = True) -> tuple[Path, str]:
    """Back up the host's appliance into a local file (0600: backups hold the appliance's
    configuration); (local path, the server's summary line)."""
    done = run.run(host.ssh_argv(facts.privileged(["sh", "-c", BACKUP]), batch=batch), input="",
                   env=_agent(), check=False)
    if done.returncode == SSH_FAILED:
        raise connection_error(host, done.returncode, done.stdout)
    found = re.search(r"^backup-file=(/var/tmp/vatools-backup-\w+/[^/\n]+\.abf)$", done.stdout, re.M)
    if done.returncode != 0 or not found:
        tail = "\n".join(done.stdout.strip().splitlines()[-12:])
        raise VatoolsError(f"{host}: vatools backup create failed there:\n{tail}",
                           hint="nothing was written here")
    remote_file = found.group(1)
    summary = next((line for line in done.stdout.splitlines() if line.startswith(remote_file)), "")
    local = (output or Path(PurePosixPath(remote_file).name)).absolute()
    try:
        fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise VatoolsError(f"{local} exists already", hint="choose another --output or remove it") from None
    try:
        with os.fdopen(fd, "wb") as out:
            copy = run.start(host.ssh_argv(facts.privileged(["cat", "--", remote_file]), batch=batch),
                             env=_agent(), stdout=out)
            status = copy.wait()
        if status != 0:
            local.unlink()
            raise ConnectionLost(f"{host}: copying {remote_file} failed (status {status})",
                                 hint=f"the backup is still on the server, in {remote_file}")
    finally:
        run.run(host.ssh_argv(facts.privileged(["rm", "-rf", "--", str(PurePosixPath(remote_file).parent)]),
                              batch=batch), input="", env=_agent(), check=False)
    return local, summary
