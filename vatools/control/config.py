"""The interface's settings: /etc/appliance-control/appliance-control.conf (INI), with defaults.

>>> c = Config.parse("[web]\\nlisten = 127.0.0.1:9000\\n", "x.conf")
>>> c.listen, c.secure_cookies, c.session_idle, c.session_lifetime, c.trusted_proxies
('127.0.0.1:9000', False, 1800, 43200, ())
>>> c = Config.parse("[web]\\nbehind_proxy = yes\\nallowed_hosts = Wiki.Example.org, x", "x")
>>> c.trusted_proxies, c.allowed_hosts
(('127.0.0.1', '::1'), ('wiki.example.org', 'x'))
"""

from __future__ import annotations

import configparser
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from vatools.errors import VatoolsError

CONFIG_FILE = "/etc/appliance-control/appliance-control.conf"
# Tests and developers point the web process at another file with this variable.
CONFIG_ENV = "APPLIANCE_CONTROL_CONFIG"


@dataclass(frozen=True)
class Config:
    listen: str = "0.0.0.0:8080"
    secure_cookies: bool = False  # set under TLS (a web server in front): cookies sent only on https
    behind_proxy: bool = False  # trust X-Forwarded-Proto/For from one proxy in front
    # The addresses whose X-Forwarded-For/-Proto are believed (behind_proxy: loopback unless
    # `trusted_proxy` names others); from any other address the headers are ignored.
    trusted_proxies: tuple[str, ...] = ()
    # The Host header values accepted; empty: what the appliance is reached by (any IP
    # address, localhost, the machine's host name and FQDN); "*": any.
    allowed_hosts: tuple[str, ...] = ()
    session_idle: int = 30 * 60  # seconds without a request before a session ends
    session_lifetime: int = 12 * 3600  # seconds after login when a session ends anyway
    state_dir: Path = Path("/var/lib/appliance-control")
    socket: Path = Path("/run/appliance-control/helper.sock")
    user: str = "appliance-control"  # the web process's user: the one uid the helper serves
    wiki_url: str = field(default="/")

    @property
    def password_file(self) -> Path:
        return self.state_dir / "admin-password"

    @property
    def session_key_file(self) -> Path:
        return self.state_dir / "session-key"

    @property
    def sessions_file(self) -> Path:
        return self.state_dir / "sessions"

    @property
    def jobs_dir(self) -> Path:
        return self.state_dir / "jobs"

    @property
    def backups_dir(self) -> Path:
        return self.state_dir / "backups"

    @classmethod
    def parse(cls, text: str, where: str) -> Config:
        parser = configparser.ConfigParser()
        try:
            parser.read_string(text, source=where)
        except configparser.Error as e:
            raise VatoolsError(f"{where}: {e}", hint="fix the file's INI syntax") from None
        web: dict[str, str] = dict(parser["web"]) if parser.has_section("web") else {}
        helper: dict[str, str] = dict(parser["helper"]) if parser.has_section("helper") else {}

        def flag(section: dict[str, str], key: str) -> bool:
            value = section.get(key, "no").strip().lower()
            if value not in ("yes", "no", "true", "false", "on", "off", "1", "0"):
                raise VatoolsError(f"{where}: {key} = {value!r} is not yes or no")
            return value in ("yes", "true", "on", "1")

        def number(section: dict[str, str], key: str, default: int) -> int:
            value = section.get(key, str(default)).strip()
            if not value.isdigit() or int(value) == 0:
                raise VatoolsError(f"{where}: {key} = {value!r} is not a positive whole number")
            return int(value)

        def words(section: dict[str, str], key: str) -> tuple[str, ...]:
            return tuple(w.lower().rstrip(".") for w in re.split(r"[\s,]+", section.get(key, ""))
                         if w)

        defaults = cls()
        proxies = words(web, "trusted_proxy")
        for address in proxies:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise VatoolsError(f"{where}: trusted_proxy = {address!r} is not an IP address",
                                   hint="for example: trusted_proxy = 127.0.0.1") from None
        behind_proxy = flag(web, "behind_proxy")
        if behind_proxy and not proxies:
            proxies = ("127.0.0.1", "::1")
        listen = web.get("listen", defaults.listen).strip()
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise VatoolsError(f"{where}: listen = {listen!r} is not ADDRESS:PORT",
                               hint="for example: listen = 0.0.0.0:8080")
        return cls(
            listen=listen,
            secure_cookies=flag(web, "secure_cookies"),
            behind_proxy=behind_proxy or bool(proxies),
            trusted_proxies=proxies,
            allowed_hosts=words(web, "allowed_hosts"),
            session_idle=60 * number(web, "session_idle_minutes", defaults.session_idle // 60),
            session_lifetime=3600 * number(web, "session_max_hours",
                                           defaults.session_lifetime // 3600),
            state_dir=Path(web.get("state_dir", str(defaults.state_dir))),
            socket=Path(helper.get("socket", str(defaults.socket))),
            user=helper.get("user", defaults.user).strip(),
        )

    @classmethod
    def load(cls, path: str | None = None) -> Config:
        path = path or os.environ.get(CONFIG_ENV) or CONFIG_FILE
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            return cls()
        return cls.parse(text, path)
