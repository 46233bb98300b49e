"""Errors a user sees: one line saying what is wrong, and a hint saying what to do.

Every command maps these to the documented exit codes below; a traceback is shown
only for bugs, or with --debug.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes shared by vainstall, valist and vatools (see the man pages)."""

    OK = 0
    PROBLEMS = 1  # a check ran and found errors (vatools seed check)
    USAGE = 2  # bad command line
    REFUSED = 3  # refused before any change: the system is as it was
    ROLLED_BACK = 4  # failed after changes began; everything was put back
    ROLLBACK_INCOMPLETE = 5  # failed, and putting things back failed too: see the repair hint
    UNREACHABLE = 10  # --host: no SSH connection to the host
    LOGIN_REFUSED = 11  # --host: our key (or the host's key) was refused
    NO_PRIVILEGE = 12  # --host: logged in, but not root and no `sudo -n`
    CONNECTION_LOST = 13  # --host: the connection broke during the command
    INTERRUPTED = 130  # interrupted before any change
    INTERNAL = 70  # a bug in vatools (EX_SOFTWARE)


class VatoolsError(Exception):
    """A failure explained to the user: `message` says what, `hint` says what to do."""

    exit_code: ExitCode = ExitCode.REFUSED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(VatoolsError):
    """The command line itself is wrong."""

    exit_code = ExitCode.USAGE


class CommandFailed(VatoolsError):
    """A program vatools started exited non-zero."""

    def __init__(self, argv: list[str], returncode: int, output: str, hint: str | None = None):
        tail = "\n".join(output.strip().splitlines()[-15:])
        message = f"{argv[0]} exited with status {returncode}"
        if tail:
            message += ":\n" + tail
        super().__init__(message, hint)
        self.argv = argv
        self.returncode = returncode
        self.output = output


class RolledBack(VatoolsError):
    """Failed after changes began; the changes were undone."""

    exit_code = ExitCode.ROLLED_BACK


class RollbackIncomplete(VatoolsError):
    """Failed after changes began, and undoing them failed too."""

    exit_code = ExitCode.ROLLBACK_INCOMPLETE
