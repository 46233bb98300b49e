"""A scratch debconf database for tests that run the real debconf tools on this host.

debconf reads its configuration from DEBCONF_SYSTEMRC when set: pointing it at a file written
here keeps every read and write in the test's own directory, never in /var/cache/debconf.
"""

from __future__ import annotations

from pathlib import Path

HOST_DATABASE_DIR = Path("/var/cache/debconf")

# The stock /etc/debconf.conf layout (passwords apart from the rest), every file in one directory.
_CONF = """\
Config: configdb
Templates: templatedb

Name: config
Driver: File
Mode: 644
Reject-Type: password
Filename: {dir}/config.dat

Name: passwords
Driver: File
Mode: 600
Backup: false
Required: false
Accept-Type: password
Filename: {dir}/passwords.dat

Name: configdb
Driver: Stack
Stack: config, passwords

Name: templatedb
Driver: File
Mode: 644
Filename: {dir}/templates.dat
"""


def write_debconf_conf(conf: Path, database_dir: Path) -> Path:
    """Write a debconf.conf at `conf` keeping the database in `database_dir`; for DEBCONF_SYSTEMRC."""
    conf.write_text(_CONF.format(dir=database_dir))
    return conf
