"""`sdprov plan --models-root DIR`: the lock against a models folder, as the same plan the
lock-vs-lock diff gives. The classification is sync's own (`provision.sync.plan`), so the
plan shows exactly what `sdprov sync` would do; nothing is hashed or changed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from provision.kinds import Kind
from provision.lock.diff import Change, LockPlan, PlanItem, Side, compat_warnings, item, side_of
from provision.lock.lockfile import Lockfile
from provision.sync.plan import Act, Action, plan
from provision.sync.state import State


def diff_root(lock: Lockfile, root: Path, *, lockfile: str) -> LockPlan:
    state = State(root)
    items: list[PlanItem] = []
    warnings: list[str] = []
    for action in plan(lock, root, state).actions:
        converted = _convert(action, state, root)
        if converted is not None:
            items.append(converted)
        if action.act is Act.FORGET:
            warnings.append(f"{action.path}: {action.reason}")
    return LockPlan(
        lockfile=lockfile,
        base=str(root),
        items=tuple(items),
        warnings=(*compat_warnings(lock), *warnings),
    )


def _convert(action: Action, state: State, root: Path) -> PlanItem | None:
    entry = action.entry
    if action.act is Act.REMOVE:
        placed = state.placed.get(action.path)
        old = Side(
            path=action.path, sha256=placed.sha256 if placed else "", size=_size(root, action.path)
        )
        kind = next((k.value for k in Kind if action.path.startswith(f"{k.folder}/")), "")
        return PlanItem(change=Change.REMOVED, name=Path(action.path).stem, kind=kind,
                        family="", old=old, new=None)  # fmt: skip
    if entry is None:
        return None  # FORGET: a record of a file that is gone; reported as a warning
    new = side_of(entry)
    if action.act is Act.KEEP:
        return item(Change.UNCHANGED, entry, new, new)
    if action.act is Act.MOVE:
        assert action.origin is not None
        old = Side(path=action.origin, sha256=entry.sha256, size=entry.size)
        return item(Change.MOVED, entry, old, new)
    if action.act is Act.VERIFY:
        return item(Change.ADOPT, entry, None, new)
    if action.act is Act.CONFLICT:
        conflict = item(Change.CONFLICT, entry, None, new)
        return replace(conflict, note=action.reason)
    placed = state.placed.get(entry.path)
    if placed is None:
        return item(Change.ADDED, entry, None, new)
    old = Side(path=entry.path, sha256=placed.sha256, size=placed.size)
    return replace(item(Change.CHANGED, entry, old, new), note=action.reason)


def _size(root: Path, path: str) -> int:
    try:
        return (root / path).stat().st_size
    except OSError:
        return 0
