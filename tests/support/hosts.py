"""Test hosts on this machine: Debian trees with their own sshd, each in its own network namespace.

    golden_host_tree(pristine, repo, base_url, dest)   once per suite and session: a copy of the
        pristine tree with openssh-server, python3, python3-apt, sudo and vatools' own Debian
        dependencies (vatools itself is purged again: the hosts are "fresh servers"); no host keys,
        no apt sources (the hosts reach nothing but the controller).
    with Fleet(workdir) as fleet:        a controller namespace with a bridge on SUBNET
        fleet.serve(repo.served())       our repository, served on the bridge address (BASE_URL)
        host = fleet.add_host(golden)    an overlay of the golden tree, its own ed25519 host key,
                                         sshd as PID 1 under unshare in its own netns
        fleet.client([...])              a client command (ssh, vainstall --host, ansible-playbook)
                                         run inside the controller namespace, with /root replaced
                                         by the fleet's home: its ~/.ssh (key, config, known_hosts)
                                         is what the user's ssh would read.

Safety, in this order: the guard route (`unreachable SUBNET` in the main namespace) is added before
any address of SUBNET exists, so nothing for SUBNET can leave through the default route; the
subnet exists only inside namespaces; every sshd is stopped by PID (and checked in /proc), every
Ansible control master is told to exit, the namespaces are deleted, and the overlays unmounted
before their trees are removed.

Users on every host: root (key login), `admin` (key login, sudo without password) and `plain`
(key login, no sudo).
"""

from __future__ import annotations

import ctypes
import http.server
import ipaddress
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from tests.support.chroot import Chroot, copy_tree, overlay_tree
from tests.support.net import _MountsHandler
from tests.support.repo import Repo, add_repo_source

SUBNET = ipaddress.ip_network("10.200.0.0/24")
CONTROLLER = "10.200.0.1"
CLONE_NEWNET = 0x40000000
TOP = Path(__file__).resolve().parents[2]
HOST_PACKAGES = ["openssh-server", "python3", "python3-apt", "sudo"]

SSHD_CONFIG = """\
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile none
"""

# Run by unshare's child in the host's own mount, UTS and PID namespaces; ends as sshd, PID 1.
START_SSHD = r"""
set -e
tree="$1"
mount --make-rprivate /
hostname "$2"
mount -t proc proc "$tree/proc"
mount -t tmpfs -o mode=0755 tmpfs "$tree/run"
mkdir -p "$tree/run/sshd" "$tree/dev/pts"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$tree/dev/pts"
mount --bind "$tree/dev/pts/ptmx" "$tree/dev/ptmx"
exec chroot "$tree" /usr/sbin/sshd -D -e
"""


def golden_host_tree(pristine: Path, repo: Repo, base_url: str, dest: Path) -> Path:
    """A tree every test host is an overlay of (see the module's docstring)."""
    chroot = copy_tree(pristine, dest)
    add_repo_source(chroot, repo, base_url, _suite_of(chroot))
    chroot.run(["apt-get", "update"])
    chroot.run(["apt-get", "install", "-y", "--no-install-recommends", *HOST_PACKAGES, "vatools"])
    chroot.run(["dpkg", "--purge", "vatools"])  # its dependencies stay: the hosts have no mirror
    for name in ("admin", "plain"):
        chroot.run(["useradd", "--create-home", "--shell", "/bin/sh", name])
        chroot.run(["usermod", "-p", "*", name])  # no password, yet not locked (UsePAM no)
    chroot.write_text("/etc/sudoers.d/admin", "admin ALL=(ALL) NOPASSWD: ALL\n", mode=0o440)
    chroot.write_text("/etc/ssh/sshd_config.d/vatools-tests.conf", SSHD_CONFIG)
    for key in chroot.path("/etc/ssh").glob("ssh_host_*"):
        key.unlink()
    for leftover in ("/etc/apt/sources.list", "/etc/apt/sources.list.d/debian.sources",
                     "/etc/apt/sources.list.d/vatools.sources",
                     "/etc/apt/sources.list.d/vatools-tests.sources", "/etc/apt/keyrings/vatools.gpg"):
        chroot.path(leftover).unlink(missing_ok=True)
    shutil.rmtree(chroot.path("/var/lib/apt/lists"))
    chroot.path("/var/lib/apt/lists/partial").mkdir(parents=True)
    chroot.run(["apt-get", "clean"])
    return chroot.root


def _suite_of(chroot: Chroot) -> str:
    for line in chroot.read_text("/etc/os-release").splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.partition("=")[2].strip('"')
    raise RuntimeError(f"{chroot}: no VERSION_CODENAME")


