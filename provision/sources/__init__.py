"""Model sources: resolve a manifest entry to exact bytes (lock), and open those bytes (sync).

Each source module exposes `resolve(spec, ctx) -> ResolvedFile` and `byte_source(entry, ctx)
-> ByteSource`; `provision.sources.registry` picks the module by source type.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from provision.errors import SourceError
from provision.kinds import Family, Kind

if TYPE_CHECKING:
    import httpx

    from provision.net.http import RetryPolicy
    from provision.net.transfer import RawResponse
    from provision.sources.locked import LockedSource

# The network stack (httpx, ssl) is imported where a request is made, not with this package:
# reading a lockfile imports `provision.sources.locked`, and with it this module.

DEFAULT_CIVITAI_URL: Final = "https://civitai.com"
DEFAULT_HF_ENDPOINT: Final = "https://huggingface.co"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedFile:
    """What a source says one manifest entry is, exactly."""

    file_name: str
    size: int
    sha256: str
    base: Family
    base_model: str | None
    source: LockedSource
    declared_kind: Kind | None = None  # the kind the source labels it with, when it says
    extra: dict[str, Any] = field(default_factory=dict)
    head: bytes = b""  # the file's first bytes, when resolving already fetched them
    # Civitai: the version's images as (url, nsfwLevel, type), in the API's order.
    images: tuple[tuple[str, int, str], ...] = ()


class ByteSource(Protocol):
    """Opens the locked bytes of one model, from `offset` on."""

    def describe(self) -> str:
        """A redacted, human description (no tokens, no signed URLs)."""
        ...

    def open(self, offset: int, end: int | None = None) -> AbstractContextManager[RawResponse]:
        """A streaming response: 206 for bytes `offset`..`end` (inclusive; open-ended when
        None), or 200 from 0 when the server ignores Range."""
        ...


class RangeResponse(Protocol):
    """What reading a range needs of an answer: transfer.RawResponse (sync) or the lock's
    pool.PooledResponse (many small reads over kept-alive connections)."""

    status_code: int
    headers: httpx.Headers
    url: str

    def readinto(self, buffer: memoryview) -> int: ...


class RangeSource(Protocol):
    """Ranges of one remote file: every ByteSource is one; so are the lock's pooled reads."""

    def describe(self) -> str: ...

    def open(
        self, offset: int, end: int | None = None
    ) -> AbstractContextManager[RangeResponse]: ...


ERROR_PAGE_TYPES: Final = ("text/html", "application/json", "text/plain", "application/xml")


def reject_error_page(
    response: RangeResponse, source: RangeSource, what: str, note: str = ""
) -> None:
    """A 2xx whose body is HTML/JSON/text is a login or error page posing as a model."""
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ERROR_PAGE_TYPES:
        raise SourceError(
            f"{what}: {source.describe()} answered {content_type} instead of the model "
            f"(an error or login page posing as a file){note}",
            hint="if this model needs login, set CIVITAI_TOKEN / HF_TOKEN",
        )


def range_header(offset: int, end: int | None) -> dict[str, str]:
    if end is not None:
        return {"Range": f"bytes={offset}-{end}"}
    return {"Range": f"bytes={offset}-"} if offset else {}


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceContext:
    """Settings every source needs; tokens live only here and in request headers."""

    civitai_url: str = DEFAULT_CIVITAI_URL
    hf_endpoint: str = DEFAULT_HF_ENDPOINT
    civitai_token: str | None = field(default=None, repr=False)
    hf_token: str | None = field(default=None, repr=False)
    retry: RetryPolicy = field(default_factory=lambda: _retry_policy())

    @classmethod
    def from_env(cls) -> SourceContext:
        from provision.net.config import Timeouts, check_proxy_env
        from provision.net.http import RetryPolicy

        check_proxy_env()  # a bad proxy or timeout: one usage error up front, not one per model
        Timeouts.from_env()
        return cls(
            civitai_url=os.environ.get("SDPROV_CIVITAI_URL", DEFAULT_CIVITAI_URL).rstrip("/"),
            hf_endpoint=os.environ.get("HF_ENDPOINT", DEFAULT_HF_ENDPOINT).rstrip("/"),
            civitai_token=os.environ.get("CIVITAI_TOKEN") or None,
            hf_token=os.environ.get("HF_TOKEN") or None,
            retry=RetryPolicy.from_env(),
        )

    def secrets(self) -> Iterator[str]:
        yield from (s for s in (self.civitai_token, self.hf_token) if s)

    def client(self) -> httpx.Client:
        from provision.net.http import make_client

        return make_client()


def _retry_policy() -> RetryPolicy:
    from provision.net.http import RetryPolicy

    return RetryPolicy()
