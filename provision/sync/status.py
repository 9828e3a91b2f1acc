"""`status`: what is missing, modified or extra in a models root, against the lock.

Trusts the state's size + mtime like sync does (the same classification, provision.sync.
classify); hashes only files whose record no longer matches (or that were never recorded), so a
clean root is checked without reading models. `verify` re-hashes every placed file too.
"""

from __future__ import annotations

import enum
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import SdprovError
from provision.inspection import inspect_file
from provision.kinds import KIND_EXTENSIONS, Kind
from provision.lock.lockfile import Lockfile
from provision.sync.classify import EntryClass, Found, Leaving, classify, link_target
from provision.sync.download import sha256_file
from provision.sync.state import STATE_DIR, State


class Condition(enum.StrEnum):
    OK = "ok"
    MISSING = "missing"
    MODIFIED = "modified"  # content differs from the lock
    UNTRACKED = "untracked"  # right bytes, but not placed by sdprov yet (sync adopts it)
    EXTRA = "extra"  # a model file in a kind folder that the lock does not list
    SYMLINK = "symlink"  # a symlink in the models root: shown, never followed


DRIFT = frozenset({Condition.MISSING, Condition.MODIFIED, Condition.EXTRA, Condition.SYMLINK})


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusRow:
    path: str
    condition: Condition
    kind: str
    base: str
    placed_by_sdprov: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.condition.value,
            "kind": self.kind,
            "base": self.base,
            "placed_by_sdprov": self.placed_by_sdprov,
            "detail": self.detail,
        }


def status_rows(
    lock: Lockfile, root: Path, *, verify: bool = False, jobs: int | None = None
) -> list[StatusRow]:
    """`verify`: re-hash the files the state vouches for too (bit rot on a NAS)."""
    state = State(root)
    found = classify(lock, root, state)
    hashed = {Found.UNVERIFIED} | ({Found.OK} if verify else set())
    digests = hash_files([root / c.entry.path for c in found.entries if c.found in hashed], jobs)
    rows = [_entry_row(c, root, digests) for c in found.entries]
    leaving = {c.path: c for c in found.leaving}
    locked = lock.by_path()
    for path, link in _model_files(root):
        if path in locked:
            continue
        if link:
            rows.append(_symlink_row(root, path, path in state.placed))
            continue
        kind, family = _inspect(root / path)
        detail = "not managed by sdprov"
        if path in leaving:
            detail = (
                "changed since sdprov placed it; left in place"
                if leaving[path].leaving is Leaving.CHANGED
                else "placed by sdprov, no longer locked"
            )
        rows.append(
            StatusRow(
                path=path,
                condition=Condition.EXTRA,
                kind=kind,
                base=family,
                placed_by_sdprov=path in state.placed,
                detail=detail,
            )
        )
    return rows


def _entry_row(c: EntryClass, root: Path, digests: dict[Path, str]) -> StatusRow:
    entry = c.entry
    ours = c.placed is not None
    condition, detail = Condition.MODIFIED, ""
    if c.found is Found.SYMLINK:
        assert c.symlink is not None
        return _symlink_row(root, c.symlink, ours, kind=entry.kind.value, base=entry.base.value)
    if c.found is Found.MISSING:
        condition = Condition.MISSING
    elif c.found is Found.TO_MOVE:
        condition, detail = Condition.MISSING, f"`sdprov sync` moves it from {c.origin}"
    elif c.found is Found.WRONG_SIZE:
        detail = f"{c.size_on_disk} bytes, locked {entry.size}"
    else:
        digest = digests.get(root / entry.path)
        same = digest is None or digest == entry.sha256  # None: trusted (OK, not verifying)
        vouched = c.placed is not None and c.placed.sha256 == entry.sha256
        if same and c.found is Found.OK:
            condition, detail = Condition.OK, "re-hashed" if digest else ""
        elif same and vouched:
            condition, detail = Condition.OK, "touched (mtime changed), content verified"
        elif same:
            condition, detail = Condition.UNTRACKED, "right bytes; `sdprov sync` adopts it"
        elif c.found is Found.OK:
            detail = (
                "sha256 differs from the lock although size and mtime did not change (bit rot?)"
            )
        else:
            detail = "sha256 differs from the lock"
    return StatusRow(
        path=entry.path,
        condition=condition,
        kind=entry.kind.value,
        base=entry.base.value,
        placed_by_sdprov=ours and condition is not Condition.MISSING,
        detail=detail,
    )


def _symlink_row(root: Path, path: str, ours: bool, kind: str = "-", base: str = "") -> StatusRow:
    return StatusRow(
        path=path,
        condition=Condition.SYMLINK,
        kind=kind,
        base=base,
        placed_by_sdprov=ours,
        detail=f"symlink to {link_target(root, path)}; not followed",
    )


def hash_files(paths: list[Path], jobs: int | None = None) -> dict[Path, str]:
    """sha256 of each file, several at once: hashlib releases the GIL on large updates."""
    if not paths:
        return {}
    workers = max(1, min(len(paths), jobs or os.cpu_count() or 2))
    if workers == 1:
        return {p: sha256_file(p) for p in paths}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sdprov-hash") as pool:
        return dict(zip(paths, pool.map(sha256_file, paths), strict=True))


def _inspect(path: Path) -> tuple[str, str]:
    """Kind and family of a file the lock does not describe, from its header (cheap)."""
    try:
        report = inspect_file(path)
    except SdprovError:
        return "unreadable", ""
    kind = f"{report.kind}/{report.variant}" if report.variant else report.kind
    return kind, report.family


def _model_files(root: Path) -> list[tuple[str, bool]]:
    """(path, is a symlink) of what WebUI would load from the kind folders; links not followed."""
    found: list[tuple[str, bool]] = []
    for kind in Kind:
        folder = root / kind.folder
        if folder.is_symlink():
            found.append((kind.folder, True))
            continue
        if not folder.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
            here = Path(dirpath)
            dirnames[:] = [d for d in dirnames if d != STATE_DIR]
            for name in dirnames:
                if (here / name).is_symlink():
                    found.append(((here / name).relative_to(root).as_posix(), True))
            for name in filenames:
                rel = (here / name).relative_to(root).as_posix()
                if (here / name).is_symlink():
                    found.append((rel, True))
                elif Path(name).suffix.lower() in KIND_EXTENSIONS[kind]:
                    found.append((rel, False))
    return sorted(found)
