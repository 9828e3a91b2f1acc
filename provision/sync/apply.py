"""Carry a sync plan out under the writer lease.

Moves, verified downloads in parallel, adoption of identical files already in place, and
removal of files sdprov placed that have left the lock. Files sdprov did not place are never
modified or removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from provision.console import human_bytes
from provision.errors import FileSystemError, SdprovError
from provision.kinds import Kind
from provision.lock.lockfile import LockEntry
from provision.net.failures import as_sdprov_error
from provision.sources import ByteSource, SourceContext
from provision.sources.registry import byte_source
from provision.sync.claims import claim
from provision.sync.classify import symlink_on_path
from provision.sync.download import (
    Cancelled,
    DownloadJob,
    NullProgress,
    ProgressSink,
    fetch,
    sha256_file,
)
from provision.sync.lease import Lease
from provision.sync.plan import Act, Action, Plan, stat_or_none
from provision.sync.result import SyncResult
from provision.sync.state import State, crash_point

log = logging.getLogger(__name__)

# Raise to refuse a verified file before it becomes visible (see provision.sync.gate).
PlaceCheck = Callable[[LockEntry, Path], None]
# Wraps an entry's own byte source, e.g. to read a mirror first (provision.mirror.source).
WrapSource = Callable[[LockEntry, ByteSource], ByteSource]
DISK_MARGIN: Final = 64 << 20


@dataclass(frozen=True, slots=True)
class _Hooks:
    """The caller's per-file hooks, passed down to every worker together."""

    place_check: PlaceCheck | None
    wrap_source: WrapSource | None
    claim_as: str


class Held(Protocol):
    """A lease or claim: `check()` raises once another writer took it over."""

    def check(self) -> None: ...


class _Unshared:
    """A shard worker holds no root lease: its per-file claims are what it holds."""

    def check(self) -> None:
        pass


class Progress(ProgressSink, Protocol):
    """What apply reports beyond byte counts; the CLI renders it (provision.console)."""

    def start(self, total_files: int, total_bytes: int) -> None: ...
    def file_started(self, key: str, size: int) -> None: ...
    def file_finished(self, key: str, ok: bool, message: str = "") -> None: ...
    def finish(self) -> None: ...


class SilentProgress(NullProgress):
    def start(self, total_files: int, total_bytes: int) -> None:
        pass

    def file_started(self, key: str, size: int) -> None:
        pass

    def file_finished(self, key: str, ok: bool, message: str = "") -> None:
        pass

    def finish(self) -> None:
        pass


def apply(
    sync_plan: Plan,
    *,
    root: Path,
    state: State,
    ctx: SourceContext,
    lease: Lease | None,
    jobs: int = 4,
    progress: Progress | None = None,
    place_check: PlaceCheck | None = None,
    wrap_source: WrapSource | None = None,
    claim_as: str = "sync",
) -> SyncResult:
    """Carry `sync_plan` out. `lease` None: a shard worker (claims per file, no root lease)."""
    sink: Progress = progress or SilentProgress()
    held: Held = lease if lease is not None else _Unshared()
    result = SyncResult()
    state.prepare()
    _check_free_space(root, sync_plan)
    hooks = _Hooks(place_check=place_check, wrap_source=wrap_source, claim_as=claim_as)
    with state.batched():
        _carry_out(sync_plan, root, state, ctx, held, jobs, sink, result, hooks)
    return result


def _carry_out(
    sync_plan: Plan,
    root: Path,
    state: State,
    ctx: SourceContext,
    held: Held,
    jobs: int,
    sink: Progress,
    result: SyncResult,
    hooks: _Hooks,
) -> None:
    for action in sync_plan.actions:
        if action.act is Act.KEEP:
            result.kept.append(action.path)
        elif action.act is Act.CONFLICT:
            result.failures[action.path] = action.reason
        elif action.act is Act.FORGET:
            state.forget(action.path)
            if "left in place" in action.reason:
                result.left_alone.append(action.path)
    for action in sync_plan.of(Act.MOVE):
        held.check()
        _move(action, root, state, result)
    work = sync_plan.of(Act.DOWNLOAD, Act.VERIFY)
    sink.start(len(work), sum(a.entry.size for a in work if a.entry))
    try:
        _run_pool(
            work,
            result,
            jobs,
            lambda a, cancel: _materialise(a, root, state, ctx, held, sink, hooks, cancel),
            sink,
        )
    finally:
        sink.finish()
    for action in sync_plan.of(Act.REMOVE):
        held.check()
        _remove(action, root, state, result)
    if any(
        a.entry is not None and a.entry.kind is Kind.EMBEDDING
        for a in (*work, *sync_plan.of(Act.MOVE))
    ) or any(a.path.startswith(f"{Kind.EMBEDDING.folder}/") for a in sync_plan.of(Act.REMOVE)):
        _touch_embeddings_dir(root)


CANCEL_GRACE: Final = 1.0  # seconds the workers get to stop at their next receive


def _run_pool(
    work: list[Action],
    result: SyncResult,
    jobs: int,
    run: Callable[[Action, threading.Event], str],
    sink: Progress,
) -> None:
    """Run `run` over `work` on `jobs` threads; every failure becomes that file's failure."""
    cancel = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="sdprov-dl")
    futures = {pool.submit(run, a, cancel): a for a in work}
    try:
        for future in as_completed(futures):
            action = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:  # one file's failure, never the pool's
                error = as_sdprov_error(exc, action.path)
                result.failures[action.path] = error.render()
                result.errors[action.path] = error.to_json()
                sink.file_finished(action.path, False, error.message)
                continue
            done = {"adopted": result.adopted, "kept": result.kept}.get(outcome, result.downloaded)
            done.append(action.path)
            sink.file_finished(action.path, True, outcome)
    except BaseException:
        # Ctrl-C: the workers stop at their next receive (a fraction of a second); what they
        # fetched stays in .sdprov/partial for the next run. A worker stuck in a stalled
        # read is not waited for beyond the grace period: it can no longer place a file,
        # since placing re-checks the lease, which is released on the way out.
        cancel.set()
        pool.shutdown(wait=False, cancel_futures=True)
        wait(futures, timeout=CANCEL_GRACE)
        raise
    pool.shutdown(wait=True)


