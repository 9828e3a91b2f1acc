"""The sync plan: lock vs state vs disk, decided without touching anything.

No network and no hashing: a recorded file whose size and mtime are unchanged is trusted.
`provision.sync.apply` carries the plan out.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path

from provision.lock.lockfile import LockEntry, Lockfile
from provision.sync.state import State


class Act(enum.StrEnum):
    KEEP = "keep"  # recorded, size and mtime unchanged: trusted without hashing
    DOWNLOAD = "download"
    VERIFY = "verify"  # a file of the right size is there but unrecorded: hash, then adopt
    MOVE = "move"  # a placed file with the right sha256 left the lock under another path
    REMOVE = "remove"  # placed by sdprov, no longer locked
    FORGET = "forget"  # record of a placed file that is gone or was changed by someone
    CONFLICT = "conflict"  # a file sdprov did not place is in the way


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    act: Act
    path: str
    entry: LockEntry | None = None
    origin: str | None = None  # MOVE: where the bytes are now
    reason: str = ""

    def describe(self) -> str:
        text = f"{self.act.value:<8} {self.path}"
        if self.origin:
            text += f" (from {self.origin})"
        if self.reason:
            text += f": {self.reason}"
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    actions: tuple[Action, ...]

    def of(self, *acts: Act) -> list[Action]:
        return [a for a in self.actions if a.act in acts]

    @property
    def download_bytes(self) -> int:
        return sum(a.entry.size for a in self.of(Act.DOWNLOAD) if a.entry)

    @property
    def changes(self) -> list[Action]:
        return [a for a in self.actions if a.act is not Act.KEEP]


def stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def plan(lock: Lockfile, root: Path, state: State) -> Plan:
    actions: list[Action] = []
    locked = lock.by_path()
    # Placed files that left the lock, intact: candidates to move instead of re-downloading.
    leaving: dict[str, list[str]] = {}  # sha256 -> placed paths leaving the lock
    for path, placed in sorted(state.placed.items()):
        if path in locked:
            continue
        stat = stat_or_none(root / path)
        if stat is None:
            actions.append(Action(act=Act.FORGET, path=path, reason="already gone"))
        elif not placed.matches(stat):
            actions.append(
                Action(
                    act=Act.FORGET,
                    path=path,
                    reason="changed since sdprov placed it; left in place",
                )
            )
        else:
            leaving.setdefault(placed.sha256, []).append(path)
    moved_from: set[str] = set()
    for entry in sorted(lock.models, key=lambda m: m.sort_key):
        actions.append(_plan_entry(entry, root, state, leaving, moved_from))
    for path in sorted({p for paths in leaving.values() for p in paths} - moved_from):
        actions.append(Action(act=Act.REMOVE, path=path, reason="no longer in the lock"))
    return Plan(actions=tuple(actions))


def _plan_entry(
    entry: LockEntry,
    root: Path,
    state: State,
    leaving: dict[str, list[str]],
    moved_from: set[str],
) -> Action:
    placed = state.placed.get(entry.path)
    stat = stat_or_none(root / entry.path)
    if stat is None:
        for origin in leaving.get(entry.sha256, []):
            if origin not in moved_from:
                moved_from.add(origin)
                return Action(act=Act.MOVE, path=entry.path, entry=entry, origin=origin)
        return Action(act=Act.DOWNLOAD, path=entry.path, entry=entry, reason="missing")
    if placed is not None and placed.sha256 == entry.sha256 and placed.matches(stat):
        return Action(act=Act.KEEP, path=entry.path, entry=entry)
    if stat.st_size == entry.size:
        return Action(act=Act.VERIFY, path=entry.path, entry=entry, reason="hash the file there")
    if placed is not None:
        reason = "lock changed" if placed.sha256 != entry.sha256 else "changed on disk"
        return Action(act=Act.DOWNLOAD, path=entry.path, entry=entry, reason=reason)
    return Action(
        act=Act.CONFLICT,
        path=entry.path,
        entry=entry,
        reason=f"a file sdprov did not place is there ({stat.st_size} bytes, locked "
        f"{entry.size}); move it away or give the entry another `name:`",
    )
