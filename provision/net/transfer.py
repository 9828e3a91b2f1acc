"""Streaming GETs for model bytes, on the standard library's http.client.

Model files are many GB; the API calls around them are tiny. httpx serves the API calls
(provision.net.http). For the bytes we measured httpx's streaming at ~1 GB/s on loopback against
~3.5 GB/s for `http.client`'s `readinto` into a reused buffer (docs/decisions.md), and the sync
must keep up with curl, so the body path uses http.client (honouring HTTP(S)_PROXY and
NO_PROXY, as httpx does). The rules are the same as in
provision.net.http: redirects are followed by hand, a token goes only to its own origins, and
transport failures surface as httpx exceptions so one retry policy covers both.
"""

from __future__ import annotations

import base64
import http.client
import ssl
import urllib.parse
import urllib.request
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Final

import httpx

from provision.net.http import USER_AGENT, follow_redirects, redact

READ_TIMEOUT: Final = 60.0


@cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


class RawResponse:
    """The parts of an HTTP response the download path needs; shaped like httpx.Response."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, url: str):
        self._conn = conn
        self._resp = resp
        self.url = url
        self.status_code = resp.status
        self.headers = httpx.Headers(resp.getheaders())
        self._body: bytes | None = None
        # Bytes left of a Content-Length body (None: chunked or unknown length).
        self._remaining: int | None = resp.length if not resp.chunked else None
        self._failure: httpx.TransportError | None = None

    def readinto(self, buffer: memoryview) -> int:
        """Fill `buffer` as far as the body goes; 0 at the end.

        When the connection breaks mid-buffer, the bytes already received are returned first
        and the error is raised by the next call, so a resume loses nothing it was given.
        """
        if self._failure is not None:
            raise self._failure
        if self._remaining is None:
            try:
                return self._resp.readinto(buffer)
            except (OSError, http.client.HTTPException) as exc:
                raise _transport_error(exc) from exc
        limit = min(len(buffer), self._remaining)
        filled = 0
        while filled < limit:
            try:
                n = self._resp.fp.readinto1(buffer[filled:limit])
            except (OSError, http.client.HTTPException) as exc:
                if not filled:
                    raise _transport_error(exc) from exc
                self._failure = _transport_error(exc)
                break
            if not n:
                break  # closed early: the caller sees a short body and resumes
            filled += n
        self._remaining -= filled
        return filled

    def read(self) -> bytes:
        """The whole (small) body: error pages only."""
        if self._body is None:
            try:
                self._body = self._resp.read(1 << 20)
            except (OSError, http.client.HTTPException):
                self._body = b""
        return self._body

    @property
    def text(self) -> str:
        return self.read().decode("utf-8", "replace")

    def json(self) -> object:
        import json

        return json.loads(self.text)

    def close(self) -> None:
        self._resp.close()
        self._conn.close()


def _transport_error(exc: BaseException) -> httpx.TransportError:
    if isinstance(exc, http.client.IncompleteRead):
        return httpx.RemoteProtocolError(f"body cut short: {exc}")
    return httpx.ReadError(f"{type(exc).__name__}: {exc}")


def _proxy_for(parts: urllib.parse.SplitResult) -> urllib.parse.SplitResult | None:
    """The proxy from HTTP(S)_PROXY / NO_PROXY, as httpx (the API path) honours them too."""
    proxy = urllib.request.getproxies_environment().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.netloc):
        return None
    return urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")


def _proxy_auth(proxy: urllib.parse.SplitResult) -> dict[str, str]:
    if not proxy.username:
        return {}
    raw = f"{urllib.parse.unquote(proxy.username)}:{urllib.parse.unquote(proxy.password or '')}"
    return {"Proxy-Authorization": f"Basic {base64.b64encode(raw.encode()).decode()}"}


def _connect(url: str) -> tuple[http.client.HTTPConnection, str, dict[str, str]]:
    """Connection, request target and extra headers for `url` (direct or through a proxy)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(f"unsupported URL scheme in {redact(url)}")
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    proxy = _proxy_for(parts)
    if proxy is None:
        if parts.scheme == "https":
            return (
                http.client.HTTPSConnection(host, port, timeout=READ_TIMEOUT, context=_tls()),
                target,
                {},
            )
        return http.client.HTTPConnection(host, port, timeout=READ_TIMEOUT), target, {}
    proxy_host, proxy_port = proxy.hostname or "", proxy.port or 80
    if parts.scheme == "https":
        # CONNECT tunnel: the proxy sees the host name, never the request (nor its token).
        tunnel = http.client.HTTPSConnection(
            proxy_host, proxy_port, timeout=READ_TIMEOUT, context=_tls()
        )
        tunnel.set_tunnel(host, port, headers=_proxy_auth(proxy))
        return tunnel, target, {}
    # Plain http goes to the proxy in absolute form, as every HTTP proxy expects.
    plain = http.client.HTTPConnection(proxy_host, proxy_port, timeout=READ_TIMEOUT)
    return plain, urllib.parse.urlunsplit(parts._replace(fragment="")), _proxy_auth(proxy)


def _send(url: str, method: str, headers: dict[str, str]) -> RawResponse:
    conn, target, proxy_headers = _connect(url)
    try:
        conn.request(method, target, headers={**headers, **proxy_headers})
        resp = conn.getresponse()
    except TimeoutError as exc:
        conn.close()
        raise httpx.ReadTimeout(f"timed out talking to {redact(url)}") from exc
    except ConnectionRefusedError as exc:
        conn.close()
        raise httpx.ConnectError(f"connection refused by {redact(url)}") from exc
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise httpx.ConnectError(f"{type(exc).__name__} talking to {redact(url)}") from exc
    return RawResponse(conn, resp, url)


@contextmanager
def open_stream(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    token: str | None = None,
    token_hosts: Collection[str] = (),
) -> Iterator[RawResponse]:
    """Like provision.net.http.open_following, for bulk bytes."""
    base = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}
    response = follow_redirects(
        url,
        lambda target, send_headers: _send(target, method, send_headers),
        headers=base,
        token=token,
        token_hosts=token_hosts,
    )
    try:
        yield response
    finally:
        response.close()
