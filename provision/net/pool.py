"""Kept-alive connections for many small requests, a cap per host, one back-off for all threads.

`sdprov lock` makes three small requests per Civitai entry (the version's JSON, the download
endpoint's 307, the ranged header read from storage): thousands in one run. A new httpx
client per entry cost a TLS context and a connection each, and httpx itself costs ~1 ms of CPU
per request here against ~0.25 ms for `http.client` on a kept-alive connection
(docs/decisions.md, "Performance: lock"). The rules are the rest of provision.net's: TLS,
proxies, timeouts and User-Agent from provision.net.config; redirects and credentials through
provision.net.policy; transport failures surface as httpx exceptions so `retrying` covers them.

Politeness: no origin ever has more than `per_host` requests in flight. A 429 (or a 503 with
Retry-After) halves that origin's cap for the rest of the run, and its Retry-After pauses every
thread's next request to it, not only the one that was refused.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Self

import httpx

from provision.errors import SourceError
from provision.net.config import USER_AGENT, Proxy, Timeouts, proxy_for, tls_context
from provision.net.policy import Credential, follow_redirects, origin_of, redact

MAX_BODY: Final = 32 << 20  # an API answer; a larger one is refused, not held in memory
DRAIN: Final = 64 << 10  # an unread rest up to this is read so the connection can be reused
_STALE: Final = (
    http.client.RemoteDisconnected,
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
)


@dataclass(slots=True)
class _Host:
    cap: int
    busy: int = 0
    paused_until: float = 0.0
    idle: list[http.client.HTTPConnection] = field(default_factory=list)


class HostPool:
    """Thread-safe; `open(url, ...)` is the one entry point (redirects followed)."""

    def __init__(
        self, per_host: int, *, timeouts: Timeouts | None = None, max_pause: float = 120.0
    ) -> None:
        self.per_host = max(1, per_host)
        self.max_pause = max_pause
        self._timeouts = timeouts or Timeouts.from_env()
        self._cond = threading.Condition()
        self._hosts: dict[str, _Host] = {}
        self._tls: ssl.SSLContext | None = None  # built once: loading the trust store is slow
        # proxy_for reads the whole environment (0.7 ms a call here); an origin's proxy does
        # not change during a run.
        self._proxies: dict[str, Proxy | None] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._cond:
            idle = [conn for host in self._hosts.values() for conn in host.idle]
            for host in self._hosts.values():
                host.idle.clear()
        for conn in idle:
            conn.close()

    def cap_of(self, url: str) -> int:
        with self._cond:
            return self._host(origin_of(url)).cap

    @contextmanager
    def open(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        credential: Credential | None = None,
        stop: Callable[[PooledResponse], bool] | None = None,
    ) -> Iterator[PooledResponse]:
        """`url`'s answer (open), redirects followed under the credential policy."""
        base = {"User-Agent": USER_AGENT, **(headers or {})}
        response = follow_redirects(
            url,
            lambda target, send_headers: self.request(method, target, send_headers),
            headers=base,
            credential=credential,
            stop=stop,
        )
        try:
            yield response
        finally:
            response.close()

    def request(self, method: str, url: str, headers: dict[str, str]) -> PooledResponse:
        """One request, no redirect followed; its host slot is held until the answer closes."""
        origin = origin_of(url)
        conn = self._acquire(origin)
        try:
            conn, resp = self._exchange(conn, method, url, headers)
        except BaseException:
            self._release(origin, None)
            raise
        response = PooledResponse(self, origin, conn, resp, url)
        if resp.status == 429 or (resp.status == 503 and response.headers.get("Retry-After")):
            self.back_off(origin, response.headers.get("Retry-After"))
        return response

    def back_off(self, origin: str, retry_after: str | None) -> None:
        from provision.net.http import parse_retry_after

        seconds = parse_retry_after(retry_after) if retry_after else None
        with self._cond:
            host = self._host(origin)
            host.cap = max(1, host.cap // 2)
            if seconds is not None:
                until = time.monotonic() + min(seconds, self.max_pause)
                host.paused_until = max(host.paused_until, until)
            self._cond.notify_all()

    # ------------------------------------------------------------------ slots

    def _host(self, origin: str) -> _Host:
        host = self._hosts.get(origin)
        if host is None:
            host = self._hosts[origin] = _Host(cap=self.per_host)
        return host

    def _acquire(self, origin: str) -> http.client.HTTPConnection | None:
        with self._cond:
            while True:
                host = self._host(origin)
                wait = host.paused_until - time.monotonic()
                if wait <= 0 and host.busy < host.cap:
                    host.busy += 1
                    return host.idle.pop() if host.idle else None
                self._cond.wait(timeout=wait if wait > 0 else None)

    def _release(self, origin: str, conn: http.client.HTTPConnection | None) -> None:
        with self._cond:
            host = self._host(origin)
            host.busy -= 1
            if conn is not None:
                host.idle.append(conn)
            self._cond.notify_all()

    # ------------------------------------------------------------------ wire

    def _exchange(
        self,
        conn: http.client.HTTPConnection | None,
        method: str,
        url: str,
        headers: dict[str, str],
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        proxy = self._proxy(origin_of(url), url)
        target, extra = _target(url, proxy)
        where = redact(url)
        while True:
            reused = conn is not None
            try:
                if conn is None:
                    conn = self._connect(url, proxy)
                conn.request(method, target, headers={**headers, **extra})
                return conn, conn.getresponse()
            except _STALE as exc:
                _close(conn)
                conn = None
                if reused:
                    continue  # the server closed an idle connection: once more on a new one
                raise httpx.ConnectError(f"{type(exc).__name__} talking to {where}") from exc
            except TimeoutError as exc:
                _close(conn)
                raise httpx.ReadTimeout(f"timed out talking to {where}") from exc
            except (OSError, http.client.HTTPException) as exc:
                _close(conn)
                raise httpx.ConnectError(f"{type(exc).__name__} talking to {where}") from exc

    def _proxy(self, origin: str, url: str) -> Proxy | None:
        if origin not in self._proxies:
            self._proxies[origin] = proxy_for(url)  # a race computes the same value twice
        return self._proxies[origin]

    def _connect(self, url: str, proxy: Proxy | None) -> http.client.HTTPConnection:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme in {redact(url)}")
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        t = self._timeouts
        conn: http.client.HTTPConnection
        if proxy is None:
            if parts.scheme == "https":
                conn = http.client.HTTPSConnection(
                    host, port, timeout=t.connect, context=self._ctx()
                )
            else:
                conn = http.client.HTTPConnection(host, port, timeout=t.connect)
        elif parts.scheme == "https":
            # CONNECT tunnel: the proxy sees the host name, never the request nor its token.
            conn = http.client.HTTPSConnection(
                proxy.host, proxy.port, timeout=t.connect, context=self._ctx()
            )
            conn.set_tunnel(host, port, headers=_proxy_auth(proxy))
        else:
            conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=t.connect)
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(t.read)  # connect and read waits differ
        return conn

    def _ctx(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = tls_context()
        return self._tls


def _close(conn: http.client.HTTPConnection | None) -> None:
    if conn is not None:
        conn.close()


def _target(url: str, proxy: Proxy | None) -> tuple[str, dict[str, str]]:
    """The request target and extra headers: origin-form, or absolute-form via an http proxy."""
    parts = urllib.parse.urlsplit(url)
    if proxy is not None and parts.scheme == "http":
        return urllib.parse.urlunsplit(parts._replace(fragment="")), _proxy_auth(proxy)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), {}


def _proxy_auth(proxy: Proxy) -> dict[str, str]:
    if proxy.username is None:
        return {}
    raw = f"{proxy.username}:{proxy.password or ''}"
    return {"Proxy-Authorization": f"Basic {base64.b64encode(raw.encode()).decode()}"}


class PooledResponse:
    """An answer on a pooled connection, shaped like httpx.Response / transfer.RawResponse.

    Closing it hands the connection back when its body was read to the end (or the rest is
    small enough to read now); otherwise the connection is closed, never reused mid-body.
    """

    def __init__(
        self,
        pool: HostPool,
        origin: str,
        conn: http.client.HTTPConnection,
        resp: http.client.HTTPResponse,
        url: str,
    ) -> None:
        self._pool = pool
        self._origin = origin
        self._conn: http.client.HTTPConnection | None = conn
        self._resp = resp
        self.url = url
        self.status_code = resp.status
        # As transfer.RawResponse: header bytes were decoded as latin-1, encode them back so.
        self.headers = httpx.Headers(resp.getheaders(), encoding="latin-1")
        self._body: bytes | None = None

    def readinto(self, buffer: memoryview) -> int:
        try:
            return self._resp.readinto(buffer)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"no data for too long from {redact(self.url)}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise httpx.ReadError(f"{type(exc).__name__} reading from {redact(self.url)}") from exc

    def read(self) -> bytes:
        """The whole (small) body; a transport failure is retryable like any other."""
        if self._body is None:
            try:
                body = self._resp.read(MAX_BODY + 1)
            except TimeoutError as exc:
                raise httpx.ReadTimeout(f"no data for too long from {redact(self.url)}") from exc
            except (OSError, http.client.HTTPException) as exc:
                where = redact(self.url)
                raise httpx.ReadError(f"{type(exc).__name__} reading from {where}") from exc
            if len(body) > MAX_BODY:
                raise SourceError(f"{redact(self.url)} answered more than {MAX_BODY} bytes")
            self._body = body
        return self._body

    @property
    def text(self) -> str:
        return self.read().decode("utf-8", "replace")

    def json(self) -> object:
        return json.loads(self.read())

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        resp = self._resp
        try:
            if not resp.isclosed() and resp.length is not None and resp.length <= DRAIN:
                resp.read()  # a redirect's or error's short body: keep the connection
        except (OSError, http.client.HTTPException):
            pass
        reusable = resp.isclosed() and not resp.will_close
        if not reusable:
            resp.close()
            conn.close()
        self._pool._release(self._origin, conn if reusable else None)
