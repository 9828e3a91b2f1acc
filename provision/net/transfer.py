"""Streaming GETs for model bytes, on the standard library's http.client.

Model files are many GB; the API calls around them are tiny. httpx serves the API calls
(provision.net.http). For the bytes we measured httpx's streaming at ~1 GB/s on loopback against
~3.5 GB/s for `http.client`'s `readinto` into a reused buffer (docs/decisions.md), and the sync
must keep up with curl, so the body path uses http.client. The rules are the same as on the API
path and come from the same place: TLS, proxy, timeouts and User-Agent from
provision.net.config, redirects and the credential policy from provision.net.policy; transport
failures surface as httpx exceptions (with the redacted URL) so one retry policy covers both.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import re
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

import httpx

from provision.errors import SourceError
from provision.net.config import USER_AGENT, Proxy, Timeouts, proxy_for, tls_context
from provision.net.http import RetryPolicy, check_transient, retrying
from provision.net.policy import Credential, follow_redirects, origin_of, redact

_RANGE: Final = re.compile(r"^bytes=(\d+)-(\d*)$")


class RawResponse:
    """The parts of an HTTP response the download path needs; shaped like httpx.Response.

    `limit` caps the body we hand out: a server that ignores a closed Range, or whose
    Content-Length promises more than asked for, never gets more than that written anywhere.
    """

    def __init__(
        self,
        conn: http.client.HTTPConnection,
        resp: http.client.HTTPResponse,
        url: str,
        limit: int | None = None,
        pooled: tuple[_PoolKey, _Pooled] | None = None,
    ) -> None:
        self._conn = conn
        self._pooled = pooled  # where the connection goes back when the body is done
        # Body bytes read through `fp` directly (http.client does not count those): the
        # connection goes back to the pool only when the body was read to its exact end.
        self._length = resp.length if not resp.chunked else None
        self._consumed = 0
        self._resp = resp
        self.url = url
        self.status_code = resp.status
        # http.client decodes header bytes as latin-1; encode them back the same way, or a
        # raw UTF-8 filename in Content-Disposition (common on Civitai) is a UnicodeEncodeError.
        self.headers = httpx.Headers(resp.getheaders(), encoding="latin-1")
        self._body: bytes | None = None
        # Bytes left of a Content-Length body (None: chunked or unknown length).
        remaining = resp.length if not resp.chunked else None
        if limit is not None:
            remaining = limit if remaining is None else min(remaining, limit)
        self._remaining = remaining
        self._chunked_cap = limit if resp.chunked else None
        self._failure: httpx.TransportError | None = None

    def readinto(self, buffer: memoryview) -> int:
        """Fill `buffer` as far as the body goes; 0 at the end.

        When the connection breaks mid-buffer, the bytes already received are returned first
        and the error is raised by the next call, so a resume loses nothing it was given.
        """
        if self._failure is not None:
            raise self._failure
        if self._remaining is None or self._chunked_cap is not None:
            return self._read_chunked(buffer)
        limit = min(len(buffer), self._remaining)
        filled = 0
        while filled < limit:
            try:
                n = self._resp.fp.readinto1(buffer[filled:limit])
            except (OSError, http.client.HTTPException) as exc:
                if not filled:
                    raise self._transport_error(exc) from exc
                self._failure = self._transport_error(exc)
                break
            if not n:
                break  # closed early: the caller sees a short body and resumes
            filled += n
        self._remaining -= filled
        self._consumed += filled
        return filled

    def readinto1(self, buffer: memoryview) -> int:
        """At most one receive into `buffer`; 0 at the end of the body (or of `limit`).

        Returns as soon as any bytes arrived, so a caller on a slow link can report progress
        and notice a cancellation between receives; on a fast link one receive is as large
        as the socket has ready, so the loop costs no more calls than `readinto`.
        """
        if self._failure is not None:
            raise self._failure
        if self._remaining is None or self._chunked_cap is not None:
            return self._read_chunked(buffer, one=True)
        limit = min(len(buffer), self._remaining)
        try:
            n = self._resp.fp.readinto1(buffer[:limit]) if limit else 0
        except (OSError, http.client.HTTPException) as exc:
            raise self._transport_error(exc) from exc
        self._remaining -= n
        self._consumed += n
        return n

    def _read_chunked(self, buffer: memoryview, *, one: bool = False) -> int:
        if self._chunked_cap is not None:
            buffer = buffer[: self._chunked_cap]
        try:
            if one:
                data = self._resp.read1(len(buffer)) if len(buffer) else b""  # de-chunked
                n = len(data)
                buffer[:n] = data
            else:
                n = self._resp.readinto(buffer) if len(buffer) else 0
        except (OSError, http.client.HTTPException) as exc:
            raise self._transport_error(exc) from exc
        if self._chunked_cap is not None:
            self._chunked_cap -= n
        return n

    def _transport_error(self, exc: BaseException) -> httpx.TransportError:
        where = redact(self.url)
        if isinstance(exc, TimeoutError):
            return httpx.ReadTimeout(f"no data for too long from {where}")
        if isinstance(exc, http.client.IncompleteRead):
            return httpx.RemoteProtocolError(f"body cut short by {where}")
        return httpx.ReadError(f"{type(exc).__name__} reading from {where}")

    def read(self) -> bytes:
        """The whole (small) body: error pages only."""
        if self._body is None:
            try:
                self._body = self._resp.read(1 << 20)
            except (OSError, http.client.HTTPException):
                self._body, self._length = b"", None  # never reuse this connection
            self._consumed += len(self._body)
        return self._body

    @property
    def text(self) -> str:
        return self.read().decode("utf-8", "replace")

    def json(self) -> object:
        import json

        return json.loads(self.text)

    def close(self) -> None:
        reusable = self._pooled is not None and self._drained()
        self._resp.close()
        if reusable and self._pooled is not None:
            _POOL.put(*self._pooled)
        else:
            self._conn.close()

    def _drained(self) -> bool:
        """Whether the body was read to its exact end (a short redirect or error body is read
        here), so the next request on this connection starts clean."""
        if self._failure is not None or self._conn.sock is None or self._resp.will_close:
            return False
        if self._length is None:
            # Chunked: http.client closes the response itself after the last chunk.
            return self._resp.chunked and self._resp.isclosed()
        left = self._length - self._consumed
        if 0 < left <= _DRAIN_MAX and self._resp.fp is not None:
            try:
                self._consumed += len(self._resp.fp.read(left))
            except (OSError, http.client.HTTPException):
                return False
        return self._consumed == self._length

    def abort(self) -> None:
        """From another thread: make a receive blocked on this response fail now (a close
        alone does not wake it)."""
        self._pooled = None  # a shut-down connection never goes back to the pool
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _proxy_auth(proxy: Proxy) -> dict[str, str]:
    if proxy.username is None:
        return {}
    raw = f"{proxy.username}:{proxy.password or ''}"
    return {"Proxy-Authorization": f"Basic {base64.b64encode(raw.encode()).decode()}"}


# A connection is kept for reuse by the origin it talks to and the proxy it goes through, so
# it only ever carries requests for that origin: the credential policy (which request may
# carry a token) is decided per request by follow_redirects and is unchanged by reuse.
_PoolKey = tuple[str, Proxy | None]
_DRAIN_MAX: Final = 64 << 10  # a redirect's or error page's body is read to reuse its connection
_IDLE_PER_KEY: Final = 16  # more than any --jobs we default to; the rest are closed
_STALE_ERRORS: Final = (
    http.client.RemoteDisconnected,
    http.client.BadStatusLine,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
)


@dataclass(slots=True)
class _Pooled:
    conn: http.client.HTTPConnection
    absolute: bool  # plain http through a proxy: requests name the whole URL
    proxy_headers: dict[str, str]

    def target(self, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        if self.absolute:
            return urllib.parse.urlunsplit(parts._replace(fragment=""))
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class _Pool:
    """Idle keep-alive connections, thread-safe: a thousand small files through the same
    API redirect cost two TCP (and TLS) handshakes per worker, not two per file."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[_PoolKey, list[_Pooled]] = {}

    def take(self, key: _PoolKey) -> _Pooled | None:
        with self._lock:
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def put(self, key: _PoolKey, pooled: _Pooled) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < _IDLE_PER_KEY:
                idle.append(pooled)
                return
        pooled.conn.close()


