"""The system vatools acts on: this machine, or a Debian tree in a directory.

Kept apart from vatools.run (which starts processes) so that fast paths such as
`valist --installed` import nothing heavy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Target:
    """The system vatools acts on: "/" for this machine, or the root of a tree."""

    root: Path = Path("/")

    @property
    def is_host(self) -> bool:
        return self.root == Path("/")

    def path(self, inside: str) -> Path:
        """Where a path of the target lies as seen from here."""
        return self.root / inside.lstrip("/")

    def argv(self, argv: Sequence[str]) -> list[str]:
        return list(argv) if self.is_host else ["chroot", str(self.root), *argv]

    def __str__(self) -> str:
        return "this system" if self.is_host else str(self.root)


HOST = Target()
