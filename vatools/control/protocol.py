"""The root helper's protocol: what the web process may ask appliance-control-helper, and how
it is said. Both sides import this module (client.py on the web side; helper.py and ops.py,
which run as root); it imports nothing of the root side, so the web process never loads the
code that acts as root.

The allow-list, OPERATIONS, names every operation with its arguments: each is a string that
must match its pattern in full, and no argument reaches a shell. ops.py binds every name to
its implementation with @implements(NAME), which checks the implementation's parameters
against these arguments.

The encoding: one JSON object per line on the helper's Unix stream socket. The client sends

    {"op": NAME, "args": {ARG: VALUE, ...}}

and the helper answers, while it works, with any number of

    {"progress": PERCENT, "text": TEXT}

and, while an operation is silent (or waits for another to end), every HEARTBEAT seconds with

    {"alive": true}

so that the client can tell a helper at work from one that hangs (client.IDLE_TIMEOUT);
then with one final line, the result or the error with the hint saying what to do:

    {"ok": true, "result": RESULT}
    {"ok": false, "error": MESSAGE, "hint": HINT, "output": COMMAND_OUTPUT}

>>> validate("backup-verify", {"name": "wiki-2026.abf"})
{'name': 'wiki-2026.abf'}
>>> validate("backup-verify", {"name": "../etc/shadow"})
Traceback (most recent call last):
...
vatools.control.protocol.BadRequest: backup-verify: name '../etc/shadow' is not valid: \
a backup file name (letters, digits, . _ -, ending in .abf)
>>> validate("backup-restore", {"name": "wiki-2026.abf"})  # a default fills what is left out
{'name': 'wiki-2026.abf', 'trust_foreign': 'no'}
>>> validate("sh", {})
Traceback (most recent call last):
...
vatools.control.protocol.BadRequest: unknown operation 'sh'

An error keeps its hint on the way to the web process:

>>> from vatools.errors import VatoolsError
>>> decode_reply(encode_error(VatoolsError("no backup x.abf", hint="upload it first")))
Traceback (most recent call last):
...
vatools.control.protocol.HelperError: no backup x.abf
>>> try:
...     decode_reply(encode_error(VatoolsError("no backup x.abf", hint="upload it first")))
... except HelperError as e:
...     print(e.describe())
no backup x.abf
hint: upload it first
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from vatools.errors import CommandFailed, VatoolsError

MAX_REQUEST = 64 * 1024  # bytes of one request line
HEARTBEAT = 15.0  # seconds between two "alive" lines of a silent operation


class BadRequest(VatoolsError):
    """The request is not one of the allowed operations with valid arguments."""


class HelperError(VatoolsError):
    """The helper refused or failed an operation (or could not be asked): `message` says what,
    `hint` what to do, `output` is the failed command's output, if any."""

    def __init__(self, message: str, hint: str | None = None, output: str = "") -> None:
        super().__init__(message, hint)
        self.output = output

    def describe(self) -> str:
        """Message, hint and output, one after the other, for a page that shows the failure."""
        return "\n".join([self.message, *([f"hint: {self.hint}"] if self.hint else []),
                          *([self.output] if self.output else [])])


@dataclass(frozen=True)
class Arg:
    pattern: str
    describe: str
    default: str | None = None  # given to the operation when the request leaves it out


@dataclass(frozen=True)
class Operation:
    summary: str
    args: Mapping[str, Arg] = field(default_factory=dict)
    # Operations that change the system run one at a time; a read-only one runs alongside.
    exclusive: bool = True


BACKUP_NAME = Arg(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.abf",
                  "a backup file name (letters, digits, . _ -, ending in .abf)")
# Restore a backup this system did not make (vatools/backup/authenticity.py): only when the
# user confirmed the risk; a request without it (an older web interface) means "no".
TRUST_FOREIGN = Arg(r"yes|no", "yes or no", default="no")
# host, [host] (no MX lookup), either with :port; empty means "deliver directly".
RELAYHOST = Arg(r"(|\[[A-Za-z0-9.-]{1,253}\](:[0-9]{1,5})?|[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?)",
                "empty, HOST, [HOST] or either with :PORT")