_POOL = _Pool()


def _pool_key(url: str) -> _PoolKey:
    return origin_of(url), proxy_for(url)


def _connect(url: str, t: Timeouts) -> _Pooled:
    """A new connection for `url` (direct or through a proxy), not yet connected."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(f"unsupported URL scheme in {redact(url)}")
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxy = proxy_for(url)
    if proxy is None:
        if parts.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=t.connect, context=tls_context()
            )
        else:
            conn = http.client.HTTPConnection(host, port, timeout=t.connect)
        return _Pooled(conn, absolute=False, proxy_headers={})
    if parts.scheme == "https":
        # CONNECT tunnel through an http:// proxy: it sees the host name, never the request
        # (nor its token); TLS runs end to end with the origin.
        tunnel = http.client.HTTPSConnection(
            proxy.host, proxy.port, timeout=t.connect, context=tls_context()
        )
        tunnel.set_tunnel(host, port, headers=_proxy_auth(proxy))
        return _Pooled(tunnel, absolute=False, proxy_headers={})
    # Plain http goes to the proxy in absolute form, as every HTTP proxy expects.
    plain = http.client.HTTPConnection(proxy.host, proxy.port, timeout=t.connect)
    return _Pooled(plain, absolute=True, proxy_headers=_proxy_auth(proxy))


def _send(url: str, method: str, headers: dict[str, str], t: Timeouts) -> RawResponse:
    key = _pool_key(url)
    while (idle := _POOL.take(key)) is not None:
        try:
            return _request(idle, url, method, headers, t, key)
        except _Stale:
            continue  # the server closed it while idle: never an error, try the next
    pooled = _connect(url, t)
    conn = pooled.conn
    try:
        conn.connect()
    except TimeoutError as exc:
        conn.close()
        raise httpx.ReadTimeout(f"timed out talking to {redact(url)}") from exc
    except ConnectionRefusedError as exc:
        conn.close()
        raise httpx.ConnectError(f"connection refused by {redact(url)}") from exc
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise httpx.ConnectError(f"{type(exc).__name__} talking to {redact(url)}") from exc
    return _request(pooled, url, method, headers, t, key, fresh=True)


class _Stale(Exception):
    """A kept-alive connection the server had closed: retried on another, never reported."""


def _request(
    pooled: _Pooled,
    url: str,
    method: str,
    headers: dict[str, str],
    t: Timeouts,
    key: _PoolKey,
    *,
    fresh: bool = False,
) -> RawResponse:
    conn, where = pooled.conn, redact(url)
    try:
        if conn.sock is not None:
            conn.sock.settimeout(t.read)  # connect and read waits differ
        conn.request(method, pooled.target(url), headers={**headers, **pooled.proxy_headers})
        resp = conn.getresponse()
    except TimeoutError as exc:
        conn.close()
        raise httpx.ReadTimeout(f"timed out talking to {where}") from exc
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        if not fresh and isinstance(exc, _STALE_ERRORS):
            raise _Stale from exc
        if isinstance(exc, ConnectionRefusedError):
            raise httpx.ConnectError(f"connection refused by {where}") from exc
        raise httpx.ConnectError(f"{type(exc).__name__} talking to {where}") from exc
    return RawResponse(
        conn, resp, url, limit=_body_limit(headers, resp.status), pooled=(key, pooled)
    )


def _body_limit(headers: dict[str, str], status: int) -> int | None:
    """The most bytes a closed `Range: bytes=a-b` can legitimately bring."""
    match = _RANGE.match(headers.get("Range", ""))
    if match is None or not match.group(2):
        return None
    start, end = int(match.group(1)), int(match.group(2))
    return end - start + 1 if status == 206 else end + 1


@contextmanager
def open_stream(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    credential: Credential | None = None,
    timeouts: Timeouts | None = None,
) -> Iterator[RawResponse]:
    """GET (or HEAD) `url` for bulk bytes, following redirects under the credential policy."""
    t = timeouts or Timeouts.from_env()
    base = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}
    response = follow_redirects(
        url,
        lambda target, send_headers: _send(target, method, send_headers, t),
        headers=base,
        credential=credential,
    )
    try:
        yield response
    finally:
        response.close()


def get_small(
    url: str,
    *,
    what: str,
    headers: dict[str, str] | None = None,
    retry: RetryPolicy | None = None,
    max_bytes: int = 64 << 20,
) -> bytes:
    """One small GET with retries (e.g. the lock object the FC handler reads from OSS).

    The caller's headers (a signed OSS `Authorization`) go to `url` only: redirects are not
    followed, so they cannot travel elsewhere. Any failure is a SourceError naming `what` and
    the redacted URL; a body over `max_bytes` is refused rather than held in memory.
    """
    t = Timeouts.from_env()
    base = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}

    def attempt() -> bytes:
        response = _send(url, "GET", base, t)
        try:
            check_transient(response)
            if response.status_code != 200:
                raise SourceError(
                    f"{what}: HTTP {response.status_code} from {redact(url)}",
                    url=redact(url),
                    status=response.status_code,
                )
            buffer = memoryview(bytearray(1 << 20))
            chunks: list[bytes] = []
            total = 0
            while n := response.readinto(buffer):
                total += n
                if total > max_bytes:
                    raise SourceError(f"{what}: {redact(url)} is larger than {max_bytes} bytes")
                chunks.append(bytes(buffer[:n]))
            return b"".join(chunks)
        finally:
            response.close()

    return retrying(attempt, policy=retry or RetryPolicy.from_env(), what=what)
