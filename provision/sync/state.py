"""What sdprov placed under a models root: `<root>/.sdprov/state.json`.

A record (path → sha256, size, mtime_ns) is saved soon after each placement, so a second
sync trusts size + mtime instead of re-hashing multi-GB files, and only files with a record
are ever removed. Inside `batched()` saves are grouped (a whole-file rewrite per small model
made a thousand-file sync quadratic); a record not yet saved when the process dies only
costs a re-hash: the next run finds the file unrecorded and adopts it. The folder also holds
partial downloads and the writer lease; it carries a `.gitignore` and a `CACHEDIR.TAG` so Git
and backup tools skip it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from provision.lock.lockfile import write_text_atomic

log = logging.getLogger(__name__)

STATE_DIR: Final = ".sdprov"
STATE_VERSION: Final = 1
# Inside `batched()`: save at most this often, and at once for a file whose re-hash after a
# crash would cost more than the save (one save of a 10,000-entry state is ~20 ms).
SAVE_INTERVAL: Final = 1.0
SAVE_AT_ONCE_BYTES: Final = 64 << 20
CACHEDIR_TAG: Final = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This directory holds sdprov's state and partial downloads; backups may skip it.\n"
)


def crash_point(name: str) -> None:
    """Test hook for the crash-safety suite: `SDPROV_CRASH_AT=name:n` kills this process with
    SIGKILL the n-th time it reaches `name`. Inert (one environment lookup) unless set."""
    spec = os.environ.get("SDPROV_CRASH_AT")
    if not spec or spec.partition(":")[0] != name:
        return
    with _crash_lock:
        _crash_counts[name] = _crash_counts.get(name, 0) + 1
        if _crash_counts[name] >= int(spec.partition(":")[2] or 1):
            os.kill(os.getpid(), signal.SIGKILL)


_crash_lock = threading.Lock()
_crash_counts: dict[str, int] = {}


def lease_path(root: Path) -> Path:
    """The writer lease of a models root; take it before reading the state to change it."""
    return root / STATE_DIR / "lease"


@dataclass(frozen=True, slots=True, kw_only=True)
class Placed:
    sha256: str
    size: int
    mtime_ns: int

    def matches(self, stat: os.stat_result) -> bool:
        return stat.st_size == self.size and stat.st_mtime_ns == self.mtime_ns


def shards_dir(root: Path) -> Path:
    """Per-shard records: `<I>of<N>.json`, written only by that shard worker."""
    return root / STATE_DIR / "shards"


@dataclass(frozen=True, slots=True, kw_only=True)
class Sidecar:
    """A model card file sdprov wrote: its bytes' sha256, the model it belongs to, and the
    digest of the inputs it was made from (a changed input rewrites it, if still ours)."""

    model: str
    sha256: str
    inputs: str


class State:
    """Thread-safe record of placed files, saved atomically after every change (grouped
    inside `batched()`).

    N shard workers never write one file: a worker (`shard` given) saves only its own records
    to `.sdprov/shards/<I>of<N>.json`; everyone reads `state.json` merged with those, and the
    coordinating sync (no shard, under the writer lease) folds them into `state.json`.
    """

    def __init__(self, root: Path, *, shard: str | None = None) -> None:
        self.root = root
        self.dir = root / STATE_DIR
        self.file = self.dir / "state.json"
        self.partial_dir = self.dir / "partial"
        self.lease_file = lease_path(root)
        self.shard = shard
        self.shard_file = shards_dir(root) / f"{shard}.json" if shard else None
        self.shard_meta: dict[str, object] = {}  # what status shows: share size, progress
        self._lock = threading.Lock()
        self._mine: dict[str, Placed] = {}
        self._folded: list[Path] = []
        self._merged = False
        self._batching = 0
        self._dirty = False
        self._saved_at = time.monotonic()
        self.sidecars: dict[str, Sidecar] = {}
        self.placed: dict[str, Placed] = self._load()
        self._merge_shards()

    def _merge_shards(self) -> None:
        """Add the shard workers' records that still describe the file on disk."""
        from provision.sync.shardstate import read_shard_files

        for file, records, finished in read_shard_files(self.root):
            for path, rec in records.items():
                if self.placed.get(path) != rec and _matches_disk(self.root / path, rec):
                    self.placed[path] = rec
                    self._merged = True
            if finished and self.shard is None:
                self._folded.append(file)

    def _load(self) -> dict[str, Placed]:
        try:
            raw: dict[str, Any] = json.loads(self.file.read_text(encoding="utf-8"))
            if raw.get("version") != STATE_VERSION:
                raise ValueError(f"unknown state version {raw.get('version')!r}")
            self.sidecars = {
                path: Sidecar(
                    model=str(r["model"]), sha256=str(r["sha256"]), inputs=str(r["inputs"])
                )
                for path, r in (raw.get("sidecars") or {}).items()
            }
            return {
                path: Placed(
                    sha256=str(r["sha256"]), size=int(r["size"]), mtime_ns=int(r["mtime_ns"])
                )
                for path, r in raw["placed"].items()
            }
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Losing the record is safe: files get re-verified (hashed) and adopted, and
            # nothing unrecorded is ever removed.
            log.warning("ignoring unreadable %s (%s); files will be re-verified", self.file, exc)
            return {}

    def prepare(self) -> None:
        """Create `.sdprov/` with its markers (only when we are about to write)."""
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        for name, text in ((".gitignore", "*\n"), ("CACHEDIR.TAG", CACHEDIR_TAG)):
            marker = self.dir / name
            if not marker.exists():
                marker.write_text(text, encoding="utf-8")

    def record(self, path: str, sha256: str) -> Placed:
        stat = (self.root / path).stat()
        placed = Placed(sha256=sha256, size=stat.st_size, mtime_ns=stat.st_mtime_ns)
        crash_point("placed")  # in place, not yet recorded: the next run hashes and adopts it
        with self._lock:
            self.placed[path] = placed
            self._mine[path] = placed
            self._changed(at_once=stat.st_size >= SAVE_AT_ONCE_BYTES)
        return placed

    def forget(self, path: str) -> None:
        with self._lock:
            if self.placed.pop(path, None) is not None:
                self._changed()

    def record_sidecar(self, path: str, sidecar: Sidecar) -> None:
        with self._lock:
            self.sidecars[path] = sidecar
            self._changed()

    def forget_sidecar(self, path: str) -> None:
        with self._lock:
            if self.sidecars.pop(path, None) is not None:
                self._changed()

    @contextmanager
    def batched(self) -> Iterator[State]:
        """Group saves while many records change (a sync's downloads, its cards); whatever is
        pending is saved on the way out, on an error or Ctrl-C too."""
        with self._lock:
            self._batching += 1
        try:
            yield self
        finally:
            with self._lock:
                self._batching -= 1
                if not self._batching and self._dirty:
                    self._save()

    def _changed(self, *, at_once: bool = False) -> None:
        """Called under the lock after a change: save now, or soon when batching."""
        self._dirty = True
        if at_once or not self._batching or time.monotonic() - self._saved_at >= SAVE_INTERVAL:
            self._save()

    def _save(self) -> None:
        self._dirty = False
        self._saved_at = time.monotonic()
        if self.shard_file is not None:
            from provision.sync.shardstate import write_shard_file

            crash_point("state-save")
            write_shard_file(self.shard_file, self._mine, self.shard_meta)
            return
        raw: dict[str, Any] = {
            "version": STATE_VERSION,
            "placed": {
                p: {"sha256": r.sha256, "size": r.size, "mtime_ns": r.mtime_ns}
                for p, r in sorted(self.placed.items())
            },
        }
        if self.sidecars:
            # Additive: a reader that predates cards ignores the key (the version stays 1).
            raw["sidecars"] = {
                p: {"model": r.model, "sha256": r.sha256, "inputs": r.inputs}
                for p, r in sorted(self.sidecars.items())
            }
        crash_point("state-save")
        # No indent: json's C encoder only runs without one (10x faster for 10,000 records).
        text = json.dumps(raw, sort_keys=True, separators=(",", ":"))
        write_text_atomic(self.file, text + "\n")
        # Finished shards' records are in state.json now; their files can go.
        for folded in self._folded:
            folded.unlink(missing_ok=True)
        self._folded.clear()

    def finish_shard(self, **meta: object) -> None:
        """A shard worker's last write: its records, marked finished for the coordinator."""
        with self._lock:
            self.shard_meta.update(meta, finished=True)
            self._save()

    def save(self) -> None:
        """Write now if shard records are to be folded (or always, for a shard worker)."""
        with self._lock:
            if self.shard_file is not None or self._merged or self._folded:
                self._save()
                self._merged = False

    def reload_record(self, path: str) -> Placed | None:
        """The record of `path` as the files on disk say now (another worker may have placed it).

        A record found is remembered, so this run's next save keeps it."""
        found = State(self.root).placed.get(path)
        if found is not None:
            with self._lock:
                self.placed[path] = found
                self._merged = True
        return found

    def partial_path(self, sha256: str, path: str) -> Path:
        # Keyed by content and target: two entries with the same bytes (one VAE under two
        # names) download side by side without sharing a file.
        tag = hashlib.sha256(path.encode()).hexdigest()[:12]
        return self.partial_dir / f"{sha256}.{tag}"


def _matches_disk(path: Path, rec: Placed) -> bool:
    try:
        return rec.matches(path.stat())
    except OSError:
        return False


def owner_fields() -> dict[str, object]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "updated": time.time()}
