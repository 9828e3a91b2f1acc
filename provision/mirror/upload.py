"""Resumable multipart upload of one verified local file to one mirror key.

A push that dies (Ctrl-C, a lost link, a killed job) leaves its multipart upload open in the
bucket. The next push finds it (ListMultipartUploads on the exact key), lists its parts and
sends only the parts that are missing or whose MD5 differs from the local bytes: a multi-GB
checkpoint is never sent twice. Each part carries Content-MD5, so OSS refuses a part damaged
on the way; the bytes themselves were checked against the lock's sha256 before the upload.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from provision.errors import UsageError
from provision.mirror.store import MirrorStore, Part

DEFAULT_PART_SIZE: Final = 32 << 20
MIN_PART_SIZE: Final = 100 << 10  # OSS: every part but the last is at least 100 KiB
MAX_PARTS: Final = 10_000


def part_size_for(size: int) -> int:
    """`SDPROV_OSS_PART_SIZE` (bytes) or 32 MiB, grown so a file needs at most 10,000 parts."""
    raw = os.environ.get("SDPROV_OSS_PART_SIZE", "").strip()
    try:
        configured = int(raw) if raw else DEFAULT_PART_SIZE
    except ValueError:
        raise UsageError(f"SDPROV_OSS_PART_SIZE={raw!r} is not a number of bytes") from None
    if configured < MIN_PART_SIZE:
        raise UsageError(f"SDPROV_OSS_PART_SIZE must be at least {MIN_PART_SIZE} bytes")
    return max(configured, -(-size // MAX_PARTS))


@dataclass(frozen=True, slots=True)
class UploadOutcome:
    parts: int
    parts_sent: int
    parts_kept: int  # found already uploaded by an earlier, interrupted push
    bytes_sent: int


def upload_file(
    store: MirrorStore,
    key: str,
    path: Path,
    *,
    size: int,
    metadata: Mapping[str, str],
    jobs: int = 4,
    advance: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
) -> UploadOutcome:
    part_size = part_size_for(size)
    upload_id = store.find_upload(key)
    existing = store.list_parts(key, upload_id) if upload_id else {}
    if upload_id is None:
        upload_id = store.initiate(key, metadata)
    spans = [
        (number, offset, min(part_size, size - offset))
        for number, offset in enumerate(range(0, max(size, 1), part_size), start=1)
    ]
    lock = threading.Lock()
    sent = [0, 0]  # parts, bytes

    def one(span: tuple[int, int, int]) -> Part:
        number, offset, length = span
        if cancel is not None and cancel.is_set():
            raise KeyboardInterrupt
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read(length)
        if len(data) != length:
            raise OSError(f"{path} changed size while it was uploaded")
        md5 = hashlib.md5(data).digest()  # noqa: S324 (OSS part checksum, not security)
        have = existing.get(number)
        if have is not None and have.size == length and have.etag.strip('"').lower() == md5.hex():
            if advance is not None:
                advance(length)
            return have
        etag = store.upload_part(key, upload_id, number, data, md5)
        with lock:
            sent[0] += 1
            sent[1] += length
        if advance is not None:
            advance(length)
        return Part(number, length, etag)

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="sdprov-up") as pool:
        parts = list(pool.map(one, spans))
    store.complete(key, upload_id, parts)
    return UploadOutcome(
        parts=len(parts), parts_sent=sent[0], parts_kept=len(parts) - sent[0], bytes_sent=sent[1]
    )
