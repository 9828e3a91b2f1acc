"""A small WebUI API client (A1111 1.6–1.10, Forge) on httpx.

Routes and JSON shapes: reference/webui-formats.md §2, checked against A1111 `modules/api/api.py`
and `extensions-builtin/Lora/scripts/lora_script.py`, Forge `modules/api/api.py`.

Connections come from provision.net (TLS context, proxies, User-Agent) and redirects go
through its one follower: the password travels only in a Basic `Authorization` header, only to
the WebUI's own origin (scheme, host, port), never across a redirect to another. It is never
put in a URL, a log line or an error. A URL given as `http://user:pass@host` is split into
credentials and a clean URL first.
"""

from __future__ import annotations

import enum
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Self
from urllib.parse import urlsplit, urlunsplit

import httpx

from provision.kinds import Kind
from provision.net.http import make_client
from provision.net.policy import Credential, follow_redirects, origin_of
from provision.webui.errors import WebuiAuthError, WebuiError

log = logging.getLogger(__name__)

# Listing is quick; refreshes rescan folders (one small read per checkpoint for the old hash,
# over NAS), so they get a long read timeout.
LIST_TIMEOUT: Final = httpx.Timeout(30.0, connect=5.0)
REFRESH_TIMEOUT: Final = httpx.Timeout(600.0, connect=5.0)
PROBE_TIMEOUT: Final = httpx.Timeout(3.0, connect=2.0)


def parse_auth(text: str) -> tuple[str, str]:
    """`user:password` (as WebUI's --api-auth takes it) → (user, password)."""
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise WebuiError("WebUI credentials must look like user:password")
    return user, password


def split_url(url: str) -> tuple[str, tuple[str, str] | None]:
    """Strip `user:pass@` from a URL; return the clean base URL and the credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebuiError(f"not a WebUI URL: {redact(url)!r} (expected http://host:port)")
    auth = None
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        auth = parse_auth(userinfo)
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")), auth


def redact(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="********@" + parts.netloc.rsplit("@", 1)[1]))


class RefreshStatus(enum.StrEnum):
    REFRESHED = "refreshed"  # the route answered
    FALLBACK = "fallback"  # no route; we did what WebUI watches instead
    UNSUPPORTED = "unsupported"  # nothing can make WebUI rescan this kind
    FAILED = "failed"  # the route exists but answered an error


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshOutcome:
    kind: Kind
    route: str | None
    status: RefreshStatus
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "route": self.route,
            "status": self.status.value,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedModel:
    """One model as WebUI lists it, under WebUI's own name for it."""

    kind: Kind
    name: str
    filename: str | None  # absolute path on the WebUI host; embeddings have none in the API
    sha256: str | None = None  # checkpoints only: from WebUI's hash cache, None if not hashed
    skipped: bool = False  # embeddings WebUI read but did not load (vector width)
    shape: int | None = None  # embeddings: vector width


@dataclass(frozen=True, slots=True, kw_only=True)
class Listing:
    """Everything WebUI lists, per kind. `vae_route` says which route answered."""

    checkpoints: tuple[ListedModel, ...]
    vaes: tuple[ListedModel, ...]
    vae_route: str
    loras: tuple[ListedModel, ...]
    embeddings: tuple[ListedModel, ...]
    hypernetworks: tuple[ListedModel, ...]

    def of(self, kind: Kind) -> tuple[ListedModel, ...]:
        """What WebUI lists of `kind`; () for kinds its API has no listing route for."""
        return {
            Kind.CHECKPOINT: self.checkpoints,
            Kind.VAE: self.vaes,
            Kind.LORA: self.loras,
            Kind.EMBEDDING: self.embeddings,
            Kind.HYPERNETWORK: self.hypernetworks,
        }.get(kind, ())

    @property
    def is_forge(self) -> bool:
        return self.vae_route.endswith("sd-modules")


