"""One read-only view of a lock entry's source, for the GitOps commands (plan, outdated,
import). The lock's `source` is a mapping in lock version 1 and a typed dataclass once the
typed lock lands; reading it only here keeps that switch to this file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provision.lock.lockfile import LockEntry


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceView:
    type: str  # civitai | hf | url
    model_id: int | None = None
    version_id: int | None = None
    file_id: int | None = None
    model_name: str | None = None
    version_name: str | None = None
    repo: str | None = None
    path: str | None = None
    revision: str | None = None
    commit: str | None = None
    url: str | None = None

    @property
    def version_label(self) -> str:
        """How a reviewer recognises the version: `v9 (133005@288982)`, a commit, a URL."""
        if self.type == "civitai":
            ids = f"{self.model_id}@{self.version_id}"
            return f"{self.version_name} ({ids})" if self.version_name else ids
        if self.type == "hf":
            return f"{self.repo}@{(self.commit or self.revision or '')[:12]}"
        return self.url or ""

    @property
    def identity(self) -> tuple[str, ...]:
        """What stays the same when a model moves to another version (for plan's "changed")."""
        if self.type == "civitai":
            return ("civitai", str(self.model_id))
        if self.type == "hf":
            return ("hf", str(self.repo), str(self.path))
        return ("url", str(self.url))


def source_view(entry: LockEntry) -> SourceView:
    source: Any = entry.source
    if isinstance(source, Mapping):
        get = source.get
        kind = str(source.get("type", ""))
    else:  # the typed lock: CivitaiSource / HfSource / UrlSource dataclasses

        def get(key: str, default: Any = None) -> Any:
            return getattr(source, key, default)

        kind = str(getattr(source, "type", ""))
    return SourceView(
        type=kind,
        model_id=_int(get("model_id")),
        version_id=_int(get("version_id")),
        file_id=_int(get("file_id")),
        model_name=get("model_name"),
        version_name=get("version_name"),
        repo=get("repo"),
        path=get("path"),
        revision=get("revision"),
        commit=get("commit"),
        url=get("url"),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
