"""The one HTTP layer: client factory, retries with backoff, redirects that keep tokens home.

Every request sdprov makes goes through here so three rules hold everywhere:
- a token travels only in an `Authorization` header, only to the hosts it belongs to; a
  redirect to another host (Civitai → R2/B2, Hugging Face → its CDN) drops it;
- transient failures (connection errors, 429, 5xx) are retried with capped exponential
  backoff, honouring `Retry-After`;
- URLs are redacted (no query string, no userinfo) before they reach a log line or an error.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import time
import urllib.parse
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

import httpx

from provision import __version__

log = logging.getLogger(__name__)

# Deliberately not browser-like: Civitai answers browsers with HTML login pages and redirects
# instead of JSON errors (reference/civitai-hf.md §1.5).
USER_AGENT: Final = f"sdprov/{__version__} (model provisioner; python-httpx)"
REDIRECT_CODES: Final = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS: Final = 10
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """`SDPROV_RETRY_BASE_DELAY` scales every wait (tests set it near zero)."""
        scale = float(os.environ.get("SDPROV_RETRY_BASE_DELAY", "1.0"))
        return cls(
            base_delay=scale,
            max_delay=30.0 * scale,
            max_retry_after=120.0 * min(scale, 1.0),
        )

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after is not None and (seconds := parse_retry_after(retry_after)) is not None:
            return min(seconds, self.max_retry_after)
        backoff = min(self.max_delay, self.base_delay * 2.0**attempt)
        return backoff * (0.5 + random.random() / 2)  # jitter: many hosts share one NAS sync


class ResponseLike(Protocol):
    """What error mapping needs of a response: httpx.Response or transfer.RawResponse."""

    status_code: int

    @property
    def headers(self) -> httpx.Headers: ...
    @property
    def url(self) -> Any: ...
    @property
    def text(self) -> str: ...
    def read(self) -> bytes: ...
    def close(self) -> None: ...


class TransientHTTPError(Exception):
    """A response worth retrying (429, 5xx); carries its status and Retry-After."""

    def __init__(self, status: int, retry_after: str | None, url: str) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"HTTP {status} from {url}")


RETRYABLE_EXCEPTIONS: Final = (httpx.TransportError, TransientHTTPError)


def parse_retry_after(value: str) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, float(when.timestamp()) - time.time())


def redact(url: str) -> str:
    """scheme://host/path only: signed URLs and `token=` query parameters never get printed."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def origin_of(url: str) -> str:
    """`host:port` (default port by scheme): loopback test servers differ only by port."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{(parts.hostname or '').lower()}:{port}"


def make_client(*, timeout: float = 60.0) -> httpx.Client:
    return httpx.Client(
        follow_redirects=False,  # we follow ourselves, to decide where the token may go
        headers={"User-Agent": USER_AGENT},
        timeout=httpx.Timeout(timeout, connect=15.0),
        trust_env=True,
    )


def retrying(
    action: Callable[[], T], *, policy: RetryPolicy, what: str, on_retry: Callable[[str], None]
    | None = None,
) -> T:  # fmt: skip
    """Run `action`, retrying transient failures; the last failure propagates."""
    for attempt in range(policy.attempts):
        try:
            return action()
        except RETRYABLE_EXCEPTIONS as exc:
            if attempt == policy.attempts - 1:
                raise
            retry_after = exc.retry_after if isinstance(exc, TransientHTTPError) else None
            delay = policy.delay(attempt, retry_after)
            message = f"{what}: {describe_transient(exc)}; retrying in {delay:.1f}s"
            if retry_after is not None:
                message += " (Retry-After)"
            log.info(message)
            if on_retry is not None:
                on_retry(message)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def describe_transient(exc: BaseException) -> str:
    """`HTTP 503 from <redacted url>`, or the transport error's type and redacted URL."""
    if isinstance(exc, TransientHTTPError):
        return str(exc)
    name = type(exc).__name__
    try:
        url = exc.request.url if isinstance(exc, httpx.RequestError) else None
    except RuntimeError:  # httpx raises this when no request is attached (our byte path)
        url = None
    return f"{name} ({redact(str(url))})" if url is not None else name


def check_transient(response: ResponseLike) -> None:
    """Raise TransientHTTPError for statuses worth retrying (after closing the response)."""
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("Retry-After")
        response.close()
        raise TransientHTTPError(response.status_code, retry_after, redact(str(response.url)))


R = TypeVar("R", bound=ResponseLike)


def follow_redirects(
    url: str,
    send: Callable[[str, dict[str, str]], R],
    *,
    headers: dict[str, str] | None = None,
    token: str | None = None,
    token_hosts: Collection[str] = (),  # origins (`host:port`, see origin_of)
) -> R:
    """Send `url` and follow redirects by hand; return the first non-redirect response, open.

    `Authorization: Bearer <token>` goes only to origins in `token_hosts`: a redirect to a
    storage host (R2/B2/CDN) goes without it, because those reject or leak it.
    """
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        send_headers = dict(headers or {})
        if token and origin_of(current) in token_hosts:
            send_headers["Authorization"] = f"Bearer {token}"
        response = send(current, send_headers)
        if response.status_code in REDIRECT_CODES and "location" in response.headers:
            target = urllib.parse.urljoin(current, response.headers["location"])
            response.close()
            log.debug("redirect %s -> %s", redact(current), redact(target))
            current = target
            continue
        return response
    raise httpx.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects from {redact(url)}")


@contextmanager
def open_following(
    client: httpx.Client,
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    token: str | None = None,
    token_hosts: Collection[str] = (),
) -> Iterator[httpx.Response]:
    """Stream `url` with httpx (API calls), following redirects; see follow_redirects."""

    def send(target: str, send_headers: dict[str, str]) -> httpx.Response:
        request = client.build_request(method, target, headers=send_headers)
        return client.send(request, stream=True)

    response = follow_redirects(url, send, headers=headers, token=token, token_hosts=token_hosts)
    try:
        yield response
    finally:
        response.close()
