"""`mirror push`: put every locked file the mirror lacks into it, verified.

Presence is decided by key and size (a HEAD per unique sha256), never by downloading. The
bytes come from the models root when a file there hashes to the lock's sha256, else from the
entry's own source through sync's verified download (into a work folder that keeps partials
for the next run); either way they match the lock before the first byte goes up. After the
upload a HEAD checks the object's size and recorded sha256.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from provision.errors import MirrorError, SdprovError
from provision.lock.lockfile import LockEntry
from provision.mirror.store import MirrorStore, RemoteObject
from provision.mirror.upload import UploadOutcome, upload_file
from provision.net.http import check_status
from provision.net.transfer import open_stream
from provision.sources import SourceContext
from provision.sources.registry import byte_source
from provision.sync.apply import Progress
from provision.sync.download import DownloadJob, ProgressSink, fetch, sha256_file

META_SHA256: Final = "sdprov-sha256"
META_SIZE: Final = "sdprov-size"


def object_metadata(entry: LockEntry) -> dict[str, str]:
    """The lock metadata stored with an object (`x-oss-meta-*`: ASCII, so quoted)."""
    raw = entry.to_raw()
    source = json.dumps(raw.get("source", {}), sort_keys=True, separators=(",", ":"))
    return {
        META_SHA256: entry.sha256,
        META_SIZE: str(entry.size),
        "sdprov-kind": str(raw["kind"]),
        "sdprov-path": urllib.parse.quote(entry.path, safe="/"),
        "sdprov-base": str(raw.get("base", "")),
        "sdprov-format": str(raw.get("format", "")),
        "sdprov-source": urllib.parse.quote(source, safe=""),
    }


def object_matches(entry: LockEntry, found: RemoteObject | None) -> bool:
    """Present for the mirror's purpose: same size, and no other sha256 recorded on it."""
    if found is None or found.size != entry.size:
        return False
    return found.metadata.get(META_SHA256, entry.sha256) == entry.sha256


@dataclass(frozen=True, slots=True)
class PushItem:
    entry: LockEntry
    key: str
    present: bool
    local: Path | None  # a models-root file of the right size (hashed before use)
    damaged: bool = False  # present with the right size, but other bytes (--verify)


def remote_sha256(store: MirrorStore, key: str) -> str:
    """Read an object through a presigned GET and hash it (memory stays at 1 MiB)."""
    digest = hashlib.sha256()
    with open_stream(store.presign_get(key)) as response:
        check_status(
            response,
            lambda r: MirrorError(f"{store.describe(key)}: HTTP {r.status_code} reading it back"),
        )
        buffer = memoryview(bytearray(1 << 20))
        while n := response.readinto(buffer):
            digest.update(buffer[:n])
    return digest.hexdigest()


def unique_by_sha(entries: Iterable[LockEntry]) -> list[LockEntry]:
    """One entry per sha256 (two names for one file are one object)."""
    seen: dict[str, LockEntry] = {}
    for entry in sorted(entries, key=lambda e: e.sort_key):
        seen.setdefault(entry.sha256, entry)
    return list(seen.values())


def survey(
    store: MirrorStore, entries: Iterable[LockEntry], *, jobs: int = 8
) -> list[tuple[LockEntry, bool]]:
    """(entry, present in the mirror) for each unique sha256, HEADs in parallel."""
    unique = unique_by_sha(entries)

    def check(entry: LockEntry) -> tuple[LockEntry, bool]:
        key = store.location.object_key(entry.sha256)
        return entry, object_matches(entry, store.head(key))

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="sdprov-head") as pool:
        return list(pool.map(check, unique))


def plan_push(
    store: MirrorStore,
    entries: Iterable[LockEntry],
    models_root: Path | None,
    *,
    verify: bool = False,
) -> list[PushItem]:
    """What to upload. With `verify`, present objects are read back and hashed too."""
    items = []
    for entry, present in survey(store, entries):
        key = store.location.object_key(entry.sha256)
        damaged = verify and present and remote_sha256(store, key) != entry.sha256
        local = None
        if models_root is not None:
            candidate = models_root / entry.path
            if candidate.is_file() and candidate.stat().st_size == entry.size:
                local = candidate
        items.append(PushItem(entry, key, present and not damaged, local, damaged))
    return items


