"""Per-entry bookkeeping of a restore in bounded memory.

Checking a tar stream needs every name seen so far (duplicates, parents, hard link
targets), and staging needs every directory's attributes until the end (adding entries
changes them). Both grow with the number of entries, not with the data. Up to IN_MEMORY
entries live in Python objects; beyond that they go to a private temporary SQLite
database (`sqlite3.connect("")`: on disk, with a small page cache, deleted when closed),
so a backup of millions of files needs no more memory than one of thousands.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

IN_MEMORY = 20_000


def _database(schema: str) -> sqlite3.Connection:
    db = sqlite3.connect("", isolation_level=None)
    db.execute("PRAGMA journal_mode = OFF")  # a scratch database: nothing to recover
    db.execute("PRAGMA synchronous = OFF")
    db.execute(schema)
    db.execute("BEGIN")  # one transaction: no commit per row
    return db


class NameIndex:
    """name -> kind (one character), for the members of one tar stream; adding a name again
    replaces its kind."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._db: sqlite3.Connection | None = None

    def get(self, name: str) -> str | None:
        if self._db is None:
            return self._names.get(name)
        row = self._db.execute("SELECT kind FROM names WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def add(self, name: str, kind: str) -> None:
        if self._db is None and len(self._names) >= IN_MEMORY:
            self._db = _database("CREATE TABLE names (name TEXT PRIMARY KEY, kind TEXT) "
                                 "WITHOUT ROWID")
            self._db.executemany("INSERT INTO names VALUES (?, ?)", self._names.items())
            self._names.clear()
        if self._db is None:
            self._names[name] = kind
        else:
            self._db.execute("INSERT OR REPLACE INTO names VALUES (?, ?)", (name, kind))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


DirRecord = tuple[str, int, int, int, int]  # path, mode, uid, gid, mtime (ns)


class DirectoryList:
    """Directories in the order they were added, read back last first."""

    def __init__(self) -> None:
        self._dirs: list[DirRecord] = []
        self._db: sqlite3.Connection | None = None

    def append(self, record: DirRecord) -> None:
        if self._db is None and len(self._dirs) >= IN_MEMORY:
            self._db = _database("CREATE TABLE dirs (path TEXT, mode INTEGER, uid INTEGER, "
                                 "gid INTEGER, mtime INTEGER)")
            self._db.executemany("INSERT INTO dirs VALUES (?, ?, ?, ?, ?)", self._dirs)
            self._dirs.clear()
        if self._db is None:
            self._dirs.append(record)
        else:
            self._db.execute("INSERT INTO dirs VALUES (?, ?, ?, ?, ?)", record)

    def last_first(self) -> Iterator[DirRecord]:
        if self._db is None:
            yield from reversed(self._dirs)
        else:
            yield from self._db.execute("SELECT * FROM dirs ORDER BY rowid DESC")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
