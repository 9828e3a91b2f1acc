"""`sdprov outdated`: which locked models have newer versions upstream, and whether the new
file is really different (the same sha256 under a new version name is not an update).

Polite by construction: one request per Civitai model (shared by entries of the same model),
one more only for a model with a real update (its early-access state), at most `jobs` at a
time, answers cached on disk (`provision.lock.api_cache`), retries and Retry-After from the
network layer. Each entry is checked on its own: one that fails is reported as such and the
others still are.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import quote

import httpx

from provision.errors import SdprovError, SourceError
from provision.lock.api_cache import ApiCache
from provision.lock.lockfile import LockEntry, Lockfile
from provision.lock.source_view import SourceView, source_view
from provision.net.http import check_status, open_following, retrying
from provision.sources import SourceContext, huggingface
from provision.sources.civitai import CivitaiApi

_COMMIT: Final = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Version:
    label: str  # `v2 (122359@135867)`, or a commit
    published_at: str | None = None
    early_access_ends_at: str | None = None
    same_bytes: bool = False  # carries the locked file's sha256: not an update

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.label,
            "published_at": self.published_at,
            "early_access_ends_at": self.early_access_ends_at,
            "same_bytes": self.same_bytes,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Outdated:
    name: str
    kind: str
    path: str
    source: str
    current: str
    status: str  # update | up-to-date | pinned | error
    latest: Version | None = None
    newer: tuple[Version, ...] = ()
    pinned_in_manifest: bool | None = None
    error: str | None = None

    @property
    def hint(self) -> str:
        if self.status != "update":
            return ""
        if self.pinned_in_manifest:
            return "pinned in the manifest: change its version there"
        return f"sdprov lock --upgrade {self.name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "path": self.path,
            "source": self.source,
            "current": self.current,
            "status": self.status,
            "latest": self.latest.to_json() if self.latest else None,
            "newer": [v.to_json() for v in self.newer],
            "pinned_in_manifest": self.pinned_in_manifest,
            "hint": self.hint,
            "error": self.error,
        }


@dataclass(slots=True)
class _Checker:
    ctx: SourceContext
    cache: ApiCache
    token_tag: Callable[[str | None], str] = field(default=lambda t: "auth" if t else "anon")
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def cached(self, key: str, fetch: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        # One fetch per key even when two entries of one model are checked at once.
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            return self.cache.get(key, fetch)

    def civitai(self, path: str, what: str) -> dict[str, Any]:
        key = f"civitai {self.token_tag(self.ctx.civitai_token)} {self.ctx.civitai_url}{path}"
        return self.cached(key, lambda: _civitai_json(self.ctx, path, what))

    def hf(self, path: str, what: str) -> dict[str, Any]:
        key = f"hf {self.token_tag(self.ctx.hf_token)} {self.ctx.hf_endpoint}{path}"
        return self.cached(key, lambda: _hf_json(self.ctx, path, what))


def check_updates(
    lock: Lockfile,
    pinned: Mapping[str, bool],
    ctx: SourceContext,
    *,
    jobs: int = 4,
    cache: ApiCache,
) -> list[Outdated]:
    """One row per locked model, in lock order. `pinned` maps entry digests to whether the
    manifest pins that entry (empty when there is no manifest)."""
    checker = _Checker(ctx=ctx, cache=cache)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda e: _check(e, checker, pinned.get(e.entry_digest)), lock.models))


def _check(entry: LockEntry, checker: _Checker, pinned: bool | None) -> Outdated:
    view = source_view(entry)
    row = Outdated(
        name=entry.name,
        kind=entry.kind.value,
        path=entry.path,
        source=view.type,
        current=view.version_label,
        status="pinned",
        pinned_in_manifest=pinned,
    )
    what = f"{entry.name} ({entry.path})"
    try:
        if view.type == "civitai":
            return _civitai(row, entry, view, checker, what)
        if view.type == "hf":
            return _hf(row, entry, view, checker, what)
        return row  # a URL with its sha256 never moves
    except SdprovError as exc:
        return _failed(row, exc.render())
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return _failed(row, f"{what}: unexpected answer ({type(exc).__name__}: {exc})")


def _failed(row: Outdated, message: str) -> Outdated:
    return replace(row, status="error", error=message)


def _civitai(
    row: Outdated, entry: LockEntry, view: SourceView, checker: _Checker, what: str
) -> Outdated:
    model = checker.civitai(f"/api/v1/models/{view.model_id}", what)
    versions = [v for v in model.get("modelVersions") or [] if isinstance(v, dict)]
    ids = [int(v["id"]) for v in versions]
    # modelVersions is newest first; everything before the locked version is newer.
    newer_raw = versions[: ids.index(view.version_id)] if view.version_id in ids else versions
    newer = [_civitai_version(v, view, entry.sha256) for v in newer_raw]
    real = [(v, raw) for v, raw in zip(newer, newer_raw, strict=True) if not v.same_bytes]
    status = "update" if real else "up-to-date"
    latest = None
    if real:
        first, raw = real[0]
        detail = checker.civitai(f"/api/v1/model-versions/{raw['id']}", what)
        latest = Version(
            label=first.label,
            published_at=first.published_at,
            early_access_ends_at=detail.get("earlyAccessEndsAt"),
        )
    return replace(row, status=status, latest=latest, newer=tuple(newer))


def _civitai_version(raw: dict[str, Any], view: SourceView, sha256: str) -> Version:
    hashes = {
        str((f.get("hashes") or {}).get("SHA256") or "").lower() for f in raw.get("files") or []
    }
    name = raw.get("name")
    ids = f"{view.model_id}@{raw['id']}"
    return Version(
        label=f"{name} ({ids})" if name else ids,
        published_at=raw.get("publishedAt"),
        early_access_ends_at=raw.get("earlyAccessEndsAt"),
        same_bytes=sha256 in hashes,
    )


def _hf(
    row: Outdated, entry: LockEntry, view: SourceView, checker: _Checker, what: str
) -> Outdated:
    revision = view.revision or "main"
    if _COMMIT.match(revision):
        return row  # pinned to a commit: nothing can move it
    path = f"/api/models/{view.repo}/revision/{quote(revision, safe='')}?blobs=true"
    info = checker.hf(path, what)
    commit = str(info.get("sha") or "")
    if commit == view.commit:
        return replace(row, status="up-to-date")
    sibling = next((s for s in info.get("siblings") or [] if s.get("rfilename") == view.path), None)
    if sibling is None:
        raise SourceError(f"{what}: {view.path} is no longer on {view.repo}@{revision}")
    sha = str((sibling.get("lfs") or {}).get("sha256") or "")
    latest = Version(
        label=f"{view.repo}@{commit[:12]}",
        published_at=info.get("lastModified"),
        same_bytes=sha == entry.sha256,
    )
    status = "up-to-date" if latest.same_bytes else "update"
    return replace(
        row, status=status, latest=None if latest.same_bytes else latest, newer=(latest,)
    )


def _civitai_json(ctx: SourceContext, path: str, what: str) -> dict[str, Any]:
    with ctx.client() as client:  # one per request: worker threads never share a client
        return CivitaiApi(client, ctx).get_json(path, what)


def _hf_json(ctx: SourceContext, path: str, what: str) -> dict[str, Any]:
    with ctx.client() as client:
        return _hf_get(client, ctx, path, what)


def _hf_get(client: httpx.Client, ctx: SourceContext, path: str, what: str) -> dict[str, Any]:
    url = f"{ctx.hf_endpoint}{path}"

    def attempt() -> dict[str, Any]:
        with open_following(client, url, credential=huggingface.credential(ctx)) as response:
            check_status(response, lambda r: huggingface.error_for(r, what))
            response.read()
            data = response.json()
            if not isinstance(data, dict):
                raise SourceError(f"{what}: Hugging Face answered something that is not an object")
            return data

    return retrying(attempt, policy=ctx.retry, what=what)
