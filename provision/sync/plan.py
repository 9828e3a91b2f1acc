"""The sync plan: lock vs state vs disk, decided without touching anything.

No network and no hashing: a recorded file whose size and mtime are unchanged is trusted.
`provision.sync.apply` carries the plan out.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from provision.lock.lockfile import LockEntry, Lockfile
from provision.sync.classify import Classification, EntryClass, Found, Leaving, classify
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
    placed_count: int = 0  # files sdprov had placed (state records) when planning

    @property
    def mass_removal(self) -> bool:
        """Removing every model sdprov placed, or more than half of them: ask for --prune."""
        removing = len(self.of(Act.REMOVE))
        return removing > 0 and 2 * removing > self.placed_count

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
    return plan_from(classify(lock, root, state))


def plan_from(found: Classification) -> Plan:
    actions: list[Action] = []
    for leaving in found.leaving:
        if leaving.leaving is not Leaving.INTACT:
            actions.append(
                Action(act=Act.FORGET, path=leaving.path, reason=_FORGET_REASONS[leaving.leaving])
            )
    actions.extend(_entry_action(c) for c in found.entries)
    actions.extend(
        Action(act=Act.REMOVE, path=c.path, reason="no longer in the lock") for c in found.to_remove
    )
    return Plan(actions=tuple(actions), placed_count=found.placed_count)


_FORGET_REASONS: Final = {
    Leaving.GONE: "already gone",
    Leaving.CHANGED: "changed since sdprov placed it; left in place",
    Leaving.SYMLINK: "a symlink is now on its path; left in place, not followed",
}


def _entry_action(c: EntryClass) -> Action:
    entry, placed = c.entry, c.placed
    if c.found is Found.OK:
        return Action(act=Act.KEEP, path=entry.path, entry=entry)
    if c.found is Found.MISSING:
        return Action(act=Act.DOWNLOAD, path=entry.path, entry=entry, reason="missing")
    if c.found is Found.TO_MOVE:
        return Action(act=Act.MOVE, path=entry.path, entry=entry, origin=c.origin)
    if c.found is Found.UNVERIFIED:
        return Action(act=Act.VERIFY, path=entry.path, entry=entry, reason="hash the file there")
    if c.found is Found.SYMLINK:
        return Action(
            act=Act.CONFLICT,
            path=entry.path,
            entry=entry,
            reason=f"{c.symlink} is a symlink; sdprov does not write through symlinks in the "
            "models root: replace it with a real folder or file",
        )
    if placed is not None:
        reason = "lock changed" if placed.sha256 != entry.sha256 else "changed on disk"
        return Action(act=Act.DOWNLOAD, path=entry.path, entry=entry, reason=reason)
    return Action(
        act=Act.CONFLICT,
        path=entry.path,
        entry=entry,
        reason=f"a file sdprov did not place is there ({c.size_on_disk} bytes, locked "
        f"{entry.size}); move it away or give the entry another `name:`",
    )
