"""The per-shard record files under `<root>/.sdprov/shards/`: one writer each, read by all.

Each shard worker replaces its own file atomically after every placement (a rename, atomic on
NFS), so N workers never race on one file and a reader sees either the old or the new record
set. The file also carries the worker's share and progress, which `sdprov status` shows.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from provision.lock.lockfile import write_text_atomic
from provision.sync.state import Placed, owner_fields, shards_dir

log = logging.getLogger(__name__)

SHARD_VERSION: Final = 1
ABANDONED_AFTER: Final = 3600.0  # a shard silent this long (on another host) died


def write_shard_file(file: Path, mine: Mapping[str, Placed], meta: Mapping[str, object]) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    raw = {
        "version": SHARD_VERSION,
        **meta,
        **owner_fields(),
        "placed": {
            p: {"sha256": r.sha256, "size": r.size, "mtime_ns": r.mtime_ns}
            for p, r in sorted(mine.items())
        },
    }
    write_text_atomic(file, json.dumps(raw, indent=1, sort_keys=True) + "\n")


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardProgress:
    """One shard worker's progress as its record file says."""

    shard: str  # "I/N"
    files: int  # its share
    bytes: int
    placed: int  # files it placed so far
    placed_bytes: int
    finished: bool
    running: bool  # false: finished, or its process is gone

    def to_json(self) -> dict[str, object]:
        return {
            "shard": self.shard,
            "files": self.files,
            "bytes": self.bytes,
            "placed": self.placed,
            "placed_bytes": self.placed_bytes,
            "finished": self.finished,
            "running": self.running,
        }


def _read(file: Path) -> dict[str, Any] | None:
    try:
        raw: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or raw.get("version") != SHARD_VERSION:
        return None
    return raw


def _records(raw: dict[str, Any]) -> dict[str, Placed]:
    out: dict[str, Placed] = {}
    for path, r in dict(raw.get("placed") or {}).items():
        try:
            out[str(path)] = Placed(
                sha256=str(r["sha256"]), size=int(r["size"]), mtime_ns=int(r["mtime_ns"])
            )
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _alive(raw: dict[str, Any]) -> bool:
    if raw.get("finished"):
        return False
    if raw.get("host") == socket.gethostname():
        try:
            os.kill(int(raw.get("pid", 0)), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError, OverflowError):
            return True
        return True
    return float(raw.get("updated", 0)) + ABANDONED_AFTER > time.time()


def read_shard_files(root: Path) -> list[tuple[Path, dict[str, Placed], bool]]:
    """(file, records, done) per shard file; done: finished, or its writer is gone."""
    folder = shards_dir(root)
    if not folder.is_dir():
        return []
    out = []
    for file in sorted(folder.glob("*.json")):
        raw = _read(file)
        if raw is None:
            log.warning("ignoring unreadable shard record %s", file)
            continue
        out.append((file, _records(raw), not _alive(raw)))
    return out


def shard_progress(root: Path) -> list[ShardProgress]:
    folder = shards_dir(root)
    if not folder.is_dir():
        return []
    rows = []
    for file in sorted(folder.glob("*.json")):
        raw = _read(file)
        if raw is None:
            continue
        records = _records(raw)
        rows.append(
            ShardProgress(
                shard=str(raw.get("shard", file.stem)),
                files=int(raw.get("share_files", 0)),
                bytes=int(raw.get("share_bytes", 0)),
                placed=len(records),
                placed_bytes=sum(r.size for r in records.values()),
                finished=bool(raw.get("finished")),
                running=_alive(raw),
            )
        )
    return rows
