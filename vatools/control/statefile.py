"""A small JSON object in a file the web workers share: read, changed and written under a lock.

The file is opened without following links (the state directory belongs to the web user) and
created 0600; a file that is not a JSON object reads as empty.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def locked_json(path: Path, write: bool = True) -> Iterator[dict[str, Any]]:
    """The object in `path`, locked against the other workers; saved afterwards when `write`."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
        try:
            found = json.loads(handle.read() or "{}")
        except ValueError:
            found = {}
        if not isinstance(found, dict):
            found = {}
        yield found
        if write:
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(found))
