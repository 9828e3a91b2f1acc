"""One read-only view of a lock entry's source for the GitOps commands (plan, outdated,
import): the fields they compare and the label a reviewer reads, whatever the source type."""

from __future__ import annotations

from dataclasses import dataclass

from provision.lock.lockfile import LockEntry
from provision.sources.locked import CivitaiSource, HfSource


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
    source = entry.source
    if isinstance(source, CivitaiSource):
        return SourceView(
            type=source.type,
            model_id=source.model_id,
            version_id=source.version_id,
            file_id=source.file_id,
            model_name=source.model_name,
            version_name=source.version_name,
        )
    if isinstance(source, HfSource):
        return SourceView(
            type=source.type,
            repo=source.repo,
            path=source.path,
            revision=source.revision,
            commit=source.commit,
        )
    return SourceView(type=source.type, url=source.url)
