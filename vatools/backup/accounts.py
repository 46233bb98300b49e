"""User and group names of a target tree, so that owners survive a move to another machine.

Archives store owners by name and number (as tar does); a restore prefers the name as the
target's own /etc/passwd and /etc/group define it, and falls back to the number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vatools.run import Target


def _read_ids(path: Path) -> dict[str, int]:
    ids: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ids
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            ids.setdefault(fields[0], int(fields[2]))
    return ids


@dataclass(frozen=True)
class Accounts:
    users: dict[str, int]
    groups: dict[str, int]

    @classmethod
    def of(cls, target: Target) -> Accounts:
        return cls(_read_ids(target.path("/etc/passwd")), _read_ids(target.path("/etc/group")))

    def __post_init__(self) -> None:
        # reverse maps for the create side (first name wins, as with getpwuid)
        object.__setattr__(self, "_user_names", {i: n for n, i in reversed(self.users.items())})
        object.__setattr__(self, "_group_names", {i: n for n, i in reversed(self.groups.items())})

    def uid(self, name: str, number: int) -> int:
        return self.users.get(name, number) if name else number

    def gid(self, name: str, number: int) -> int:
        return self.groups.get(name, number) if name else number

    def user_name(self, uid: int) -> str:
        return self._user_names.get(uid, "")  # type: ignore[attr-defined,no-any-return]

    def group_name(self, gid: int) -> str:
        return self._group_names.get(gid, "")  # type: ignore[attr-defined,no-any-return]
