"""What a sync did, per path: its own module so a sync with nothing to do reports it without
importing the engine (and the network stack behind it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True, kw_only=True)
class SyncResult:
    downloaded: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    left_alone: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    # The same failures as `--json` objects (SdprovError.to_json): type, path, url, status.
    errors: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        return (
            f"{len(self.downloaded)} downloaded, {len(self.adopted)} adopted, "
            f"{len(self.moved)} moved, {len(self.removed)} removed, {len(self.kept)} unchanged"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "downloaded": sorted(self.downloaded),
            "adopted": sorted(self.adopted),
            "moved": sorted(self.moved),
            "removed": sorted(self.removed),
            "kept": sorted(self.kept),
            "left_alone": sorted(self.left_alone),
            "failures": dict(sorted(self.failures.items())),
            "errors": {
                path: self.errors.get(path, {"type": "Conflict", "message": message})
                for path, message in sorted(self.failures.items())
            },
        }