OPERATIONS: dict[str, Operation] = {
    "ping": Operation("answer pong (is the helper there?)", exclusive=False),
    "apt-update": Operation("update the package lists"),
    "apt-upgrade": Operation("install the pending upgrades"),
    "list-upgrades": Operation("list the pending upgrades (a simulation)", exclusive=False),
    "backup-create": Operation("back up the appliance into the backups directory"),
    "backup-verify": Operation("verify a backup's checksums", {"name": BACKUP_NAME},
                               exclusive=False),
    "backup-restore": Operation("restore the appliance from a backup (a foreign one only with "
                                "trust_foreign=yes)",
                                {"name": BACKUP_NAME, "trust_foreign": TRUST_FOREIGN}),
    "backup-delete": Operation("delete a backup", {"name": BACKUP_NAME}),
    "restart-services": Operation("restart the appliance's services"),
    "reboot": Operation("reboot the machine"),
    "poweroff": Operation("shut the machine down"),
    "set-relayhost": Operation("set postfix's relayhost", {"relayhost": RELAYHOST}),
    "appliance-stats": Operation("the appliance's own figures (its control-stats hook)",
                                 exclusive=False),
    "health-check": Operation("run the appliance's health checks (results cached briefly)",
                              exclusive=False),
}


def validate(op: object, args: object) -> dict[str, str]:
    """The arguments, when `op` is allow-listed and they are exactly its valid arguments."""
    if not isinstance(op, str) or op not in OPERATIONS:
        raise BadRequest(f"unknown operation {op!r}")
    if not isinstance(args, dict):
        raise BadRequest(f"{op}: arguments must be an object")
    schema = OPERATIONS[op].args
    extra = sorted(set(args) - set(schema))
    if extra:
        raise BadRequest(f"{op}: unexpected argument {', '.join(map(str, extra))}")
    valid = {}
    for name, arg in schema.items():
        value = args.get(name, arg.default)
        if not isinstance(value, str) or not re.fullmatch(arg.pattern, value):
            raise BadRequest(f"{op}: {name} {value!r} is not valid: {arg.describe}")
        valid[name] = value
    return valid


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


# -- the client's side ---------------------------------------------------------------------------
def encode_request(op: str, args: Mapping[str, str] | None = None) -> bytes:
    return _line({"op": op, "args": dict(args or {})})


@dataclass(frozen=True)
class Progress:
    percent: float
    text: str


@dataclass(frozen=True)
class Result:
    value: Any


@dataclass(frozen=True)
class Alive:
    """The helper still works on the operation (a heartbeat line)."""


def decode_reply(raw: bytes) -> Progress | Result | Alive:
    """One line of the helper's answer; a failure is raised as HelperError."""
    try:
        message = json.loads(raw)
    except ValueError:
        raise HelperError(f"the root helper answered something else than JSON: {raw[:200]!r}",
                          hint="is the helper's version the web interface's?") from None
    if not isinstance(message, dict):
        raise HelperError(f"the root helper answered a JSON {type(message).__name__}, "
                          "not an object")
    if message.get("alive") is True and len(message) == 1:
        return Alive()
    if "progress" in message:
        return Progress(float(message["progress"]), str(message.get("text", "")))
    if not message.get("ok"):
        raise HelperError(str(message.get("error", "failed")),
                          str(message["hint"]) if message.get("hint") else None,
                          str(message.get("output", "")))
    return Result(message.get("result"))


# -- the helper's side ---------------------------------------------------------------------------
def decode_request(data: bytes) -> tuple[str, dict[str, str]]:
    """The operation and its validated arguments from a request line."""
    if len(data) > MAX_REQUEST:
        raise BadRequest("request too long")
    try:
        request = json.loads(data)
    except ValueError:
        raise BadRequest("the request is not one JSON line") from None
    if not isinstance(request, dict):
        raise BadRequest("the request must be a JSON object")
    op = request.get("op")
    args = validate(op, request.get("args", {}))
    return str(op), args


def encode_progress(percent: float, text: str) -> bytes:
    return _line({"progress": round(percent, 1), "text": text})


def encode_alive() -> bytes:
    return _line({"alive": True})


def encode_result(result: Any) -> bytes:
    return _line({"ok": True, "result": result})


def encode_error(error: BaseException) -> bytes:
    """A failure with its hint; a failed command's output apart from its one-line message.
    Anything but a VatoolsError is a bug of the helper, named as such."""
    if isinstance(error, CommandFailed):
        return _line({"ok": False, "error": error.message.splitlines()[0], "hint": error.hint,
                      "output": error.output})
    if isinstance(error, VatoolsError):
        return _line({"ok": False, "error": error.message, "hint": error.hint, "output": ""})
    return _line({"ok": False, "error": f"internal error: {type(error).__name__}: {error}",
                  "hint": "a bug of appliance-control-helper: its log (journalctl -u "
                          "appliance-control-helper) has the traceback", "output": ""})
