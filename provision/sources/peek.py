"""The exact size and the first bytes of a remote file, from one ranged request.

`lock` needs both: the size (Civitai's `sizeKB` is a rounded float) and the safetensors
header, to learn the file's kind and family from the file itself before anything is synced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

from provision.errors import SourceError
from provision.net.http import Credential, retrying
from provision.sources import (
    RangeResponse,
    RangeSource,
    SourceContext,
    range_header,
    reject_error_page,
)

if TYPE_CHECKING:
    from provision.net.pool import HostPool, PooledResponse

T = TypeVar("T")
HEAD_BYTES: Final = 256 << 10  # the header of most LoRAs, VAEs and embeddings, in one go


@dataclass(frozen=True, slots=True)
class Peek:
    size: int
    head: bytes


def _read_up_to(response: RangeResponse, limit: int) -> bytes:
    buffer = memoryview(bytearray(limit))
    filled = 0
    while filled < limit and (n := response.readinto(buffer[filled:])):
        filled += n
    return bytes(buffer[:filled])


def peek(source: RangeSource, ctx: SourceContext, what: str, limit: int = HEAD_BYTES) -> Peek:
    def attempt() -> Peek:
        with source.open(0, limit - 1) as response:
            reject_error_page(response, source, what)
            total = ""
            if response.status_code == 206:
                total = response.headers.get("content-range", "").rpartition("/")[2]
            elif response.status_code == 200:
                total = response.headers.get("content-length", "")
            if not total.isdigit():
                raise SourceError(f"{what}: the download server did not say how large the file is")
            return Peek(size=int(total), head=_read_up_to(response, limit))

    return _retrying(attempt, ctx, what)


def read_range(source: RangeSource, ctx: SourceContext, what: str, start: int, end: int) -> bytes:
    """Bytes `start`..`end` (inclusive) of the file."""

    def attempt() -> bytes:
        with source.open(start, end) as response:
            reject_error_page(response, source, what)
            if response.status_code != 206:
                raise SourceError(f"{what}: the server does not serve byte ranges")
            return _read_up_to(response, end - start + 1)

    return _retrying(attempt, ctx, what)


def _retrying(attempt: Callable[[], T], ctx: SourceContext, what: str) -> T:
    return retrying(attempt, policy=ctx.retry, what=what)


@dataclass(frozen=True, slots=True, kw_only=True)
class PooledBytes:
    """Ranges of a remote file over the lock's kept-alive pool (sync reads whole files with
    provision.net.transfer). `refuse` raises the source's own error for an answer that is not
    the file (it sees every answer; 2xx pass)."""

    pool: HostPool
    url: str
    label: str  # redacted: describe() reaches error messages
    credential: Credential | None
    refuse: Callable[[PooledResponse], None]

    def describe(self) -> str:
        return self.label

    @contextmanager
    def open(self, offset: int, end: int | None = None) -> Iterator[PooledResponse]:
        headers = range_header(offset, end)
        with self.pool.open(self.url, headers=headers, credential=self.credential) as response:
            self.refuse(response)
            yield response
