"""Resolve the manifest entries that need it, in parallel, over one pool of kept-alive
connections: what `lock` asks the sources, and nothing it has asked before in this run.

One `HostPool` for the whole run (no origin sees more than `jobs` requests at once, a 429
halves that and its Retry-After pauses every worker), one `Memo` (a version or a file asked
for by two entries is fetched once), one scratch folder for the header files inspection reads.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from provision.errors import SdprovError
from provision.inspection import FileReport
from provision.lock.remote_inspect import inspect_remote
from provision.manifest.parse import Manifest, ModelSpec
from provision.manifest.refs import CivitaiRef, HfRef, UrlRef
from provision.net.failures import as_sdprov_error
from provision.net.pool import HostPool
from provision.sources import RangeSource, ResolvedFile, SourceContext, civitai, huggingface, url
from provision.sources.locked import CivitaiSource, HfSource, LockedSource, UrlSource
from provision.sources.memo import Memo


@dataclass(frozen=True, slots=True)
class Resolution:
    file: ResolvedFile
    report: FileReport | None  # what the file's own header says (safetensors only)


@dataclass(frozen=True, slots=True)
class Session:
    ctx: SourceContext
    pool: HostPool
    memo: Memo
    scratch: Path


def resolve_all(
    manifest: Manifest, todo: list[int], ctx: SourceContext, jobs: int
) -> dict[int, Resolution | SdprovError]:
    """Resolve entries in parallel; a failing entry is that entry's error, never the pool's."""
    jobs = max(1, jobs)
    with (
        HostPool(per_host=jobs, max_pause=ctx.retry.max_retry_after) as http,
        tempfile.TemporaryDirectory(prefix="sdprov-lock-", dir=_memory_dir()) as scratch,
    ):
        session = Session(ctx=ctx, pool=http, memo=Memo(), scratch=Path(scratch))
        pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="sdprov-lock")
        futures = {i: pool.submit(_resolve, manifest.specs[i], session) for i in todo}
        try:
            wait(futures.values())
        except BaseException:
            # Ctrl-C: drop what has not started and do not wait for requests in flight (they
            # may sit in a read for its whole timeout); nothing is written before every entry
            # resolved, so abandoning them loses nothing.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    outcomes: dict[int, Resolution | SdprovError] = {}
    for i, future in futures.items():
        try:
            outcomes[i] = future.result()
        except Exception as exc:
            outcomes[i] = as_sdprov_error(exc, manifest.specs[i].label)
    return outcomes


def _memory_dir() -> str | None:
    # The header files inspection reads (three opens each) cost a tenth of a 1,000-entry lock
    # on this VM's disk; on tmpfs they never reach it. Elsewhere: the usual temporary folder.
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


def _resolve(spec: ModelSpec, session: Session) -> Resolution:
    resolved = _resolve_source(spec, session)
    source = _lock_source(resolved.source, session, spec.label)
    report = inspect_remote(resolved, source, session.ctx, spec.label, scratch=session.scratch)
    return Resolution(file=resolved, report=report)


def _lock_source(source: LockedSource, session: Session, what: str) -> RangeSource:
    """The resolved file's ranges (a header longer than the first read) over the pool."""
    ctx, pool = session.ctx, session.pool
    if isinstance(source, CivitaiSource):
        return civitai.lock_bytes(pool, ctx, source.version_id, source.file_id, what)
    if isinstance(source, HfSource):
        return huggingface.lock_bytes(pool, ctx, source.repo, source.commit, source.path, what)
    assert isinstance(source, UrlSource)
    return url.lock_bytes(pool, source.url, what)


def _resolve_source(spec: ModelSpec, session: Session) -> ResolvedFile:
    what, ctx, client = spec.label, session.ctx, session.pool
    source = spec.source
    if isinstance(source, CivitaiRef):
        selector = (
            {"format": spec.file.format, "size": spec.file.size, "fp": spec.file.fp}
            if spec.file
            else None
        )
        return civitai.resolve(
            source,
            kind=spec.kind,
            what=what,
            client=client,
            ctx=ctx,
            file_id=spec.file_id,
            selector=selector,
            memo=session.memo,
        )
    if isinstance(source, HfRef):
        return huggingface.resolve(source, what=what, client=client, ctx=ctx, base=spec.base)
    assert isinstance(source, UrlRef) and spec.sha256 is not None
    return url.resolve(
        source, what=what, client=client, ctx=ctx, sha256=spec.sha256, base=spec.base
    )
