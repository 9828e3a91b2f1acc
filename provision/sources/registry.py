"""The byte source of a locked (or just resolved) file, by its source type."""

from __future__ import annotations

from provision.sources import ByteSource, SourceContext
from provision.sources.civitai import CivitaiBytes
from provision.sources.huggingface import HfBytes
from provision.sources.locked import CivitaiSource, HfSource, LockedSource, UrlSource
from provision.sources.url import UrlBytes


def byte_source(source: LockedSource, ctx: SourceContext, what: str) -> ByteSource:
    # The lock reader already refused unknown types, so the dispatch is exhaustive.
    if isinstance(source, CivitaiSource):
        return CivitaiBytes(
            ctx=ctx, version_id=source.version_id, file_id=source.file_id, what=what
        )
    if isinstance(source, HfSource):
        return HfBytes(ctx=ctx, repo=source.repo, commit=source.commit, path=source.path, what=what)
    assert isinstance(source, UrlSource)
    return UrlBytes(url=source.url, what=what)