@dataclass
class FleetHost:
    name: str  # also its alias in the fleet's ssh config
    address: str
    suite: str
    chroot: Chroot
    netns: str
    process: subprocess.Popen[bytes] | None = None
    sshd_pid: int | None = None
    log: Path | None = None

    @property
    def root(self) -> Path:
        return self.chroot.root


@dataclass
class Fleet:
    workdir: Path
    tag: str = field(default_factory=lambda: f"{os.getpid() % 100000}")
    hosts: list[FleetHost] = field(default_factory=list)
    base_url: str | None = None

    def __post_init__(self) -> None:
        self.controller = f"vat-ctl-{self.tag}"
        self.home = self.workdir / "home"
        self._guard_added = False
        self._made = 0
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- setting up -------------------------------------------------------------------------

    def __enter__(self) -> Fleet:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _in_ctl(self, *args: str) -> None:
        _ip("-n", self.controller, *args)

    def _start(self) -> None:
        # The guard first: from here on, SUBNET can never leave through the default route.
        routes = _ip("route", "show", str(SUBNET)).stdout
        if "unreachable" not in routes:
            _ip("route", "add", "unreachable", str(SUBNET))
            self._guard_added = True
        _ip("netns", "add", self.controller)
        self._in_ctl("link", "set", "lo", "up")
        self._in_ctl("link", "add", "br0", "type", "bridge")
        self._in_ctl("addr", "add", f"{CONTROLLER}/{SUBNET.prefixlen}", "dev", "br0")
        self._in_ctl("link", "set", "br0", "up")
        ssh = self.home / ".ssh"
        ssh.mkdir(parents=True, mode=0o700)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet-client",
                        "-f", str(ssh / "id_ed25519")], check=True)
        (ssh / "known_hosts").write_text("")
        self._write_ssh_config()

    def _write_ssh_config(self) -> None:
        lines = []
        for host in self.hosts:
            lines += [f"Host {host.name}", f"  HostName {host.address}", ""]
        lines += ["Host *", "  IdentityFile ~/.ssh/id_ed25519", "  IdentitiesOnly yes",
                  "  StrictHostKeyChecking yes", "  UserKnownHostsFile ~/.ssh/known_hosts",
                  "  ConnectTimeout 10", ""]
        config = self.home / ".ssh" / "config"
        config.write_text("\n".join(lines))
        config.chmod(0o600)

    def serve(self, mounts: Mapping[str, Path]) -> str:
        """Serve directories over HTTP on the bridge address, inside the controller namespace
        only (the listening socket is made there, then this thread comes back)."""
        handler = type("Handler", (_MountsHandler,), {"mounts": dict(mounts)})
        libc = ctypes.CDLL(None, use_errno=True)
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        theirs = os.open(f"/run/netns/{self.controller}", os.O_RDONLY)
        try:
            if libc.setns(theirs, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into the controller namespace")
            try:
                self._server = http.server.ThreadingHTTPServer((CONTROLLER, 0), handler)
            finally:
                if libc.setns(own, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back: this process is stranded")
        finally:
            os.close(own)
            os.close(theirs)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="fleet-repo-server")
        self._thread.start()
        self.base_url = f"http://{CONTROLLER}:{self._server.server_address[1]}"
        return self.base_url

    def add_host(self, golden: Path, suite: str, authorized: Sequence[str] = ("root", "admin", "plain")) -> FleetHost:
        self._made += 1
        index = self._made
        name = f"h{index}"
        address = str(SUBNET.network_address + 10 + index)
        chroot = overlay_tree(golden, self.workdir / "hosts" / name)
        host = FleetHost(name=name, address=address, suite=suite, chroot=chroot,
                        netns=f"vat-{name}-{self.tag}")
        self.hosts.append(host)
        key = (self.home / ".ssh" / "id_ed25519.pub").read_text()
        for user in authorized:
            home = "/root" if user == "root" else f"/home/{user}"
            chroot.write_text(f"{home}/.ssh/authorized_keys", key, mode=0o600)
            if user != "root":
                uid = chroot.run(["id", "-u", user]).stdout.strip()
                for path in (chroot.path(f"{home}/.ssh"), chroot.path(f"{home}/.ssh/authorized_keys")):
                    os.chown(path, int(uid), int(uid))
        if chroot.path("/root/.ssh").is_dir():
            chroot.path("/root/.ssh").chmod(0o700)
        hostkey = chroot.path("/etc/ssh/ssh_host_ed25519_key")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(hostkey)],
                       check=True)
        chroot.write_text("/etc/hostname", name + "\n")
        public = hostkey.with_suffix(".pub").read_text().split()
        with open(self.home / ".ssh" / "known_hosts", "a") as known:
            known.write(f"{name},{address} {public[0]} {public[1]}\n")
        self._write_ssh_config()
        self._network(host, index)
        self.start(host)
        return host

    def _network(self, host: FleetHost, index: int) -> None:
        _ip("netns", "add", host.netns)
        peer = f"veth{index}"
        self._in_ctl("link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
        self._in_ctl("link", "set", peer, "master", "br0", "up")
        _ip("-n", host.netns, "link", "set", "lo", "up")
        _ip("-n", host.netns, "addr", "add", f"{host.address}/{SUBNET.prefixlen}", "dev", "eth0")
        _ip("-n", host.netns, "link", "set", "eth0", "up")

    def start(self, host: FleetHost) -> None:
        host.log = self.workdir / f"{host.name}-sshd.log"
        with open(host.log, "ab") as log:
            host.process = subprocess.Popen(
                ["ip", "netns", "exec", host.netns, "unshare", "--mount", "--uts", "--pid", "--fork",
                 "--kill-child", "--", "sh", "-c", START_SSHD, "start-sshd", str(host.root), host.name],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not self._listening(host):
            if host.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd of {host.name} did not start:\n{host.log.read_text()[-2000:]}")
            time.sleep(0.05)
        children = Path(f"/proc/{host.process.pid}/task/{host.process.pid}/children").read_text().split()
        host.sshd_pid = int(children[0]) if children else None

    def _listening(self, host: FleetHost) -> bool:
        done = subprocess.run(["ip", "netns", "exec", host.netns, "ss", "-Htln", "sport = :22"],
                              capture_output=True, text=True)
        return bool(done.stdout.strip())

    # --- using it ---------------------------------------------------------------------------

    def client(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
               input: str | None = None, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
        """Run a client inside the controller namespace, with the fleet's home as /root."""
        variables = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
                     "PYTHONPATH": str(TOP)}
        variables.update(env or {})
        wrapper = 'mount --bind "$0" /root && exec "$@"'
        return subprocess.run(
            ["ip", "netns", "exec", self.controller, "sh", "-c", wrapper, str(self.home), *argv],
            input=input, capture_output=True, text=True, env=variables, timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def vatools(self, command: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """vainstall or valist of this source tree, as the user runs it, in the controller."""
        return self.client(["/usr/bin/python3", "-m", f"vatools.cli.{command}", *args], input=input)

    # --- tearing down -----------------------------------------------------------------------

    def stop_host(self, host: FleetHost) -> None:
        """Stop the host's sshd by its PID (PID 1 of the host's namespace: the rest go with it).

        SIGTERM goes to sshd itself: unshare --fork ignores SIGTERM while it waits for its child.
        """
        process = host.process
        if process is not None and process.poll() is None:
            if host.sshd_pid is not None and _command_of(host.sshd_pid) == "sshd":
                os.kill(host.sshd_pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()  # SIGKILL to unshare: --kill-child takes its child along
                process.wait()
        if host.sshd_pid is not None:
            _wait_gone(host.sshd_pid)
        host.process = None

    def remove_host(self, host: FleetHost) -> None:
        """Stop a host's sshd, delete its namespace and its tree."""
        self.stop_host(host)
        _ip("netns", "del", host.netns, check=False)
        host.chroot.remove()
        self.hosts.remove(host)
        self._write_ssh_config()

    def stop(self) -> None:
        self._exit_control_masters()
        for host in self.hosts:
            self.stop_host(host)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join()
        for host in self.hosts:
            _ip("netns", "del", host.netns, check=False)
        _ip("netns", "del", self.controller, check=False)
        for host in self.hosts:
            host.chroot.remove()  # unmounts the overlay first, refuses if anything stays mounted
        if self._guard_added:
            _ip("route", "del", "unreachable", str(SUBNET), check=False)

    def _exit_control_masters(self) -> None:
        control = self.home / ".ansible" / "cp"
        sockets = [p for p in control.iterdir() if p.is_socket()] if control.is_dir() else []
        for sock in sockets:
            self.client(["ssh", "-o", f"ControlPath=/root/.ansible/cp/{sock.name}", "-O", "exit", "x"],
                        timeout=30)


def _command_of(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _wait_gone(pid: int, timeout: float = 30) -> None:
    """Wait until pid no longer exists (a zombie counts as gone: kill -0 would lie)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.05)
    raise RuntimeError(f"process {pid} (a test sshd) is still alive after {timeout:.0f} s")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)

