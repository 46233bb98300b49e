"""Small stream adapters: hashing and counting, gzip compression on worker threads, and
gunzip on a second thread.

Everything works in fixed-size chunks, so memory does not grow with the data.
zlib and hashlib release the GIL on large buffers, so compressing on worker threads
overlaps with the main thread's file system work (reading or writing many small files).
"""

from __future__ import annotations

import hashlib
import os
import queue
import struct
import threading
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

CHUNK = 1 << 20
QUEUE_DEPTH = 4  # chunks in flight: bounds memory to a few MiB
MAX_WORKERS = 4  # compressing threads, at most one per CPU
DICTIONARY = 32 << 10  # deflate's window: the most of the previous block that can help
# gzip header (RFC 1952): deflate, no flags, no time stamp (reproducible), no extra flags, Unix
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"


class HashingWriter:
    """Pass writes through to `sink`, hashing and counting them."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.sha256 = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.count += len(data)
        self.sink.write(data)
        return len(data)


class HashingReader:
    """Read from `source`, hashing and counting what was read."""

    def __init__(self, source: IO[bytes], algorithm: str = "sha256") -> None:
        self.source = source
        self.hash = hashlib.new(algorithm)
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.hash.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        """Read what is left, so that the hash covers the whole member."""
        while self.read(CHUNK):
            pass


class ParallelGzipWriter:
    """A write-only file object that gzips into `sink`, compressing blocks side by side.

    The data is cut into CHUNK-sized blocks. Each block is deflated on a worker thread on its
    own, primed with the last 32 KiB of the block before it (so the ratio stays that of one
    stream) and ended with a sync flush; the pieces are written in order between one gzip
    header and trailer. The result is one ordinary gzip stream (pigz makes the same kind),
    and the same bytes for the same input whatever the number of workers.
    `tell()` counts uncompressed bytes (tarfile asks for it).
    """

    def __init__(self, sink: HashingWriter, level: int = 6) -> None:
        self.sink = sink
        self.level = level
        self.uncompressed = 0
        self._buffer = bytearray()
        self._dictionary = b""  # the tail of the previous block
        self._crc = 0
        workers = max(1, min(MAX_WORKERS, os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="gzip")
        self._pending: deque[Future[bytes]] = deque()
        self._in_flight = 2 * workers  # blocks queued or compressing: bounds memory
        self.sink.write(GZIP_HEADER)

    def write(self, data: bytes) -> int:
        self._buffer += data
        self.uncompressed += len(data)
        while len(self._buffer) >= CHUNK:
            block = bytes(self._buffer[:CHUNK])
            del self._buffer[:CHUNK]
            self._submit(block, last=False)
        return len(data)

    def tell(self) -> int:
        return self.uncompressed

    def _submit(self, block: bytes, last: bool) -> None:
        self._crc = zlib.crc32(block, self._crc)
        self._pending.append(self._pool.submit(_deflate, block, self._dictionary, self.level,
                                               last))
        self._dictionary = block[-DICTIONARY:]
        while len(self._pending) > self._in_flight:
            self.sink.write(self._pending.popleft().result())

    def close(self) -> None:
        try:
            self._submit(bytes(self._buffer), last=True)
            self._buffer.clear()
            while self._pending:
                self.sink.write(self._pending.popleft().result())
            self.sink.write(struct.pack("<II", self._crc, self.uncompressed & 0xFFFFFFFF))
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _deflate(block: bytes, dictionary: bytes, level: int, last: bool) -> bytes:
    """Raw deflate of one block (zlib releases the GIL while it works)."""
    if dictionary:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15, zdict=dictionary)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(block) + compressor.flush(zlib.Z_FINISH if last
                                                         else zlib.Z_SYNC_FLUSH)


class GunzipThreadReader:
    """A read-only file object giving the gunzipped content of `source`, inflated on a thread.

    `max_output` bounds the inflated size: beyond it, reading fails (a gzip bomb).
    """

    def __init__(self, source: HashingReader, max_output: int) -> None:
        self.source = source
        self.max_output = max_output
        self.produced = 0
        self._pending = b""
        self._offset = 0  # into _pending: slicing off the front would copy the rest each time
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(QUEUE_DEPTH)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="gunzip", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            inflater = zlib.decompressobj(31)
            while not self._stop.is_set():
                raw = self.source.read(CHUNK // 4)
                if not raw:
                    if not inflater.eof:
                        raise EOFError("compressed data ends before the end marker")
                    break
                data = inflater.decompress(raw, CHUNK)
                while data:
                    self._queue.put(data)
                    data = inflater.decompress(inflater.unconsumed_tail, CHUNK)
                if inflater.eof:
                    if inflater.unused_data or self.source.read(1):
                        raise ValueError("data after the end of the compressed stream")
                    break
            self._queue.put(None)
        except BaseException as e:
            self._queue.put(e)

    def next_chunk(self) -> bytes:
        """The next piece of inflated data as it came (up to CHUNK bytes), b"" at the end."""
        if self._offset < len(self._pending):  # left over by read()
            piece = self._pending[self._offset:]
            self._pending, self._offset = b"", 0
            return piece
        item = self._queue.get()
        if item is None:
            self._queue.put(None)  # stay at end of file
            return b""
        if isinstance(item, BaseException):
            self._queue.put(item)
            raise item
        self.produced += len(item)
        if self.produced > self.max_output:
            raise ValueError(f"uncompressed size exceeds {self.max_output} bytes")
        return item

    def read(self, size: int = -1) -> bytes:
        out = bytearray()
        while size < 0 or len(out) < size:
            if self._offset >= len(self._pending):
                item = self._queue.get()
                if item is None:
                    self._queue.put(None)  # stay at end of file
                    break
                if isinstance(item, BaseException):
                    self._queue.put(item)
                    raise item
                self.produced += len(item)
                if self.produced > self.max_output:
                    raise ValueError(f"uncompressed size exceeds {self.max_output} bytes")
                self._pending, self._offset = item, 0
            left = len(self._pending) - self._offset
            take = left if size < 0 else min(size - len(out), left)
            out += memoryview(self._pending)[self._offset:self._offset + take]
            self._offset += take
        return bytes(out)

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():  # unblock a worker waiting on a full queue
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