class WebuiClient:
    """Talks to one WebUI. Use as a context manager (it owns an httpx.Client)."""

    def __init__(
        self,
        url: str,
        auth: tuple[str, str] | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url, url_auth = split_url(url)
        auth = auth or url_auth
        self._credential = Credential.basic(*auth, {origin_of(self.url)}) if auth else None
        self._http = make_client(timeout=LIST_TIMEOUT, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------------

    def _request(
        self, method: str, route: str, *, timeout: httpx.Timeout = LIST_TIMEOUT
    ) -> httpx.Response:
        def send(target: str, headers: dict[str, str]) -> httpx.Response:
            return self._http.request(method, target, headers=headers, timeout=timeout)

        try:
            response = follow_redirects(self.url + route, send, credential=self._credential)
        except httpx.TimeoutException as exc:
            raise WebuiError(
                f"WebUI at {self.url} did not answer {method} {route} in time "
                f"({exc.__class__.__name__})",
                hint="it may be busy loading a model; retry when it is idle",
            ) from None
        except httpx.TransportError as exc:
            raise WebuiError(
                f"cannot reach WebUI at {self.url} ({exc.__class__.__name__}: {exc})",
                hint="is it running, and started with --api (and --listen for remote hosts)?",
            ) from None
        if response.status_code == 401:
            raise WebuiAuthError(self.url)
        return response

    def _json(self, route: str) -> Any:
        response = self._request("GET", route)
        if response.status_code != 200:
            raise WebuiError(
                f"WebUI at {self.url}: GET {route} answered HTTP {response.status_code}",
                hint="is it started with --api?" if response.status_code == 404 else None,
            )
        try:
            return response.json()
        except ValueError:
            raise WebuiError(f"WebUI at {self.url}: GET {route} did not return JSON") from None

    def probe(self) -> bool:
        """True when something answers like a WebUI at this URL (401 counts: it is running)."""
        try:
            response = self._request("GET", "/sdapi/v1/sd-models", timeout=PROBE_TIMEOUT)
        except WebuiAuthError:
            return True
        except WebuiError:
            return False
        return response.status_code == 200

    def has_route(self, route: str) -> bool:
        """GET-probe a read-only route: 404 means this WebUI version does not have it."""
        return self._request("GET", route, timeout=PROBE_TIMEOUT).status_code == 200

    # -- refresh -------------------------------------------------------------------------------

    def _refresh(self, kind: Kind, route: str) -> RefreshOutcome:
        response = self._request("POST", route, timeout=REFRESH_TIMEOUT)
        if response.status_code == 200:
            return RefreshOutcome(kind=kind, route=route, status=RefreshStatus.REFRESHED)
        detail = f"HTTP {response.status_code}"
        if response.status_code == 404:
            detail += ": this WebUI has no such route"
        return RefreshOutcome(kind=kind, route=route, status=RefreshStatus.FAILED, detail=detail)

    def refresh_checkpoints(self) -> RefreshOutcome:
        return self._refresh(Kind.CHECKPOINT, "/sdapi/v1/refresh-checkpoints")

    def refresh_vae(self) -> RefreshOutcome:
        return self._refresh(Kind.VAE, "/sdapi/v1/refresh-vae")

    def refresh_loras(self) -> RefreshOutcome:
        return self._refresh(Kind.LORA, "/sdapi/v1/refresh-loras")

    @staticmethod
    def refresh_embeddings(embeddings_dir: Path | None) -> RefreshOutcome:
        """Bump the top-level embeddings folder's mtime; never POST refresh-embeddings.

        That route (A1111 1.8–1.10) reloads with `force_reload=True`, whose
        `get_expected_shape` reads `shared.sd_model`: on a WebUI with no model loaded it loads
        and hashes a checkpoint (minutes, gigabytes) and answers 500 when none can load. Every
        generation instead reloads embeddings when a top-level folder's mtime increased
        (`DirWithTextualInversionEmbeddings.has_changed`, 1.6–1.10), before the prompt that
        could use them is parsed, and a file added in a subfolder does not change that mtime.
        """
        if embeddings_dir is None or not embeddings_dir.is_dir():
            return RefreshOutcome(
                kind=Kind.EMBEDDING,
                route=None,
                status=RefreshStatus.FALLBACK,
                detail=f"no embeddings folder at {embeddings_dir}: nothing for WebUI to reload",
            )
        touch_newer(embeddings_dir)
        return RefreshOutcome(
            kind=Kind.EMBEDDING,
            route=None,
            status=RefreshStatus.FALLBACK,
            detail=f"touched {embeddings_dir}: WebUI reloads embeddings at its next generation "
            "(refresh-embeddings is not called: it forces a checkpoint load)",
        )

    @staticmethod
    def refresh_hypernetworks() -> RefreshOutcome:
        return RefreshOutcome(
            kind=Kind.HYPERNETWORK,
            route=None,
            status=RefreshStatus.UNSUPPORTED,
            detail="hypernetworks have no refresh route: WebUI lists new ones after a restart "
            "(or the UI's refresh button)",
        )

    # -- listing -------------------------------------------------------------------------------

    def list_checkpoints(self) -> tuple[ListedModel, ...]:
        out = []
        for item in _items(self._json("/sdapi/v1/sd-models"), "sd-models"):
            title = str(item.get("title", ""))
            short = item.get("hash")
            # title is `name [shorthash]` once the sha256 is known, else just `name`.
            suffix = f" [{short}]" if short else ""
            name = title[: -len(suffix)] if suffix and title.endswith(suffix) else title
            sha = item.get("sha256")
            out.append(
                ListedModel(
                    kind=Kind.CHECKPOINT,
                    name=name,
                    filename=_opt_str(item.get("filename")),
                    sha256=str(sha) if sha else None,
                )
            )
        return tuple(out)

    def list_vaes(self) -> tuple[tuple[ListedModel, ...], str]:
        """A1111 `sd-vae`; Forge removed it and lists VAEs (and text encoders) in `sd-modules`."""
        route = "/sdapi/v1/sd-vae"
        response = self._request("GET", route)
        if response.status_code == 404:
            route = "/sdapi/v1/sd-modules"
            data = self._json(route)
        elif response.status_code == 200:
            data = response.json()
        else:
            raise WebuiError(f"WebUI at {self.url}: GET {route} answered {response.status_code}")
        items = tuple(
            ListedModel(
                kind=Kind.VAE,
                name=str(item.get("model_name", "")),
                filename=_opt_str(item.get("filename")),
            )
            for item in _items(data, route)
        )
        return items, route

    def list_loras(self) -> tuple[ListedModel, ...]:
        return tuple(
            ListedModel(
                kind=Kind.LORA, name=str(item.get("name", "")), filename=_opt_str(item.get("path"))
            )
            for item in _items(self._json("/sdapi/v1/loras"), "loras")
        )

    def list_embeddings(self) -> tuple[ListedModel, ...]:
        data = self._json("/sdapi/v1/embeddings")
        if not isinstance(data, dict):
            raise WebuiError(f"WebUI at {self.url}: embeddings is not an object")
        out = []
        for group, skipped in (("loaded", False), ("skipped", True)):
            entries = data.get(group) or {}
            if not isinstance(entries, dict):
                continue
            for name, info in entries.items():
                shape = info.get("shape") if isinstance(info, dict) else None
                out.append(
                    ListedModel(
                        kind=Kind.EMBEDDING,
                        name=str(name),
                        filename=None,
                        skipped=skipped,
                        shape=shape if isinstance(shape, int) else None,
                    )
                )
        return tuple(out)

    def list_hypernetworks(self) -> tuple[ListedModel, ...]:
        return tuple(
            ListedModel(
                kind=Kind.HYPERNETWORK,
                name=str(item.get("name", "")),
                filename=_opt_str(item.get("path")),
            )
            for item in _items(self._json("/sdapi/v1/hypernetworks"), "hypernetworks")
        )

    def listing(self) -> Listing:
        vaes, vae_route = self.list_vaes()
        return Listing(
            checkpoints=self.list_checkpoints(),
            vaes=vaes,
            vae_route=vae_route,
            loras=self.list_loras(),
            embeddings=self.list_embeddings(),
            hypernetworks=self.list_hypernetworks(),
        )


def touch_newer(directory: Path) -> None:
    """Set a directory's mtime to now, and strictly above its current value.

    WebUI compares with `>`, so an mtime equal to the one it saw (coarse clocks, or a folder
    just modified) would not trigger a reload.
    """
    st = directory.stat()
    new_ns = max(time.time_ns(), st.st_mtime_ns + 1_000_000)
    os.utime(directory, ns=(st.st_atime_ns, new_ns))


def _items(data: Any, route: str) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        raise WebuiError(f"WebUI answered {route} with {type(data).__name__}, expected a list")
    return [item for item in data if isinstance(item, dict)]


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
