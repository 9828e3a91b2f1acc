"""The hash and write side of a download: a fixed pool of buffers and two threads.

The receiving thread fills a buffer and hands it over; one thread hashes it, the next writes
it, and the buffer goes back to the pool. Hashing and writing used to share one thread: with a
disk that throttles dirty pages the write blocked while the hash (the other core's work) sat
idle, and the profile showed the two adding up (bench/profiles/big-before.txt). Both queues
keep file order, so the digest always covers exactly the bytes written, in order.
"""

from __future__ import annotations

import ctypes
import hashlib
import queue
import sys
import threading
from collections.abc import Callable
from typing import BinaryIO, Final, cast

BUFFER_SIZE: Final = 4 << 20
BUFFERS: Final = 4  # 16 MiB per download in flight, whatever the file size
WRITE_BEHIND: Final = 32 << 20

_Item = tuple[memoryview, int] | None


class Writer:
    """Hashes on one thread and writes on another while the caller receives.

    Nothing is copied, and memory stays at `buffers` x `size` whatever the file size. An
    error on either thread is raised to the caller at its next `free_buffer` or at `close`.
    """

    def __init__(
        self,
        out: BinaryIO,
        digest: hashlib._Hash,
        *,
        buffers: int = BUFFERS,
        size: int = BUFFER_SIZE,
    ) -> None:
        self._out = out
        self._digest = digest
        self._free: queue.Queue[memoryview] = queue.Queue()
        for _ in range(buffers):
            self._free.put(memoryview(bytearray(size)))
        self._work: queue.Queue[_Item] = queue.Queue()
        self._hashed: queue.Queue[_Item] = queue.Queue()
        self._error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._hash_run, name="sdprov-hash", daemon=True),
            threading.Thread(target=self._write_run, name="sdprov-write", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _hash_run(self) -> None:
        update = self._digest.update
        while (item := self._work.get()) is not None:
            if self._error is None:
                try:
                    update(item[0][: item[1]])
                except BaseException as exc:  # surfaced on the receiving thread
                    self._error = exc
            self._hashed.put(item)
        self._hashed.put(None)

    def _write_run(self) -> None:
        write = self._out.write
        flusher = _WriteBehind(self._out)
        while (item := self._hashed.get()) is not None:
            buffer, n = item
            if self._error is None:
                try:
                    write(buffer[:n])
                    flusher.wrote(n)
                except BaseException as exc:  # surfaced on the receiving thread
                    self._error = exc
            self._free.put(buffer)

    def free_buffer(self) -> memoryview:
        if self._error is not None:
            raise self._error
        return self._free.get()

    def wait_buffer(self, timeout: float) -> memoryview | None:
        """A free buffer, or None after `timeout` seconds (the caller checks for a stop)."""
        if self._error is not None:
            raise self._error
        try:
            return self._free.get(timeout=timeout)
        except queue.Empty:
            return None

    def give_back(self, buffer: memoryview) -> None:
        self._free.put(buffer)

    def put(self, buffer: memoryview, n: int) -> None:
        self._work.put((buffer, n))

    def close(self) -> None:
        """Wait until every buffer handed over is hashed and written (both threads end)."""
        self._work.put(None)
        for thread in self._threads:
            thread.join()
        self._out.flush()
        if self._error is not None:
            raise self._error


class _WriteBehind:
    """Starts disk writeback every WRITE_BEHIND bytes (Linux `sync_file_range`).

    The fsync before the rename must not then flush the whole file at the end: on the bench
    disk that tail was ~0.25 s per GiB. Where the call is missing this does nothing.
    """

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._fd = out.fileno()
        self._start = out.tell()
        self._pending = 0

    def wrote(self, n: int) -> None:
        self._pending += n
        if self._pending >= WRITE_BEHIND and _sync_file_range is not None:
            self._out.flush()
            _sync_file_range(self._fd, self._start, self._pending, _SYNC_FILE_RANGE_WRITE)
            self._start += self._pending
            self._pending = 0


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], function)


_SYNC_FILE_RANGE_WRITE: Final = 2
_sync_file_range = _load_sync_file_range()
