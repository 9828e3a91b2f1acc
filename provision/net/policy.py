"""Where a credential may go, and the one redirect follower that enforces it.

A credential (Civitai/HF bearer token, WebUI basic auth) belongs to a set of origins —
scheme, host and port, so `http://` on the same host or another loopback port is another
origin. It is sent only to those origins, and once a redirect chain has left them it is not
sent again for the rest of that chain, even if the chain comes back: the URL it comes back to
was chosen by a host that never saw the credential and must not steer where it goes.
"""

from __future__ import annotations

import base64
import logging
import urllib.parse
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Final, Protocol, TypeVar

from provision.errors import SourceError

log = logging.getLogger(__name__)

REDIRECT_CODES: Final = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS: Final = 10


def redact(url: str) -> str:
    """scheme://host/path only: signed URLs, `token=` parameters and userinfo never print."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def origin_of(url: str) -> str:
    """`scheme://host:port`, with the scheme's default port made explicit."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


@dataclass(frozen=True, slots=True)
class Credential:
    """An `Authorization` value and the origins it belongs to. The value never prints."""

    authorization: str = field(repr=False)
    origins: frozenset[str]

    @classmethod
    def bearer(cls, token: str | None, origins: Collection[str]) -> Credential | None:
        return cls(f"Bearer {token}", frozenset(origins)) if token else None

    @classmethod
    def basic(cls, user: str, password: str, origins: Collection[str]) -> Credential:
        raw = base64.b64encode(f"{user}:{password}".encode()).decode()
        return cls(f"Basic {raw}", frozenset(origins))

    def allows(self, url: str) -> bool:
        return origin_of(url) in self.origins


class Redirectable(Protocol):
    status_code: int

    @property
    def headers(self) -> object: ...
    def close(self) -> None: ...


R = TypeVar("R", bound=Redirectable)


def follow_redirects(
    url: str,
    send: Callable[[str, dict[str, str]], R],
    *,
    headers: dict[str, str] | None = None,
    credential: Credential | None = None,
    stop: Callable[[R], bool] | None = None,
) -> R:
    """Send `url`, follow redirects by hand, return the first final response (open).

    `stop(response)` returning True ends the chain at that redirect (the Hugging Face HEAD
    reads its metadata from the redirect itself). Every redirect kind (relative, absolute,
    scheme change) goes through the same origin check.
    """
    current, carry = url, credential
    for _ in range(MAX_REDIRECTS + 1):
        send_headers = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
        if carry is not None and carry.allows(current):
            send_headers["Authorization"] = carry.authorization
        elif carry is not None:
            carry = None  # left the credential's origins: never again in this chain
        response = send(current, send_headers)
        location = _location(response)
        if location is None or (stop is not None and stop(response)):
            return response
        target = urllib.parse.urljoin(current, location)
        response.close()
        if urllib.parse.urlsplit(target).scheme not in ("http", "https"):
            raise SourceError(
                f"{redact(current)} redirected to a non-HTTP URL", url=redact(current)
            )
        log.debug("redirect %s -> %s", redact(current), redact(target))
        current = target
    raise SourceError(f"more than {MAX_REDIRECTS} redirects from {redact(url)}", url=redact(url))


def _location(response: Redirectable) -> str | None:
    if response.status_code not in REDIRECT_CODES:
        return None
    value = response.headers.get("location")  # type: ignore[attr-defined]
    return str(value) if value else None
