"""`status`: what is missing, modified or extra in a models root, against the lock.

Trusts the state's size + mtime like sync does; hashes only files whose record no longer
matches (or that were never recorded), so a clean root is checked without reading models.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import SdprovError
from provision.inspection import inspect_file
from provision.kinds import KIND_EXTENSIONS, Kind
from provision.lock.lockfile import Lockfile
from provision.sync.download import sha256_file
from provision.sync.state import STATE_DIR, State


class Condition(enum.StrEnum):
    OK = "ok"
    MISSING = "missing"
    MODIFIED = "modified"  # content differs from the lock
    UNTRACKED = "untracked"  # right bytes, but not placed by sdprov yet (sync adopts it)
    EXTRA = "extra"  # a model file in a kind folder that the lock does not list


DRIFT = frozenset({Condition.MISSING, Condition.MODIFIED, Condition.EXTRA})


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


def status_rows(lock: Lockfile, root: Path) -> list[StatusRow]:
    state = State(root)
    rows: list[StatusRow] = []
    locked = lock.by_path()
    for entry in sorted(lock.models, key=lambda m: m.sort_key):
        target = root / entry.path
        placed = state.placed.get(entry.path)
        common = {"path": entry.path, "kind": entry.kind.value, "base": entry.base.value}
        try:
            stat = target.stat()
        except FileNotFoundError:
            rows.append(StatusRow(condition=Condition.MISSING, placed_by_sdprov=False, **common))
            continue
        if placed is not None and placed.sha256 == entry.sha256 and placed.matches(stat):
            rows.append(StatusRow(condition=Condition.OK, placed_by_sdprov=True, **common))
            continue
        if stat.st_size != entry.size:
            detail = f"{stat.st_size} bytes, locked {entry.size}"
            rows.append(
                StatusRow(
                    condition=Condition.MODIFIED,
                    placed_by_sdprov=placed is not None,
                    detail=detail,
                    **common,
                )
            )
            continue
        same = sha256_file(target) == entry.sha256
        if same and placed is not None and placed.sha256 == entry.sha256:
            condition, detail = Condition.OK, "touched (mtime changed), content verified"
        elif same:
            condition, detail = Condition.UNTRACKED, "right bytes; `sdprov sync` adopts it"
        else:
            condition, detail = Condition.MODIFIED, "sha256 differs from the lock"
        rows.append(
            StatusRow(
                condition=condition, placed_by_sdprov=placed is not None, detail=detail, **common
            )
        )
    for path in _model_files(root):
        if path in locked:
            continue
        kind, family = _inspect(root / path)
        rows.append(
            StatusRow(
                path=path,
                condition=Condition.EXTRA,
                kind=kind,
                base=family,
                placed_by_sdprov=path in state.placed,
                detail="placed by sdprov, no longer locked"
                if path in state.placed
                else "not managed by sdprov",
            )
        )
    return rows


def _inspect(path: Path) -> tuple[str, str]:
    """Kind and family of a file the lock does not describe, from its header (cheap)."""
    try:
        report = inspect_file(path)
    except SdprovError:
        return "unreadable", ""
    kind = f"{report.kind}/{report.variant}" if report.variant else report.kind
    return kind, report.family


def _model_files(root: Path) -> list[str]:
    """Files WebUI would load from the kind folders (relative POSIX paths)."""
    found: list[str] = []
    for kind in Kind:
        folder = root / kind.folder
        if not folder.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
            dirnames[:] = [d for d in dirnames if d != STATE_DIR]
            for name in filenames:
                if Path(name).suffix.lower() in KIND_EXTENSIONS[kind]:
                    found.append((Path(dirpath) / name).relative_to(root).as_posix())
    return sorted(found)
