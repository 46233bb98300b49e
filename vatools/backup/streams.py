"""Small stream adapters: hashing and counting, and gzip compression on a second thread.

Everything works in fixed-size chunks, so memory does not grow with the data.
zlib and hashlib release the GIL on large buffers, so compressing on a worker thread
overlaps with the main thread's file system work (reading or writing many small files).
"""

from __future__ import annotations

import hashlib
import queue
import threading
import zlib
from typing import IO

CHUNK = 1 << 20
QUEUE_DEPTH = 4  # chunks in flight: bounds memory to a few MiB


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


class GzipThreadWriter:
    """A write-only file object that gzips on a worker thread into `sink`.

    tarfile writes small pieces; they are gathered into CHUNK-sized buffers first.
    `tell()` counts uncompressed bytes (tarfile asks for it).
    """

    def __init__(self, sink: HashingWriter, level: int = 6) -> None:
        self.sink = sink
        self.uncompressed = 0
        self._buffer = bytearray()
        self._queue: queue.Queue[bytes | None] = queue.Queue(QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip wrapper
        self._thread = threading.Thread(target=self._work, name="gzip", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            while (chunk := self._queue.get()) is not None:
                self.sink.write(self._compressor.compress(chunk))
            self.sink.write(self._compressor.flush())
        except BaseException as e:  # re-raised on the main thread
            self._error = e
            while self._queue.get() is not None:  # let the producer finish
                pass

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, data: bytes) -> int:
        self._buffer += data
        self.uncompressed += len(data)
        if len(self._buffer) >= CHUNK:
            self._check()
            self._queue.put(bytes(self._buffer))
            self._buffer.clear()
        return len(data)

    def tell(self) -> int:
        return self.uncompressed

    def close(self) -> None:
        if self._buffer:
            self._queue.put(bytes(self._buffer))
            self._buffer.clear()
        self._queue.put(None)
        self._thread.join()
        self._check()


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
