"""The lean tar reader: the same members as tarfile reads, stricter where tarfile guesses."""

from __future__ import annotations

import io
import tarfile

import pytest

from vatools.backup.tarstream import MAX_EXTENDED, TarStream

FIELDS = ("name", "type", "mode", "uid", "gid", "size", "mtime", "linkname", "uname", "gname",
          "pax_headers", "offset", "offset_data")


def sample(fmt: int) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        if fmt == tarfile.PAX_FORMAT:
            tar.pax_headers = {"comment": "global"}

        def add(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **fields) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.size, info.mtime, info.mode = kind, len(data), 1_700_000_000, 0o644
            for key, value in fields.items():
                setattr(info, key, value)
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
        add("root", tarfile.DIRTYPE, mode=0o2775, uname="www-data", gname="www-data",
            uid=33, gid=33)
        long = fmt != tarfile.USTAR_FORMAT  # ustar has no long names, only the prefix field
        big = "root/" + ("long-" * 40 + "name.txt" if long else "big.txt")  # 200+ characters
        add(big, data=b"x" * 70_000)
        add("root/" + "d" * 120 + "/f", data=b"in a long directory")  # ustar: in the prefix
        add("root/link", tarfile.SYMTYPE, linkname="/usr/share/" + "t" * (150 if long else 50))
        add("root/hard", tarfile.LNKTYPE, linkname=big)
        add("root/empty")
        if long:
            add("root/big-ids", data=b"ids", uid=10_000_000, gid=3_000_000)  # base-256 in GNU
            add("root/é-utf8", data=b"name")
    return raw.getvalue()


def chunks(data: bytes, size: int):
    pieces = [data[i:i + size] for i in range(0, len(data), size)]
    return lambda: pieces.pop(0) if pieces else b""


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT],
                         ids=["gnu", "pax", "ustar"])
@pytest.mark.parametrize("chunk", [512, 1000, 1 << 20])
def test_reads_what_tarfile_reads(fmt: int, chunk: int) -> None:
    data = sample(fmt)
    expected = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        for member in tar:
            content = tar.extractfile(member).read() if member.isreg() else b""  # type: ignore
            expected.append(({f: getattr(member, f) for f in FIELDS}, content))
    stream = TarStream(chunks(data, chunk))
    got = []
    while (member := stream.next()) is not None:
        content = b"".join(bytes(p) for p in stream.data()) if member.isreg() else b""
        got.append(({f: getattr(member, f) for f in FIELDS}, content))
    assert got == expected


def test_file_data_skipped_when_not_read() -> None:
    stream = TarStream(chunks(sample(tarfile.GNU_FORMAT), 777))
    names = []
    while (member := stream.next()) is not None:
        names.append(member.name)
    assert len(names) == 8 and names[-1] == "root/é-utf8"


def _blocks(*headers: tarfile.TarInfo, tail: bytes = b"") -> bytes:
    return b"".join(h.tobuf(tarfile.GNU_FORMAT) for h in headers) + tail


def _read_all(data: bytes) -> list[str]:
    stream = TarStream(chunks(data, 4096))
    names = []
    while (member := stream.next()) is not None:
        names.append(member.name)
        for _ in stream.data():
            pass
    return names


def test_a_damaged_header_is_an_error_not_the_end() -> None:
    """tarfile takes a header with a bad checksum for the end of the archive."""
    good = _blocks(tarfile.TarInfo("a"), tarfile.TarInfo("b"))
    bad = bytearray(good)
    bad[512 + 10] ^= 1
    bad += bytes(1024)
    with tarfile.open(fileobj=io.BytesIO(bytes(bad)), mode="r|") as tar:
        assert [m.name for m in tar] == ["a"]
    with pytest.raises(tarfile.ReadError, match="bad checksum"):
        _read_all(bytes(bad))


def test_an_extended_header_is_bounded_before_it_is_read() -> None:
    header = tarfile.TarInfo("././@LongLink")
    header.type, header.size = tarfile.GNUTYPE_LONGNAME, MAX_EXTENDED + 1
    with pytest.raises(tarfile.ReadError, match="GNU long name"):
        _read_all(_blocks(header))  # its data never follows: it is not read


def test_numbers_must_be_octal() -> None:
    block = bytearray(tarfile.TarInfo("a").tobuf(tarfile.USTAR_FORMAT))
    block[124:136] = b"0o000000001\0"  # int(..., 8) would accept it
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % (sum(block))
    with pytest.raises(tarfile.ReadError, match="not octal"):
        _read_all(bytes(block) + bytes(1024))


def test_pax_sparse_files_are_marked_sparse() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("s")
        info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}
        tar.addfile(info, io.BytesIO(b""))
    stream = TarStream(chunks(raw.getvalue(), 512))
    member = stream.next()
    assert member is not None and member.type == tarfile.GNUTYPE_SPARSE


def test_truncated_data_and_empty_input() -> None:
    info = tarfile.TarInfo("a")
    info.size = 10_000
    with pytest.raises(tarfile.ReadError, match="unexpected end of data"):
        _read_all(_blocks(info, tail=b"x" * 600))
    with pytest.raises(tarfile.ReadError, match="empty file"):
        _read_all(b"")
    assert _read_all(bytes(1024)) == []  # only the end blocks: an empty archive
