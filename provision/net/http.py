"""The one HTTP layer: client factory, retries with backoff, status → error mapping.

Every request sdprov makes goes through `provision.net` so these rules hold everywhere:
- a credential travels only in an `Authorization` header, only to its own origins, never
  across a redirect to another origin (provision.net.policy);
- transient failures (connection errors, timeouts, 429, 5xx) are retried with capped
  exponential backoff, honouring `Retry-After` (seconds or HTTP-date); when they persist the
  caller gets a SourceError naming the model and the redacted URL, never a raw exception;
- URLs are redacted (no query string, no userinfo) before they reach a log line or an error;
- TLS, proxies, timeouts and User-Agent come from provision.net.config.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, overload

import httpx

from provision.errors import RateLimited, SdprovError, SourceError
from provision.net.config import USER_AGENT, Timeouts, check_proxy_env, tls_context
from provision.net.policy import Credential, follow_redirects, origin_of, redact

if TYPE_CHECKING:
    from provision.net.pool import HostPool, PooledResponse

__all__ = [
    "USER_AGENT",
    "Credential",
    "RetryPolicy",
    "check_status",
    "check_transient",
    "follow_redirects",
    "make_client",
    "open_following",
    "origin_of",
    "redact",
    "retrying",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# httpx logs every request line with its full URL at INFO, and httpcore the response headers
# (a `Location` with its signature) at DEBUG: under --verbose that prints signed URLs. Our own
# log lines say the same things, redacted.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


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
        self.url = url
        super().__init__(f"HTTP {status} from {url}")


RETRYABLE_EXCEPTIONS: Final = (httpx.TransportError, TransientHTTPError)


def parse_retry_after(value: str) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, float(when.timestamp()) - time.time())


def make_client(
    *,
    timeout: float | httpx.Timeout | None = None,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """The httpx client for API calls (sources, WebUI): shared TLS context, env proxies, our
    timeouts (`timeout` overrides them, e.g. WebUI's long refresh) and User-Agent."""
    check_proxy_env()
    t = Timeouts.from_env()
    return httpx.Client(
        follow_redirects=False,  # provision.net.policy follows, to decide where tokens go
        headers={"User-Agent": USER_AGENT},
        timeout=httpx.Timeout(t.read, connect=t.connect) if timeout is None else timeout,
        verify=tls_context(),
        trust_env=True,  # HTTP(S)_PROXY, ALL_PROXY, NO_PROXY: same rules as config.proxy_for
        transport=transport,
    )


def retrying(
    action: Callable[[], T], *, policy: RetryPolicy, what: str, on_retry: Callable[[str], None]
    | None = None,
) -> T:  # fmt: skip
    """Run `action`, retrying transient failures; when they persist, raise a SourceError
    (RateLimited for 429) naming `what` and the redacted URL."""
    for attempt in range(policy.attempts):
        try:
            return action()
        except RETRYABLE_EXCEPTIONS as exc:
            if attempt == policy.attempts - 1:
                raise gave_up(exc, what, policy.attempts) from exc
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


def gave_up(exc: BaseException, what: str, attempts: int) -> SdprovError:
    """The error a user sees once retries are spent."""
    detail = f"{describe_transient(exc)}, {attempts} attempts"
    if isinstance(exc, TransientHTTPError):
        if exc.status == 429:
            return RateLimited(
                f"{what}: still rate-limited ({detail})",
                hint="wait and retry; lower --jobs",
                url=exc.url,
                status=429,
            )
        return SourceError(
            f"{what}: the server keeps failing ({detail})",
            hint="retry later",
            url=exc.url,
            status=exc.status,
        )
    return SourceError(
        f"{what}: network failure ({detail})",
        hint="check the connection, proxy (HTTPS_PROXY/NO_PROXY) and SDPROV_READ_TIMEOUT",
        url=transport_url(exc),
    )


def transport_url(exc: BaseException) -> str | None:
    if isinstance(exc, TransientHTTPError):
        return exc.url
    try:
        url = exc.request.url if isinstance(exc, httpx.RequestError) else None
    except RuntimeError:  # no request attached (our byte path puts the URL in the message)
        url = None
    return redact(str(url)) if url is not None else None


def describe_transient(exc: BaseException) -> str:
    """`HTTP 503 from <redacted url>`, or the transport error's type and redacted URL."""
    if isinstance(exc, TransientHTTPError):
        return str(exc)
    name = type(exc).__name__
    url = transport_url(exc)
    if url is not None:
        return f"{name} ({url})"
    return f"{name}: {exc}" if str(exc) else name


def check_transient(response: ResponseLike) -> None:
    """Raise TransientHTTPError for statuses worth retrying (after closing the response)."""
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("Retry-After")
        response.close()
        raise TransientHTTPError(response.status_code, retry_after, redact(str(response.url)))


def check_status(
    response: ResponseLike,
    error_for: Callable[[ResponseLike], SdprovError],
    ok: Collection[int] = (200,),
) -> None:
    """The one status rule: transient → retry; anything else not in `ok` → the source
    family's own error (what to do about a 401 differs between Civitai and Hugging Face)."""
    check_transient(response)
    if response.status_code not in ok:
        error = error_for(response)
        if error.status is None:
            error.status = response.status_code
        if error.url is None:
            error.url = redact(str(response.url))
        raise error


@overload
def open_following(
    client: httpx.Client,
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    credential: Credential | None = None,
    stop: Callable[[httpx.Response], bool] | None = None,
) -> AbstractContextManager[httpx.Response]: ...


@overload
def open_following(
    client: HostPool,
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    credential: Credential | None = None,
    stop: Callable[[PooledResponse], bool] | None = None,
) -> AbstractContextManager[PooledResponse]: ...


def open_following(
    client: httpx.Client | HostPool,
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    credential: Credential | None = None,
    stop: Callable[[Any], bool] | None = None,
) -> AbstractContextManager[httpx.Response] | AbstractContextManager[PooledResponse]:
    """Open `url` following redirects under the credential policy: on an httpx client, or on
    the lock's pool of kept-alive connections (provision.net.pool, for many small requests)."""
    if isinstance(client, httpx.Client):
        return _open_httpx(client, url, method=method, headers=headers, credential=credential,
                           stop=stop)  # fmt: skip
    return client.open(url, method=method, headers=headers, credential=credential, stop=stop)


@contextmanager
def _open_httpx(
    client: httpx.Client,
    url: str,
    *,
    method: str,
    headers: dict[str, str] | None,
    credential: Credential | None,
    stop: Callable[[httpx.Response], bool] | None,
) -> Iterator[httpx.Response]:
    def send(target: str, send_headers: dict[str, str]) -> httpx.Response:
        request = client.build_request(method, target, headers=send_headers)
        return client.send(request, stream=True)

    response = follow_redirects(url, send, headers=headers, credential=credential, stop=stop)
    try:
        yield response
    finally:
        response.close()
