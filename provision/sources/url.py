"""Plain URLs: the manifest gives the sha256; the lock learns the size. No token is ever sent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from provision.errors import ChecksumMismatch, NotFound, SdprovError, SourceError
from provision.kinds import Family
from provision.manifest.refs import UrlRef, file_name_of_url
from provision.net.http import (
    ResponseLike,
    check_status,
    check_transient,
    open_following,
    redact,
    retrying,
)
from provision.net.pool import HostPool, PooledResponse
from provision.net.transfer import RawResponse, open_stream
from provision.sources import ResolvedFile, SourceContext, range_header
from provision.sources.huggingface import hash_remote
from provision.sources.locked import UrlSource
from provision.sources.peek import PooledBytes


def error_for(response: ResponseLike, what: str) -> SdprovError:
    status = response.status_code
    where = redact(str(response.url))
    if status in (404, 410):
        return NotFound(f"{what}: {where} answered HTTP {status}")
    return SourceError(f"{what}: {where} answered HTTP {status}")


@dataclass(slots=True, kw_only=True)
class UrlBytes:
    url: str
    what: str

    def describe(self) -> str:
        return redact(self.url)

    @contextmanager
    def open(self, offset: int, end: int | None = None) -> Iterator[RawResponse]:
        headers = range_header(offset, end)
        with open_stream(self.url, headers=headers) as response:
            check_status(response, lambda r: error_for(r, self.what), ok=(200, 206))
            yield response


def lock_bytes(pool: HostPool, url: str, what: str) -> PooledBytes:
    """The file's header read at lock time over the lock's pool (no token, ever)."""

    def check(response: PooledResponse) -> None:
        check_status(response, lambda r: error_for(r, what), ok=(200, 206))

    return PooledBytes(pool=pool, url=url, label=redact(url), credential=None, refuse=check)


def resolve(
    ref: UrlRef,
    *,
    what: str,
    client: httpx.Client | HostPool,
    ctx: SourceContext,
    sha256: str,
    base: Family | None,
) -> ResolvedFile:
    source = UrlBytes(url=ref.url, what=what)

    def head() -> int | None:
        with open_following(client, ref.url, method="HEAD") as response:
            check_transient(response)
            if response.status_code >= 400 and response.status_code not in (403, 405):
                raise error_for(response, what)
            length = response.headers.get("content-length", "")
            return int(length) if response.status_code == 200 and length.isdigit() else None

    size = retrying(head, policy=ctx.retry, what=what)
    if size is None:
        # No usable HEAD (presigned GET-only URLs refuse it): read it once and check the hash.
        actual, size = hash_remote(source, ctx, what)
        if actual != sha256:
            raise ChecksumMismatch(f"{what} ({redact(ref.url)})", sha256, actual, source_type="url")
    return ResolvedFile(
        file_name=file_name_of_url(ref.url),
        size=size,
        sha256=sha256,
        base=base or Family.OTHER,
        base_model=None,
        source=UrlSource(url=ref.url),
    )