def _check_free_space(root: Path, sync_plan: Plan) -> None:
    need = sync_plan.download_bytes
    if not need:
        return
    free = shutil.disk_usage(root).free
    if free < need + DISK_MARGIN:
        raise FileSystemError(
            f"not enough free space on {root}: the sync needs {human_bytes(need + DISK_MARGIN)} "
            f"({human_bytes(need)} to download plus a {human_bytes(DISK_MARGIN)} safety "
            f"margin), {human_bytes(free)} are free",
            hint="free some space or remove models from the manifest",
            path=str(root),
        )


def _move(action: Action, root: Path, state: State, result: SyncResult) -> None:
    assert action.entry is not None and action.origin is not None
    target = root / action.path
    target.parent.mkdir(parents=True, exist_ok=True)
    (root / action.origin).replace(target)
    crash_point("moved")
    state.record(action.path, action.entry.sha256)
    state.forget(action.origin)
    result.moved.append(action.path)


def _materialise(
    action: Action,
    root: Path,
    state: State,
    ctx: SourceContext,
    lease: Held,
    sink: Progress,
    hooks: _Hooks,
    cancel: threading.Event,
) -> str:
    entry = action.entry
    assert entry is not None
    dest = root / entry.path
    sink.file_started(entry.path, entry.size)
    if action.act is Act.VERIFY:
        if sha256_file(dest) == entry.sha256:
            lease.check()
            if hooks.place_check is not None:
                hooks.place_check(entry, dest)
            state.record(entry.path, entry.sha256)
            sink.advance(entry.path, entry.size)
            return "adopted"
        if entry.path not in state.placed:
            raise SdprovError(
                f"{entry.path}: a file sdprov did not place is there with other content "
                "(same size, different sha256); it was left untouched",
                hint="move it away or give the entry another `name:`",
            )
    with _claimed(root, entry.path, hooks.claim_as, cancel) as held:
        # Another worker may have placed it while we waited for its claim.
        if _placed_meanwhile(state, entry, dest):
            sink.advance(entry.path, entry.size)
            return "kept"
        _download(entry, dest, state, ctx, (lease, held), sink, hooks, cancel)
    return "downloaded"


@contextlib.contextmanager
def _claimed(root: Path, path: str, claim_as: str, cancel: threading.Event) -> Iterator[Lease]:
    held = claim(root, path, claim_as, cancel=cancel)
    try:
        yield held
    finally:
        held.release()


def _placed_meanwhile(state: State, entry: LockEntry, dest: Path) -> bool:
    stat = stat_or_none(dest)
    if stat is None:
        return False  # nothing there: no need to re-read the whole state (once per file)
    record = state.reload_record(entry.path)
    return (
        record is not None
        and stat is not None
        and record.sha256 == entry.sha256
        and record.matches(stat)
    )


def _download(
    entry: LockEntry,
    dest: Path,
    state: State,
    ctx: SourceContext,
    leases: tuple[Held, Held],
    sink: Progress,
    hooks: _Hooks,
    cancel: threading.Event,
) -> None:
    for held in leases:
        held.check()

    def check_before_place(partial: Path) -> None:
        if cancel.is_set():  # Ctrl-C: the lease may already be released; never place now
            raise Cancelled(entry.path, entry.size)
        for held in leases:  # never place after another writer took the root or file over
            held.check()
        crash_point("verified")
        if hooks.place_check is not None:
            hooks.place_check(entry, partial)

    source = byte_source(entry.source, ctx, entry.path)
    job = DownloadJob(
        key=entry.path,
        dest=dest,
        partial=state.partial_path(entry.sha256, entry.path),
        size=entry.size,
        sha256=entry.sha256,
        source=hooks.wrap_source(entry, source) if hooks.wrap_source is not None else source,
        before_place=check_before_place,
        cancel=cancel,
        source_type=entry.source_type,
    )
    fetch(job, retry=ctx.retry, progress=sink)
    state.record(entry.path, entry.sha256)


def _remove(action: Action, root: Path, state: State, result: SyncResult) -> None:
    target = root / action.path
    placed = state.placed.get(action.path)
    stat = stat_or_none(target)
    # Re-check right before deleting: only the exact file we placed goes, never through a link.
    unlinked = symlink_on_path(root, action.path) is None
    if placed is not None and stat is not None and unlinked and placed.matches(stat):
        target.unlink()
        crash_point("removed")
        result.removed.append(action.path)
        _prune_empty_dirs(target.parent, root)
    state.forget(action.path)


def _prune_empty_dirs(folder: Path, root: Path) -> None:
    kind_folders = {root / k.folder for k in Kind}
    while folder != root and folder not in kind_folders and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _touch_embeddings_dir(root: Path) -> None:
    # WebUI reloads embeddings only when the top-level folder's mtime increases
    # (reference/webui-formats.md §2); a file added in a subfolder would go unseen.
    folder = root / Kind.EMBEDDING.folder
    if folder.is_dir():
        os.utime(folder)
