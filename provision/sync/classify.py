"""One classification of the lock against the disk and the state, shared by `sync` and `status`.

No network and no hashing: a recorded file whose size and mtime are unchanged is trusted, and
a file whose content can only be known by hashing is classed UNVERIFIED (sync hashes it and
adopts it; status hashes it and reports ok, untracked or modified). Symlinks planted in the
models root are classed, never followed: sdprov neither writes through them nor deletes what
they point at.
"""

from __future__ import annotations

import enum
import os
import stat as stat_mod
from dataclasses import dataclass
from pathlib import Path

from provision.lock.lockfile import LockEntry, Lockfile
from provision.sync.state import Placed, State


class Found(enum.StrEnum):
    """A locked entry against its target path."""

    OK = "ok"  # placed by sdprov, size and mtime as recorded: trusted without hashing
    MISSING = "missing"
    TO_MOVE = "to-move"  # missing here; a placed file with these bytes left the lock elsewhere
    UNVERIFIED = "unverified"  # the locked size, but not recorded as these bytes: hash to know
    WRONG_SIZE = "wrong-size"  # a file of another size is there (modified, or someone else's)
    SYMLINK = "symlink"  # the path or a folder on it is a symlink: never written through


class Leaving(enum.StrEnum):
    """A file sdprov placed whose path the lock no longer lists."""

    INTACT = "intact"  # the exact bytes sdprov placed: removed (or moved to a new path)
    GONE = "gone"  # placed, then deleted by someone: the record is dropped
    CHANGED = "changed"  # changed by someone since placed: left in place, record dropped
    SYMLINK = "symlink"  # a symlink is now on its path: left alone, record dropped


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryClass:
    entry: LockEntry
    found: Found
    placed: Placed | None  # the state's record for this path
    size_on_disk: int | None = None
    origin: str | None = None  # TO_MOVE: the placed path holding the bytes
    symlink: str | None = None  # SYMLINK: the link on the path (relative to the root)


@dataclass(frozen=True, slots=True, kw_only=True)
class LeavingClass:
    path: str
    leaving: Leaving
    placed: Placed
    moved_to: str | None = None  # INTACT and reused by a TO_MOVE entry


@dataclass(frozen=True, slots=True, kw_only=True)
class Classification:
    entries: tuple[EntryClass, ...]  # sorted by (kind, path)
    leaving: tuple[LeavingClass, ...]  # sorted by path

    placed_count: int  # state records when classified

    @property
    def to_remove(self) -> list[LeavingClass]:
        return [c for c in self.leaving if c.leaving is Leaving.INTACT and c.moved_to is None]


def classify(lock: Lockfile, root: Path, state: State) -> Classification:
    locked = lock.by_path()
    disk = _Disk(root)
    leaving: dict[str, LeavingClass] = {}
    intact_by_sha: dict[str, list[str]] = {}
    for path, placed in sorted(state.placed.items()):
        if path in locked:
            continue
        kind = _leaving_kind(disk, path, placed)
        leaving[path] = LeavingClass(path=path, leaving=kind, placed=placed)
        if kind is Leaving.INTACT:
            intact_by_sha.setdefault(placed.sha256, []).append(path)
    entries: list[EntryClass] = []
    for entry in sorted(lock.models, key=lambda m: m.sort_key):
        found = _classify_entry(entry, disk, state, intact_by_sha)
        if found.origin is not None:
            leaving[found.origin] = LeavingClass(
                path=found.origin,
                leaving=Leaving.INTACT,
                placed=leaving[found.origin].placed,
                moved_to=entry.path,
            )
        entries.append(found)
    return Classification(
        entries=tuple(entries),
        leaving=tuple(leaving[p] for p in sorted(leaving)),
        placed_count=len(state.placed),
    )


class _Disk:
    """lstat of the models root for one classification: each folder once, not once per file
    in it (a 10,000-model resync is a stat per file, like `find`), on plain strings."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self._folders: dict[str, os.stat_result | None] = {}

    def lstat(self, rel: str) -> os.stat_result | None:
        try:
            return os.lstat(f"{self.root}/{rel}")
        except (FileNotFoundError, NotADirectoryError):
            return None

    def symlink_on_path(self, rel: str) -> tuple[str | None, os.stat_result | None]:
        """The first component of `rel` that is a symlink (None: none), and the file's lstat."""
        parts = rel.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            if folder not in self._folders:
                self._folders[folder] = self.lstat(folder)
            stat = self._folders[folder]
            if stat is None:
                return None, None
            if stat_mod.S_ISLNK(stat.st_mode):
                return folder, None
        stat = self.lstat(rel)
        if stat is not None and stat_mod.S_ISLNK(stat.st_mode):
            return rel, None
        return None, stat


def _leaving_kind(disk: _Disk, path: str, placed: Placed) -> Leaving:
    link, stat = disk.symlink_on_path(path)
    if link is not None:
        return Leaving.SYMLINK
    if stat is None:
        return Leaving.GONE
    return Leaving.INTACT if placed.matches(stat) else Leaving.CHANGED


def _classify_entry(
    entry: LockEntry, disk: _Disk, state: State, intact_by_sha: dict[str, list[str]]
) -> EntryClass:
    placed = state.placed.get(entry.path)
    link, stat = disk.symlink_on_path(entry.path)
    if link is not None:
        return EntryClass(entry=entry, found=Found.SYMLINK, placed=placed, symlink=link)
    if stat is None:
        candidates = intact_by_sha.get(entry.sha256, [])
        if candidates:
            origin = candidates.pop(0)
            return EntryClass(entry=entry, found=Found.TO_MOVE, placed=placed, origin=origin)
        return EntryClass(entry=entry, found=Found.MISSING, placed=placed)
    if placed is not None and placed.sha256 == entry.sha256 and placed.matches(stat):
        found = Found.OK
    elif stat.st_size == entry.size:
        found = Found.UNVERIFIED
    else:
        found = Found.WRONG_SIZE
    return EntryClass(entry=entry, found=found, placed=placed, size_on_disk=stat.st_size)


def lstat_or_none(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None


def symlink_on_path(root: Path, rel: str) -> str | None:
    """The first component of `rel` (a kind folder, a subfolder, the file) that is a symlink."""
    return _Disk(root).symlink_on_path(rel)[0]


def link_target(root: Path, rel: str) -> str:
    try:
        return str((root / rel).readlink())
    except OSError:
        return "?"
