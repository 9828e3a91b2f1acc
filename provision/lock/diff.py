"""What a lock change does: models added, removed, changed (old → new version), moved,
bytes to download, and the base-model warnings of the new set. Pure: two locks in, a plan
out (`provision.sync.root_diff` builds the same plan against a models folder instead).

Entries pair up by path first, then by source identity (a Civitai model, a Hugging Face
file), so a version bump that renames the file reads as one change, not a removal plus an
addition. Bytes already present under another path are moved by sync, not downloaded.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from provision.inspection import CompatEntry, check_compatibility
from provision.lock.lockfile import LockEntry, Lockfile
from provision.lock.source_view import source_view


class Change(enum.StrEnum):
    ADDED = "added"
    CHANGED = "changed"
    MOVED = "moved"  # the same bytes under another path
    REMOVED = "removed"
    ADOPT = "adopt"  # models root only: the file is there, unrecorded; sync hashes and keeps it
    CONFLICT = "conflict"  # models root only: a file sdprov did not place is in the way
    UNCHANGED = "unchanged"


ORDER: tuple[Change, ...] = tuple(Change)


@dataclass(frozen=True, slots=True, kw_only=True)
class Side:
    """One side of a change: a locked model, or (models root) what is on disk."""

    path: str
    sha256: str
    size: int
    version: str = ""  # a reviewer's label of the version (see SourceView.version_label)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "version": self.version,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanItem:
    change: Change
    name: str
    kind: str
    family: str
    old: Side | None
    new: Side | None
    download_bytes: int = 0
    note: str = ""

    @property
    def path(self) -> str:
        side = self.new or self.old
        assert side is not None
        return side.path

    def to_json(self) -> dict[str, Any]:
        return {
            "change": self.change.value,
            "name": self.name,
            "kind": self.kind,
            "family": self.family,
            "path": self.path,
            "old": self.old.to_json() if self.old else None,
            "new": self.new.to_json() if self.new else None,
            "download_bytes": self.download_bytes,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class LockPlan:
    lockfile: str
    base: str  # what the lock was compared with, as the user named it
    items: tuple[PlanItem, ...]
    warnings: tuple[str, ...] = ()

    @property
    def download_bytes(self) -> int:
        return sum(i.download_bytes for i in self.items)

    @property
    def remove_bytes(self) -> int:
        return sum(i.old.size for i in self.items if i.change is Change.REMOVED and i.old)

    def counts(self) -> dict[str, int]:
        found = Counter(i.change for i in self.items)
        return {c.value: found[c] for c in ORDER}

    @property
    def changes(self) -> list[PlanItem]:
        return [i for i in self.items if i.change is not Change.UNCHANGED]

    def to_json(self) -> dict[str, Any]:
        return {
            "lockfile": self.lockfile,
            "base": self.base,
            "summary": {
                **self.counts(),
                "download_bytes": self.download_bytes,
                "remove_bytes": self.remove_bytes,
            },
            "changes": [i.to_json() for i in self.items],
            "warnings": list(self.warnings),
        }


def side_of(entry: LockEntry) -> Side:
    return Side(
        path=entry.path,
        sha256=entry.sha256,
        size=entry.size,
        version=source_view(entry).version_label,
    )


def item(change: Change, entry: LockEntry, old: Side | None, new: Side | None) -> PlanItem:
    download = 0
    if new is not None and change in (Change.ADDED, Change.CHANGED):
        download = new.size
    return PlanItem(
        change=change,
        name=entry.name,
        kind=entry.kind.value,
        family=entry.base.value,
        old=old,
        new=new,
        download_bytes=download,
    )


def diff_locks(
    base: Lockfile | None, head: Lockfile, *, lockfile: str, base_label: str
) -> LockPlan:
    old_left = list(base.models) if base else []
    new_left = list(head.models)
    items: list[PlanItem] = []
    for key in (lambda e: (e.kind, e.path), _identity):
        old_by = _unique(old_left, key)
        new_by = _unique(new_left, key)
        for k in sorted(set(old_by) & set(new_by), key=str):
            old, new = old_by[k], new_by[k]
            same = old.sha256 == new.sha256 and old.path == new.path
            change = Change.UNCHANGED if same else Change.CHANGED
            if old.sha256 == new.sha256 and old.path != new.path:
                change = Change.MOVED
            items.append(item(change, new, side_of(old), side_of(new)))
            old_left.remove(old)
            new_left.remove(new)
    spare = {e.sha256: e for e in old_left}
    for new in new_left:
        moved_from = spare.pop(new.sha256, None)
        if moved_from is not None:
            old_left.remove(moved_from)
            items.append(item(Change.MOVED, new, side_of(moved_from), side_of(new)))
        else:
            items.append(item(Change.ADDED, new, None, side_of(new)))
    items.extend(item(Change.REMOVED, old, side_of(old), None) for old in old_left)
    have = {e.sha256 for e in base.models} if base else set()
    items = [_no_download_if_present(i, have) for i in items]
    return LockPlan(
        lockfile=lockfile,
        base=base_label,
        items=tuple(sorted(items, key=lambda i: (ORDER.index(i.change), i.kind, i.path))),
        warnings=tuple(compat_warnings(head)),
    )


def _identity(entry: LockEntry) -> tuple[str, ...]:
    return (entry.kind.value, *source_view(entry).identity)


def _unique(entries: list[LockEntry], key: Any) -> dict[Any, LockEntry]:
    """Entries by key, leaving out keys that two entries share (ambiguous: not paired)."""
    counts = Counter(key(e) for e in entries)
    return {key(e): e for e in entries if counts[key(e)] == 1}


def _no_download_if_present(plan_item: PlanItem, have: set[str]) -> PlanItem:
    if plan_item.new is not None and plan_item.new.sha256 in have and plan_item.download_bytes:
        # The bytes are already placed under another path: sync moves them.
        return replace(plan_item, download_bytes=0)
    return plan_item


def compat_warnings(lock: Lockfile) -> list[str]:
    """Base-model mismatches of the new set (LoRAs that fit no checkpoint, …)."""
    entries = [
        CompatEntry(
            name=e.name,
            kind=e.kind,
            family=e.base,
            base_model_label=e.base_model,
            declared_base=e.base if e.base_declared else None,
        )
        for e in lock.models
    ]
    return [f"{p.message}; {p.hint}" for p in check_compatibility(entries)]
