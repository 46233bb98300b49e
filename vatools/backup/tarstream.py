"""Reading a tar stream member by member, fast: headers parsed from the inflated chunks as
they come, file data handed on as views of those chunks (never copied in Python).

It reads what tarfile reads (ustar, GNU and pax headers, GNU long names and long link
names, pax global headers, base-256 numbers) into `tarfile.TarInfo` objects, as tarfile's
own stream mode would, at a fraction of the cost per member; the safety rules
(members.py) then judge each one. It is stricter than tarfile where tarfile guesses: a
damaged header anywhere is an error (tarfile takes it for the end of the archive),
extended headers (pax, long names) are bounded, sparse files are reported as such.

    stream = TarStream(gunzip.next_chunk)
    while (member := stream.next()) is not None:
        for piece in stream.data():   # a regular file's content, in pieces
            ...
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterator

BLOCK = tarfile.BLOCKSIZE
ZERO_BLOCK = bytes(BLOCK)
MAX_EXTENDED = 1 << 20  # a pax header or GNU long name larger than this is refused
ENCODING, ERRORS = "utf-8", "surrogateescape"  # tarfile's defaults on Linux
PAX_TYPES = (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE)
POSIX_MAGIC = b"ustar\x0000"  # only POSIX ustar headers have the name prefix field
REGULAR = frozenset(tarfile.REGULAR_TYPES)


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode(ENCODING, ERRORS)


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 (first byte 0x80 or 0xff)."""
    if field[0] in (0x80, 0xFF):
        value = int.from_bytes(field[1:], "big")
        return value - (256 ** (len(field) - 1) if field[0] == 0xFF else 0)
    text = field.split(b"\0", 1)[0].strip()
    if text.translate(None, b"01234567"):  # only octal digits (int() would take "0o", "_")
        raise tarfile.ReadError("invalid header: a number field is not octal")
    return int(text or b"0", 8)


def _checksum_ok(block: bytes) -> bool:
    expected = _number(block[148:156])
    field = block[148:156]
    unsigned = 256 + sum(block) - sum(field)
    if expected == unsigned:
        return True
    high = sum(1 for c in block if c >= 128) - sum(1 for c in field if c >= 128)
    return expected == unsigned - 256 * high  # some old tars summed signed bytes


def parse_pax(data: bytes) -> dict[str, str]:
    """pax extended header records: "LENGTH KEY=VALUE\\n", LENGTH counting the whole record."""
    headers: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # padding some writers leave
            if data[pos:].strip(b"\0"):
                raise tarfile.ReadError("invalid pax header: data after the padding")
            break
        space = data.find(b" ", pos, pos + 24)
        length = data[pos:space]
        if space < 0 or not length.isdigit():
            raise tarfile.ReadError("invalid pax header: bad record length")
        end = pos + int(length)
        if end > len(data) or end <= space + 1 or data[end - 1] != 0x0A:
            raise tarfile.ReadError("invalid pax header: bad record")
        key, equals, value = data[space + 1:end - 1].partition(b"=")
        if not equals or not key:
            raise tarfile.ReadError("invalid pax header: a record without a key")
        headers[key.decode(ENCODING, ERRORS)] = value.decode(ENCODING, ERRORS)
        pos = end
    return headers


def _pax_number(headers: dict[str, str], key: str, kind: type) -> int | float | None:
    if key not in headers:
        return None
    try:
        return kind(headers[key])  # type: ignore[no-any-return]
    except ValueError as e:
        raise tarfile.ReadError(f"invalid pax header: {key}={headers[key][:30]!r}") from e


