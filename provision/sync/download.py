"""Verified, resumable, atomic download of one locked file.

Bytes stream into `<root>/.sdprov/partial/<sha256>` (same filesystem as the target), are
hashed in the same pass, and reach the kind folder only through `os.replace` after size and
sha256 match. A crash at any point leaves at most a partial file under `.sdprov/`, which the
next run resumes with `Range`. The receive loop and the hash+write run on two threads
(hashlib and file writes release the GIL), so hashing costs no extra wall time.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, Protocol

import httpx

from provision.console import human_bytes
from provision.errors import (
    ChecksumMismatch,
    DownloadError,
    FileSystemError,
    SizeMismatch,
    SourceError,
)
from provision.net.http import RETRYABLE_EXCEPTIONS, RetryPolicy, describe_transient, redact
from provision.net.transfer import RawResponse
from provision.sources import ByteSource, reject_error_page
from provision.sync.writer import BUFFER_SIZE, Writer

log = logging.getLogger(__name__)

CHUNK: Final = 1 << 20


class ProgressSink(Protocol):
    def advance(self, key: str, nbytes: int) -> None: ...
    def reset(self, key: str, completed: int) -> None: ...
    def note(self, key: str, message: str) -> None: ...


class NullProgress:
    def advance(self, key: str, nbytes: int) -> None:
        pass

    def reset(self, key: str, completed: int) -> None:
        pass

    def note(self, key: str, message: str) -> None:
        log.info("%s: %s", key, message)


@dataclass(frozen=True, slots=True, kw_only=True)
class DownloadJob:
    key: str  # the lock path, for messages and progress
    dest: Path
    partial: Path
    size: int
    sha256: str
    source: ByteSource
    before_place: Callable[[Path], None] | None = None  # inspection: raise to refuse the file
    cancel: threading.Event | None = None  # set on Ctrl-C: stop at the next receive
    source_type: str = ""  # civitai | hf | url: picks the hint of a checksum mismatch


class Cancelled(DownloadError):
    def __init__(self, key: str, have: int) -> None:
        super().__init__(f"{key}: interrupted after {have} bytes; the next run resumes")


class _RestartFromZero(Exception):
    """The server ignored Range (or the partial is unusable): start the file over."""


def fetch(
    job: DownloadJob,
    *,
    retry: RetryPolicy,
    progress: ProgressSink | None = None,
) -> None:
    """Download, verify and place `job.dest`. Raises an SdprovError (or an OSError that names
    its path) on failure."""
    try:
        _fetch(job, retry=retry, sink=progress or NullProgress())
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise  # the CLI names the path (provision.errors.from_os_error)
        # A write error names no file: say which one, and how much room this file still needs.
        have = _partial_size(job.partial)
        kept = f"; the {human_bytes(have)} received are kept for the next run" if have else ""
        raise FileSystemError(
            f"{job.key}: the disk filled up while downloading to {job.partial}: "
            f"{human_bytes(job.size - have)} more are needed for this file, "
            f"{human_bytes(_free_bytes(job.partial.parent))} are free{kept}",
            hint="free some space on that file system, then run `sdprov sync` again to resume",
            path=str(job.partial),
        ) from exc


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def _fetch(job: DownloadJob, *, retry: RetryPolicy, sink: ProgressSink) -> None:
    job.partial.parent.mkdir(parents=True, exist_ok=True)
    digest, have = _resume_state(job)
    sink.reset(job.key, have)
    failures = 0
    job.partial.touch(exist_ok=True)
    while have < job.size:
        before = have
        try:
            # On a transport error the writer has flushed every chunk it was given into both
            # the file and the digest, so the running digest stays valid for the resume.
            have = _receive(job, digest, have, sink)
        except _RestartFromZero:
            sink.note(job.key, "server ignored the Range request; restarting from 0")
            digest, have = hashlib.sha256(), 0
            sink.reset(job.key, 0)
            continue
        except RETRYABLE_EXCEPTIONS as exc:
            have = _partial_size(job.partial)
            # The budget resets whenever bytes arrived: a long download on a flaky CDN
            # may stall many times, yet still make progress.
            failures = 0 if have > before else failures + 1
            if failures >= retry.attempts:
                raise DownloadError(
                    f"{job.key}: download kept failing ({describe_transient(exc)}); "
                    f"{have} of {job.size} bytes kept for the next run",
                    hint="run `sdprov sync` again to resume",
                ) from exc
            delay = retry.delay(failures, getattr(exc, "retry_after", None))
            sink.note(job.key, f"{describe_transient(exc)}; resuming at {have} in {delay:.1f}s")
            time.sleep(delay)
    _verify_and_place(job, digest, have)


def _resume_state(job: DownloadJob) -> tuple[hashlib._Hash, int]:
    have = _partial_size(job.partial)
    if have > job.size:
        job.partial.unlink()
        have = 0
    digest = hashlib.sha256()
    if have:
        # hashlib state cannot be saved across processes: re-read what we already have.
        hash_file_into(digest, job.partial)
    return digest, have


HASH_READ: Final = 4 << 20  # one reused buffer: no allocation per read, few syscalls


def hash_file_into(digest: hashlib._Hash, path: Path) -> hashlib._Hash:
    """Feed a file to `digest` through one reused HASH_READ buffer (memory stays flat);
    return the digest. hashlib releases the GIL on updates this large, so several files
    hash on several cores (provision.sync.status.hash_files)."""
    with path.open("rb", buffering=0) as fh:
        buffer = bytearray(min(HASH_READ, max(os.fstat(fh.fileno()).st_size, 1)))
        view = memoryview(buffer)
        while n := fh.readinto(view):
            digest.update(view[:n])
    return digest


def sha256_file(path: Path) -> str:
    return hash_file_into(hashlib.sha256(), path).hexdigest()


def _partial_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _receive(
    job: DownloadJob,
    digest: hashlib._Hash,
    have: int,
    sink: ProgressSink,
) -> int:
    from provision.sync import ranged  # it builds on this module

    count = ranged.connections()
    go_parallel = False
    with job.source.open(have, job.size - 1) as response:  # closed: never past the size
        _check_response(job, response, have)
        eligible = ranged.wanted(response, have, job.size, count)
        with job.partial.open("ab" if have else "wb") as out:
            if eligible and ranged.explicit():
                have = _receive_ranged(job, response, out, digest, have, sink, count)
            else:
                writer = _sized_writer(out, digest, job.size - have)
                meter = _Meter(job.key, sink)
                probe = _Probe(have, job.size) if eligible else None
                try:
                    have = _pump(job, response, writer, meter, have, probe)
                finally:
                    meter.flush()
                    writer.close()
                go_parallel = probe is not None and probe.slow
    if go_parallel:
        # The first stream stopped where the probe found it slow; the rest comes over ranges.
        log.debug("%s: one connection is slow; fetching the rest over %d", job.key, count)
        with job.source.open(have, job.size - 1) as response:
            _check_response(job, response, have)
            with job.partial.open("ab") as out:
                have = _receive_ranged(job, response, out, digest, have, sink, count)
    if have < job.size:
        # The server closed early without a transport error (truncated body): resume.
        raise httpx.RemoteProtocolError(f"connection closed after {have} of {job.size} bytes")
    return have


def _receive_ranged(
    job: DownloadJob,
    response: RawResponse,
    out: BinaryIO,
    digest: hashlib._Hash,
    have: int,
    sink: ProgressSink,
    count: int,
) -> int:
    from provision.sync import ranged

    writer = Writer(out, digest, buffers=ranged.window(count), size=ranged.piece_size(count))
    try:
        if ranged.wanted(response, have, job.size, count):
            return ranged.receive(job, response, writer, have, sink, count)
        meter = _Meter(job.key, sink)  # the server stopped answering Range: one stream
        try:
            return _pump(job, response, writer, meter, have)
        finally:
            meter.flush()
    finally:
        writer.close()


class _Probe:
    """Watches a single stream's first PROBE seconds: `slow` once it stayed under FAST with
    enough of the file left to be worth more connections (provision.sync.ranged)."""

    def __init__(self, have: int, size: int) -> None:
        self._start = time.monotonic()
        self._from = have
        self._size = size
        self.slow = False
        self.done = False

    def check(self, have: int) -> bool:
        """True when the stream should stop here and the rest go parallel."""
        from provision.sync import ranged

        elapsed = time.monotonic() - self._start
        if elapsed < ranged.PROBE:
            return False
        self.done = True
        rate = (have - self._from) / elapsed
        self.slow = rate < ranged.FAST and self._size - have >= ranged.MIN_RANGED
        return self.slow


def _sized_writer(out: BinaryIO, digest: hashlib._Hash, expected: int) -> Writer:
    """Buffers sized to the file: zeroing 16 MiB of them for a 40 KB LoRA was a third of a
    small-file sync's CPU. One byte more than expected, so the body's end is seen without a
    second pass round the loop."""
    size = min(BUFFER_SIZE, max(expected + 1, 64 << 10))
    return Writer(out, digest) if size == BUFFER_SIZE else Writer(out, digest, buffers=2, size=size)


def _pump(
    job: DownloadJob,
    response: RawResponse,
    writer: Writer,
    meter: _Meter,
    have: int,
    probe: _Probe | None = None,
) -> int:
    """Fill the big buffers one receive at a time until the body ends (or until `probe`
    finds the stream slow: the caller then fetches the rest over several connections).

    The buffers stay large (few hand-offs to the hash+write thread on a fast link), but each
    receive returns as soon as bytes arrive: progress moves and Ctrl-C is seen between
    receives, not once per 4 MiB, on a slow link.
    """
    while True:
        buffer = writer.free_buffer()
        filled = 0
        try:
            while filled < len(buffer):
                if job.cancel is not None and job.cancel.is_set():
                    raise Cancelled(job.key, have)
                n = response.readinto1(buffer[filled:])
                if not n:
                    break
                filled += n
                have += n
                meter.add(n)
                if have > job.size:
                    raise SizeMismatch(job.key, job.size, have)
                if probe is not None and not probe.done and probe.check(have):
                    break
        finally:
            # Whatever arrived is written and hashed, even on an error: the running digest
            # then matches the partial file, and a resume loses nothing it was given.
            if filled:
                writer.put(buffer, filled)
            else:
                writer.give_back(buffer)
        if filled < len(buffer) or (probe is not None and probe.slow):
            return have


class _Meter:
    """Hands byte counts to the progress sink in batches: a few calls a second, not one per
    receive (on loopback a receive can be 64 KiB at 3 GB/s)."""

    BATCH: Final = 1 << 20
    INTERVAL: Final = 0.1

    def __init__(self, key: str, sink: ProgressSink) -> None:
        self._key = key
        self._sink = sink
        self._pending = 0
        self._last = time.monotonic()

    def add(self, n: int) -> None:
        self._pending += n
        if self._pending >= self.BATCH:
            self.flush()
        elif (now := time.monotonic()) - self._last >= self.INTERVAL:
            self._last = now
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._sink.advance(self._key, self._pending)
            self._pending = 0


def _check_response(job: DownloadJob, response: RawResponse, have: int) -> None:
    reject_error_page(response, job.source, job.key, note="; nothing was written")
    if response.headers.get("content-encoding", "identity") not in ("identity", ""):
        raise SourceError(f"{job.key}: the server compressed the file although we asked it not to")
    if response.status_code == 200 and have:
        raise _RestartFromZero
    if response.status_code == 206:
        content_range = response.headers.get("content-range", "")
        start, _, total = content_range.removeprefix("bytes ").partition("/")
        first = start.partition("-")[0]
        if first != str(have) or (total.isdigit() and int(total) != job.size):
            raise SizeMismatch(job.key, job.size, int(total) if total.isdigit() else -1)


def _verify_and_place(job: DownloadJob, digest: hashlib._Hash, have: int) -> None:
    if have != job.size:
        raise SizeMismatch(job.key, job.size, have)
    actual = digest.hexdigest()
    if actual != job.sha256:
        # These bytes can never become the right file: drop them so the next run starts clean.
        job.partial.unlink(missing_ok=True)
        raise ChecksumMismatch(
            f"{job.key} (from {job.source.describe()})",
            job.sha256,
            actual,
            # A wrapping source (the OSS mirror) says who actually served the bytes.
            source_type=getattr(job.source, "source_type", None) or job.source_type,
        )
    with job.partial.open("rb+") as fh:
        os.fsync(fh.fileno())
    if job.before_place is not None:
        job.before_place(job.partial)  # may raise: the file then stays out of the kind folder
    job.dest.parent.mkdir(parents=True, exist_ok=True)
    job.partial.replace(job.dest)
    _fsync_dir(job.dest.parent)
    log.debug("placed %s from %s", job.dest, redact(job.source.describe()))


def _fsync_dir(path: Path) -> None:
    # Makes the rename durable on local disks; NFS commits on close, where this is a no-op.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
