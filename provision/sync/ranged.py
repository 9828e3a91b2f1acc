"""One large file over several connections, each fetching its own byte ranges.

CDNs often cap each connection (Civitai's storage among them), so one stream stays far below
the link. Here the rest of the file is cut into PIECE-sized pieces; `connections` workers each
take the next piece (`ByteSource.open(start, end)`: a closed Range) into a buffer from the
writer's fixed pool, and a sequencer hands finished pieces to the hash+write thread in file
order. So the sha256 is still computed in one pass, memory is the pool (the window) whatever
the file size, and the partial file only ever grows contiguously: after a crash or Ctrl-C it
holds a prefix of the file, exactly what a resume and the crash suite expect. A piece never
reaches the partial out of order, so it can never hold a hole counted as received bytes.

Used only when the server answered the first request with 206 and enough of the file is left;
otherwise `provision.sync.download` keeps its single stream.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Final

from provision.errors import UsageError
from provision.net.transfer import RawResponse
from provision.sync.download import (
    Cancelled,
    DownloadJob,
    ProgressSink,
    _check_response,
    _Meter,
)
from provision.sync.writer import Writer

PIECE: Final = 8 << 20
WINDOW_BYTES: Final = 64 << 20  # piece buffers of one file, whatever the connections
# Below this much left, the extra requests buy nothing measurable (docs/decisions.md).
MIN_RANGED: Final = 64 << 20
DEFAULT_CONNECTIONS: Final = 4
MAX_CONNECTIONS: Final = 16
POLL: Final = 0.1  # how often waiting threads look at the stop flag
# The default is adaptive: a file starts on one stream and goes parallel only when that stream
# stays under FAST for its first PROBE seconds (a capped CDN connection). A fast single stream
# (loopback, a NAS near its own cap) gains nothing from more and loses CPU to them: on this VM
# 4 connections uncapped took 1.2-1.6x the single stream's time (docs/decisions.md).
PROBE: Final = 1.0
FAST: Final = 100 << 20  # bytes per second


def explicit() -> bool:
    """Whether the user chose the connections (`--connections` / SDPROV_CONNECTIONS): then
    they are used from the first byte, with no probe."""
    return bool(os.environ.get("SDPROV_CONNECTIONS", "").strip())


def connections() -> int:
    """`SDPROV_CONNECTIONS` (set by `sync --connections`), else DEFAULT_CONNECTIONS."""
    raw = os.environ.get("SDPROV_CONNECTIONS", "").strip()
    if not raw:
        return DEFAULT_CONNECTIONS
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_CONNECTIONS:
        raise UsageError(
            f"SDPROV_CONNECTIONS must be a whole number from 1 to {MAX_CONNECTIONS}, got {raw!r}"
        )
    return int(raw)


def window(count: int) -> int:
    """Piece buffers in flight: one per connection plus slack, so a slow piece at the head
    does not idle the others at once (6 x 8 MiB for the default 4)."""
    return count + max(2, count // 2)


def piece_size(count: int) -> int:
    """PIECE, halved until the window fits WINDOW_BYTES (8 connections: 4 MiB pieces)."""
    size = PIECE
    while size > 1 << 20 and window(count) * size > WINDOW_BYTES:
        size //= 2
    return size


def wanted(response: RawResponse, have: int, size: int, count: int) -> bool:
    return count > 1 and response.status_code == 206 and size - have >= MIN_RANGED


class _Stopped(Exception):
    """Another worker failed first: this one stops; the first error is the one raised."""


@dataclass(slots=True)
class _Run:
    """What the workers of one ranged receive share; every field is guarded by `lock`."""

    job: DownloadJob
    writer: Writer
    sink: ProgressSink
    base: int  # the offset of piece 0: the partial's size when this receive began
    piece: int  # bytes per piece
    have: int  # contiguous bytes handed to the writer
    next_piece: int = 1  # piece 0 comes from the first response
    pieces: int = 0
    done: dict[int, tuple[memoryview, int]] = field(default_factory=dict)
    flushed: int = 0  # pieces handed to the writer, in order
    stop: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    active: set[RawResponse] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def span(self, index: int) -> tuple[int, int]:
        start = self.base + index * self.piece
        return start, min(start + self.piece, self.job.size) - 1

    def claim(self) -> int | None:
        with self.lock:
            if self.next_piece >= self.pieces or self.stop.is_set():
                return None
            self.next_piece += 1
            return self.next_piece - 1

    def finish(self, index: int, buffer: memoryview, n: int) -> None:
        """A full piece arrived: pass it, and every piece it unblocks, to the writer in order."""
        with self.lock:
            self.done[index] = (buffer, n)
            while (ready := self.done.pop(self.flushed, None)) is not None:
                self.writer.put(*ready)
                self.have += ready[1]
                self.flushed += 1

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = exc
            self.stop.set()
            for response in self.active:
                response.abort()  # wake a worker blocked in a receive


def receive(
    job: DownloadJob,
    first: RawResponse,
    writer: Writer,
    have: int,
    sink: ProgressSink,
    count: int,
) -> int:
    """Fetch bytes `have`.. to the end over `count` connections; `first` (a 206 from `have`)
    serves piece 0. Returns the contiguous size handed to `writer`; raises the first error
    of any worker (the writer still gets every piece before it, so a resume loses little)."""
    piece = piece_size(count)
    run = _Run(job=job, writer=writer, sink=sink, base=have, piece=piece, have=have)
    run.pieces = -(-(job.size - have) // piece)
    # Piece 0's buffer is taken before any worker starts: every claimed piece then holds a
    # buffer, so the lowest unfinished piece can always finish (the workers could otherwise
    # fill the whole window with later pieces, waiting for piece 0 forever).
    buffer = writer.free_buffer()
    workers = [_start(run) for _ in range(count - 1)]
    meter = _Meter(job.key, sink)
    try:
        n = _fill(run, first, buffer, piece if run.pieces > 1 else job.size - have, meter)
        run.finish(0, buffer, n)
    except BaseException as exc:
        run.fail(exc)
    finally:
        meter.flush()
        first.close()  # the rest of its body is fetched piece by piece
    workers.append(_start(run))
    _supervise(run, workers)
    if run.error is not None:
        raise run.error
    return run.have


def _start(run: _Run) -> threading.Thread:
    thread = threading.Thread(target=_work, args=(run,), name="sdprov-range", daemon=True)
    thread.start()
    return thread


def _supervise(run: _Run, workers: list[threading.Thread]) -> None:
    cancel = run.job.cancel
    for thread in workers:
        while thread.is_alive():
            thread.join(POLL)
            if cancel is not None and cancel.is_set() and not run.stop.is_set():
                run.fail(Cancelled(run.job.key, run.have))


def _take_buffer(run: _Run) -> memoryview | None:
    """A free piece buffer, waiting while the window is full; None once the run stopped."""
    while not run.stop.is_set():
        buffer = run.writer.wait_buffer(POLL)
        if buffer is not None:
            return buffer
    return None


def _work(run: _Run) -> None:
    meter = _Meter(run.job.key, run.sink)
    try:
        while (buffer := _take_buffer(run)) is not None:
            index = run.claim()
            if index is None:
                run.writer.give_back(buffer)
                return
            start, end = run.span(index)
            try:
                with run.job.source.open(start, end) as response:
                    _check_response(run.job, response, start)
                    n = _fill(run, response, buffer, end - start + 1, meter)
            except BaseException:
                run.writer.give_back(buffer)
                raise
            run.finish(index, buffer, n)
    except BaseException as exc:
        run.fail(exc)
    finally:
        meter.flush()


def _fill(run: _Run, response: RawResponse, buffer: memoryview, want: int, meter: _Meter) -> int:
    """Receive exactly `want` bytes of `response` into `buffer`."""
    import httpx

    with run.lock:
        run.active.add(response)
    try:
        filled = 0
        cancel = run.job.cancel
        while filled < want:
            if cancel is not None and cancel.is_set():
                raise Cancelled(run.job.key, run.have)
            if run.stop.is_set():
                raise _Stopped
            n = response.readinto1(buffer[filled:want])
            if not n:
                raise httpx.RemoteProtocolError(
                    f"{run.job.key}: a range closed after {filled} of {want} bytes"
                )
            filled += n
            meter.add(n)
        return filled
    finally:
        with run.lock:
            run.active.discard(response)