class TarStream:
    """The members of one tar stream, read from `next_chunk()` (b"" at the end)."""

    def __init__(self, next_chunk: Callable[[], bytes]) -> None:
        self._next_chunk = next_chunk
        self._chunk = b""
        self._view = memoryview(self._chunk)
        self._pos = 0
        self.offset = 0  # bytes of the tar stream consumed
        self._data_left = 0  # of the current member
        self._padding = 0
        self._global: dict[str, str] = {}

    # -- the byte stream ------------------------------------------------------------------

    def _refill(self) -> bool:
        chunk = self._next_chunk()
        if not chunk:
            return False
        self._chunk, self._view, self._pos = chunk, memoryview(chunk), 0
        return True

    def _read(self, size: int) -> bytes:
        """Exactly `size` bytes, or fewer at the end of the stream."""
        end = self._pos + size
        if end <= len(self._chunk):
            self._pos = end
            self.offset += size
            return self._chunk[end - size:end]
        parts = []
        while size:
            if self._pos >= len(self._chunk) and not self._refill():
                break
            take = min(size, len(self._chunk) - self._pos)
            parts.append(self._chunk[self._pos:self._pos + take])
            self._pos += take
            self.offset += take
            size -= take
        return b"".join(parts)

    def _pieces(self, size: int) -> Iterator[memoryview]:
        while size:
            if self._pos >= len(self._chunk) and not self._refill():
                raise tarfile.ReadError("unexpected end of data")
            take = min(size, len(self._chunk) - self._pos)
            start = self._pos
            self._pos += take
            self.offset += take
            size -= take
            yield self._view[start:start + take]

    def data(self) -> Iterator[memoryview]:
        """The current member's data, in pieces valid until the next piece is asked for."""
        while self._data_left:
            for piece in self._pieces(min(self._data_left, 1 << 20)):
                self._data_left -= len(piece)
                yield piece

    def _skip(self) -> None:
        for _ in self.data():
            pass
        if self._padding:
            for _ in self._pieces(self._padding):
                pass
            self._padding = 0

    def _read_extended(self, size: int, what: str) -> bytes:
        if size > MAX_EXTENDED:
            raise tarfile.ReadError(f"a {what} of {size} bytes (more than {MAX_EXTENDED})")
        data = self._read(size)
        if len(data) < size:
            raise tarfile.ReadError("unexpected end of data")
        self._read(-size % BLOCK)
        return data

    # -- members --------------------------------------------------------------------------

    def next(self) -> tarfile.TarInfo | None:
        """The next member, or None at the end of the archive."""
        self._skip()
        start = self.offset
        local: dict[str, str] | None = None
        long_name = long_link = None
        while True:
            block = self._read(BLOCK)
            if not block:
                if self.offset == 0:
                    raise tarfile.ReadError("empty file")
                return None  # ends after a member without end blocks: tarfile accepts it
            if len(block) < BLOCK:
                raise tarfile.ReadError("truncated header")
            if block == ZERO_BLOCK:
                if local is not None or long_name is not None or long_link is not None:
                    raise tarfile.ReadError("an extended header without its member")
                return None
            if not _checksum_ok(block):
                raise tarfile.ReadError(f"bad checksum in the header at {self.offset - BLOCK}")
            kind = block[156:157]
            size = _number(block[124:136])
            if size < 0:
                raise tarfile.ReadError("invalid header: negative size")
            if kind == tarfile.XGLTYPE:
                self._global.update(parse_pax(self._read_extended(size, "pax global header")))
            elif kind in PAX_TYPES:
                local = parse_pax(self._read_extended(size, "pax header"))
            elif kind == tarfile.GNUTYPE_LONGNAME:
                long_name = _text(self._read_extended(size, "GNU long name"))
            elif kind == tarfile.GNUTYPE_LONGLINK:
                long_link = _text(self._read_extended(size, "GNU long link name"))
            else:
                break
        info = self._member(block, kind, size, long_name, long_link, local)
        if info.size < 0:
            raise tarfile.ReadError(f"invalid header: {info.size} bytes")
        info.offset = start
        info.offset_data = self.offset
        if info.type in REGULAR:
            self._data_left = info.size
            self._padding = -info.size % BLOCK
        return info

    def _member(self, block: bytes, kind: bytes, size: int, long_name: str | None,
                long_link: str | None, local: dict[str, str] | None) -> tarfile.TarInfo:
        name = _text(block[0:100])
        if kind == tarfile.AREGTYPE and name.endswith("/"):
            kind = tarfile.DIRTYPE  # old tars marked directories with a trailing slash only
        prefix = _text(block[345:500]) if block[257:265] == POSIX_MAGIC else ""
        if prefix:
            name = prefix + "/" + name
        info = tarfile.TarInfo(long_name if long_name is not None else name)
        info.type = kind
        info.mode = _number(block[100:108])
        info.uid = _number(block[108:116])
        info.gid = _number(block[116:124])
        info.size = size
        info.mtime = _number(block[136:148])
        info.linkname = long_link if long_link is not None else _text(block[157:257])
        info.uname = _text(block[265:297])
        info.gname = _text(block[297:329])
        headers = {**self._global, **local} if local is not None else dict(self._global)
        if headers:
            self._apply_pax(info, headers)
        if info.type == tarfile.DIRTYPE:
            info.name = info.name.rstrip("/")
        return info

    @staticmethod
    def _apply_pax(info: tarfile.TarInfo, headers: dict[str, str]) -> None:
        if any(key.startswith("GNU.sparse.") for key in headers):
            info.type = tarfile.GNUTYPE_SPARSE  # refused by the member checks
        if "path" in headers:
            info.name = headers["path"].rstrip("/")
        if "linkpath" in headers:
            info.linkname = headers["linkpath"]
        for key in ("uname", "gname"):
            if key in headers:
                setattr(info, key, headers[key])
        for key in ("size", "uid", "gid"):
            value = _pax_number(headers, key, int)
            if value is not None:
                setattr(info, key, value)
        mtime = _pax_number(headers, "mtime", float)
        if mtime is not None:
            info.mtime = mtime  # type: ignore[assignment]  # a float, as tarfile makes it
        info.pax_headers = headers
