"""What every connection sdprov opens shares: TLS context, proxy, timeouts, User-Agent.

Both HTTP paths (httpx for API calls, http.client for model bytes) take these from here, so a
proxy, a CA bundle or a timeout set once applies to every request, whichever path makes it.
"""

from __future__ import annotations

import os
import ssl
import urllib.parse
import urllib.request
from dataclasses import dataclass
from functools import cache
from typing import Final

from provision import __version__
from provision.errors import UsageError

# Deliberately not browser-like: Civitai answers browsers with HTML login pages and redirects
# instead of JSON errors (reference/civitai-hf.md §1.5).
USER_AGENT: Final = f"sdprov/{__version__} (model provisioner)"
CONNECT_TIMEOUT: Final = 15.0
READ_TIMEOUT: Final = 60.0
PROXY_HINT: Final = (
    "sdprov speaks to HTTP proxies only: set HTTPS_PROXY/HTTP_PROXY to an http:// proxy "
    "(a SOCKS proxy can be fronted by one, e.g. privoxy or gost), or unset ALL_PROXY"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Seconds to open a connection, and to wait for the next bytes of an answer."""

    connect: float = CONNECT_TIMEOUT
    read: float = READ_TIMEOUT

    @classmethod
    def from_env(cls) -> Timeouts:
        """`SDPROV_CONNECT_TIMEOUT` / `SDPROV_READ_TIMEOUT` (a stalled CDN; tests use 0.5 s)."""
        return cls(
            connect=_seconds("SDPROV_CONNECT_TIMEOUT", CONNECT_TIMEOUT),
            read=_seconds("SDPROV_READ_TIMEOUT", READ_TIMEOUT),
        )


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise UsageError(f"{name}={raw!r} is not a positive number of seconds")
    return value


@cache
def tls_context() -> ssl.SSLContext:
    """The system trust store; OpenSSL also honours SSL_CERT_FILE / SSL_CERT_DIR (a corporate
    CA). One context for both paths: a bundle that works for the API works for the bytes."""
    return ssl.create_default_context()


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    username: str | None
    password: str | None


def proxy_for(url: str) -> Proxy | None:
    """The proxy for `url`: `<scheme>_PROXY`, else `ALL_PROXY`, unless `NO_PROXY` matches.

    Upper and lower case are both read (urllib's rules, which httpx follows too). A SOCKS URL
    is refused with what to do instead: silently going direct would bypass the user's proxy.
    """
    parts = urllib.parse.urlsplit(url)
    env = urllib.request.getproxies_environment()
    raw = env.get(parts.scheme) or env.get("all")
    if not raw or urllib.request.proxy_bypass(parts.netloc.rpartition("@")[2]):
        return None
    proxy = urllib.parse.urlsplit(raw if "://" in raw else f"http://{raw}")
    if proxy.scheme != "http":
        raise UsageError(f"unsupported proxy {redact_proxy(raw)}", hint=PROXY_HINT)
    return Proxy(
        host=proxy.hostname or "",
        port=proxy.port or 80,
        username=urllib.parse.unquote(proxy.username) if proxy.username else None,
        password=urllib.parse.unquote(proxy.password or "") if proxy.username else None,
    )


def check_proxy_env() -> None:
    """Refuse a SOCKS (or other non-HTTP) proxy before httpx sees it (it would raise an
    ImportError for a missing extra, or go direct)."""
    env = urllib.request.getproxies_environment()
    for key in ("http", "https", "all"):
        raw = env.get(key)
        if raw and "://" in raw and not raw.lower().startswith("http://"):
            raise UsageError(f"unsupported proxy {redact_proxy(raw)}", hint=PROXY_HINT)


def redact_proxy(raw: str) -> str:
    parts = urllib.parse.urlsplit(raw if "://" in raw else f"http://{raw}")
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}"
