"""The no-op resync, answered without reading the lock: `.sdprov/settled.json`.

A sync that ended with every locked model in place and every card written records the
digests of the bytes it acted on: the lock, the manifest it was fresh against, and the
state it left. The next sync whose lock and manifest bytes still hash to those, and whose
state file is still the one it left, has nothing to resolve, plan or verify: it only checks
that every file it placed still has its recorded size and mtime (one `lstat` each, what a
`find -printf %s` walk costs). Anything else (a changed byte in either file, a state another
writer saved, a moved or touched model, a shard worker's records) takes the full path.

Typing a 10,000-entry lock is most of a no-op's time and memory; hashing its bytes is not.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from provision.lock.lockfile import sha256_bytes, write_text_atomic
from provision.sync.state import STATE_DIR, shards_dir

SETTLED_VERSION: Final = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Inputs:
    """The bytes a sync acts on: the lock, and the manifest when it was given one."""

    lock_sha256: str
    manifest_sha256: str | None

    @classmethod
    def read(cls, lock_path: Path, manifest_path: Path | None) -> Inputs | None:
        try:
            lock = _sha256_of(lock_path)
            manifest = _sha256_of(manifest_path) if manifest_path is not None else None
        except OSError:
            return None  # the full path reports it
        return cls(lock_sha256=lock, manifest_sha256=manifest)


def _file(root: Path) -> Path:
    return root / STATE_DIR / "settled.json"


def _sha256_of(path: Path) -> str:
    return sha256_bytes(path.read_bytes())


def record(root: Path, inputs: Inputs) -> None:
    """After a complete sync, under its lease: what the next one may trust."""
    state = root / STATE_DIR / "state.json"
    try:
        state_sha = _sha256_of(state)
    except FileNotFoundError:
        state_sha = None
    raw = {
        "version": SETTLED_VERSION,
        "lock_sha256": inputs.lock_sha256,
        "manifest_sha256": inputs.manifest_sha256,
        "state_sha256": state_sha,
    }
    write_text_atomic(_file(root), json.dumps(raw, sort_keys=True) + "\n")


def is_recorded(root: Path) -> bool:
    return _file(root).is_file()


def forget(root: Path) -> None:
    """Before a sync changes anything: a crash half-way must not leave a stale promise."""
    _file(root).unlink(missing_ok=True)


def unchanged(root: Path, inputs: Inputs) -> list[str] | None:
    """The placed models, all still in place, when nothing can have changed since the last
    complete sync; None when the full sync must decide. Call under the writer lease."""
    try:
        settled: dict[str, Any] = json.loads(_file(root).read_text(encoding="utf-8"))
        if settled.get("version") != SETTLED_VERSION:
            return None
        if (settled.get("lock_sha256"), settled.get("manifest_sha256")) != (
            inputs.lock_sha256,
            inputs.manifest_sha256,
        ):
            return None
        if any(shards_dir(root).glob("*.json")):
            return None  # shard workers' records wait to be folded in
        state_bytes = (root / STATE_DIR / "state.json").read_bytes()
        if sha256_bytes(state_bytes) != settled.get("state_sha256"):
            return None
        state: dict[str, Any] = json.loads(state_bytes)
        placed: dict[str, dict[str, Any]] = state["placed"]
        for path, rec in placed.items():
            st = os.lstat(root / path)
            if not stat.S_ISREG(st.st_mode):
                return None  # a symlink now: the full sync refuses to follow it
            if st.st_size != rec["size"] or st.st_mtime_ns != rec["mtime_ns"]:
                return None
        for path in state.get("sidecars") or {}:
            os.lstat(root / path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, unreadable or odd: the full sync knows what to say
    return list(placed)