@dataclass(slots=True)
class PushResult:
    uploaded: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    bytes_sent: int = 0
    parts_kept: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": not self.failures,
            "uploaded": sorted(self.uploaded),
            "present": sorted(self.present),
            "failures": dict(sorted(self.failures.items())),
            "bytes_sent": self.bytes_sent,
            "parts_resumed": self.parts_kept,
        }


def push(
    items: list[PushItem],
    store: MirrorStore,
    *,
    ctx: SourceContext,
    work_dir: Path,
    progress: Progress,
    jobs: int = 4,
) -> PushResult:
    """Upload the items not present, one file at a time (its parts in parallel)."""
    result = PushResult(present=[i.entry.path for i in items if i.present])
    cancel = threading.Event()
    for item in items:
        if item.present:
            continue
        progress.file_started(item.entry.path, item.entry.size)
        try:
            outcome = _push_one(item, store, ctx, work_dir, progress, jobs, cancel)
        except SdprovError as exc:
            result.failures[item.entry.path] = exc.render()
            progress.file_finished(item.entry.path, False, exc.message)
            continue
        except BaseException:
            cancel.set()
            raise
        result.uploaded.append(item.entry.path)
        result.bytes_sent += outcome.bytes_sent
        result.parts_kept += outcome.parts_kept
        kept = f", {outcome.parts_kept} parts resumed" if outcome.parts_kept else ""
        progress.file_finished(item.entry.path, True, f"uploaded{kept}")
    return result


def _push_one(
    item: PushItem,
    store: MirrorStore,
    ctx: SourceContext,
    work_dir: Path,
    progress: ProgressSink,
    jobs: int,
    cancel: threading.Event,
) -> UploadOutcome:
    entry = item.entry
    path = item.local
    if path is not None and sha256_file(path) != entry.sha256:
        progress.note(entry.path, "the models-root copy differs from the lock; using the source")
        path = None
    staged = None
    if path is None:
        staged = work_dir / entry.sha256
        if not _already_staged(staged, entry):
            _fetch_from_source(entry, staged, work_dir, ctx, progress, cancel)
        path = staged
    progress.reset(entry.path, 0)
    outcome = upload_file(
        store,
        item.key,
        path,
        size=entry.size,
        metadata=object_metadata(entry),
        jobs=jobs,
        advance=lambda n: progress.advance(entry.path, n),
        cancel=cancel,
    )
    found = store.head(item.key)
    if not object_matches(entry, found) or (found is not None and not found.metadata):
        raise MirrorError(
            f"{store.describe(item.key)}: after the upload the object does not match the lock "
            f"(size {found.size if found else 'missing'}, expected {entry.size})",
            hint="run `sdprov mirror push` again",
        )
    if staged is not None:
        staged.unlink(missing_ok=True)
    return outcome


def _already_staged(staged: Path, entry: LockEntry) -> bool:
    """A file fetched by an earlier push whose upload did not finish."""
    try:
        if staged.stat().st_size != entry.size:
            return False
    except FileNotFoundError:
        return False
    return sha256_file(staged) == entry.sha256


def _fetch_from_source(
    entry: LockEntry,
    staged: Path,
    work_dir: Path,
    ctx: SourceContext,
    progress: ProgressSink,
    cancel: threading.Event,
) -> None:
    fetch(
        DownloadJob(
            key=entry.path,
            dest=staged,
            partial=work_dir / "partial" / entry.sha256,
            size=entry.size,
            sha256=entry.sha256,
            source=byte_source(entry.source, ctx, entry.path),
            cancel=cancel,
        ),
        retry=ctx.retry,
        progress=progress,
    )
