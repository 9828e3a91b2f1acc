"""Seed WebUI's sha256 cache from the lock, so WebUI never re-reads multi-GB files to hash them.

Formats (reference/webui-formats.md §3; A1111 `modules/cache.py`, `modules/hashes.py`):

- ≤1.8: one JSON file, `<data-dir>/cache.json` (env `SD_WEBUI_CACHE_FILE`), shape
  `{subsection: {key: {"mtime": float, "sha256": hex}}}`. WebUI loads it once and rewrites the
  whole file from memory after its next hash, so it must be written while WebUI is stopped.
- 1.9+: diskcache, `<data-dir>/cache/<subsection>` (env `SD_WEBUI_CACHE_DIR`), opened with the
  same library and options WebUI uses; read through SQLite on every lookup, so a running WebUI
  sees new entries.

Keys: `hashes/checkpoint/<path under the ckpt dir>`, `hashes-addnet/lora/<stem>` (safetensors
LoRA: sha256 of the bytes after the header, "addnet"), `hashes/lora/<stem>` (pickle LoRA: full
sha256), `hashes/textual_inversion/<stem>`, `hashes/hypernet/<stem>`. VAEs share one key
("vae") for whichever was loaded last, so they are not seeded.

Validity (`hashes.sha256_from_cache`): WebUI recomputes when `getmtime(file) > cached["mtime"]`;
we store the file's st_mtime read at seeding time, after sync placed it.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Final

import diskcache

from provision.kinds import Kind
from provision.lock.lockfile import LockEntry, Lockfile, write_text_atomic
from provision.webui.client import WebuiClient
from provision.webui.errors import CacheBusyError, WebuiAuthError, WebuiError
from provision.webui.verify import expected_name

log = logging.getLogger(__name__)

CHUNK: Final = 1024 * 1024
# Exactly WebUI's `modules/cache.py make_cache` options: another size_limit or min file size
# would be written into the cache's Settings table and change how WebUI's own writes behave.
DISKCACHE_OPTIONS: Final[dict[str, int]] = {"size_limit": 2**32, "disk_min_file_size": 2**18}
# Route added in A1111 1.9.1; its absence means a WebUI that may still own cache.json.
DISKCACHE_ERA_ROUTE: Final = "/sdapi/v1/schedulers"


class CacheFormat(enum.StrEnum):
    JSON = "json"
    DISKCACHE = "diskcache"


ALL_FORMATS: Final[tuple[CacheFormat, ...]] = (CacheFormat.JSON, CacheFormat.DISKCACHE)

# Cache key prefix per kind (the title WebUI passes to hashes.sha256).
_KEY_PREFIX: Final[dict[Kind, str]] = {
    Kind.CHECKPOINT: "checkpoint",
    Kind.LORA: "lora",
    Kind.EMBEDDING: "textual_inversion",
    Kind.HYPERNETWORK: "hypernet",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedEntry:
    kind: Kind
    path: str
    subsection: str
    key: str
    sha256: str
    mtime: float

    @property
    def value(self) -> dict[str, Any]:
        return {"mtime": self.mtime, "sha256": self.sha256}

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "path": self.path,
            "subsection": self.subsection,
            "key": self.key,
            "sha256": self.sha256,
            "mtime": self.mtime,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedSkip:
    path: str
    kind: Kind
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind.value, "reason": self.reason}


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedReport:
    formats: tuple[CacheFormat, ...]
    cache_file: Path | None  # written when JSON is among the formats
    cache_dir: Path | None  # written when DISKCACHE is among the formats
    entries: tuple[SeedEntry, ...]
    skipped: tuple[SeedSkip, ...]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "formats": [f.value for f in self.formats],
            "cache_file": str(self.cache_file) if self.cache_file else None,
            "cache_dir": str(self.cache_dir) if self.cache_dir else None,
            "entries": [e.to_json() for e in self.entries],
            "skipped": [s.to_json() for s in self.skipped],
            "notes": list(self.notes),
        }


def addnet_hash(path: Path) -> str:
    """sha256 of a safetensors file's tensor data: bytes [8 + N, EOF), N = u64 LE header size."""
    with path.open("rb") as fh:
        return _lora_hashes(fh)[1]


def _lora_hashes(fh: BinaryIO) -> tuple[str, str]:
    """(full sha256, addnet sha256) in one streaming pass, flat memory."""
    full, addnet = hashlib.sha256(), hashlib.sha256()
    head = fh.read(8)
    if len(head) != 8:
        raise ValueError("shorter than a safetensors header")
    full.update(head)
    remaining = int.from_bytes(head, "little")
    while remaining:
        chunk = fh.read(min(CHUNK, remaining))
        if not chunk:
            raise ValueError("header length runs past the end of the file")
        full.update(chunk)
        remaining -= len(chunk)
    while chunk := fh.read(CHUNK):
        full.update(chunk)
        addnet.update(chunk)
    return full.hexdigest(), addnet.hexdigest()


def cache_entries(lock: Lockfile, models_root: Path) -> tuple[list[SeedEntry], list[SeedSkip]]:
    """What to write for each locked model, from the lock and the file's own mtime.

    A file that is absent or whose size differs from the lock is skipped: we only vouch for a
    hash when the bytes are the locked ones. LoRAs are read once (they are small) to compute the
    addnet hash, and that pass also checks their full sha256 against the lock.
    """
    entries: list[SeedEntry] = []
    skipped: list[SeedSkip] = []
    for entry in sorted(lock.models, key=lambda m: m.sort_key):
        try:
            entries.append(_entry_for(entry, models_root))
        except _Skip as skip:
            skipped.append(SeedSkip(path=entry.path, kind=entry.kind, reason=str(skip)))
    return entries, skipped


class _Skip(Exception):
    pass


def _entry_for(entry: LockEntry, models_root: Path) -> SeedEntry:
    if entry.kind is Kind.VAE:
        raise _Skip("WebUI keeps one shared `vae` cache key for the VAE loaded last; not seeded")
    if entry.kind not in _KEY_PREFIX:
        raise _Skip(f"WebUI keeps no sha256 cache for {entry.kind.value}s; nothing to seed")
    name, why = expected_name(entry)
    if name is None:
        raise _Skip(f"WebUI would not list it ({why})")
    path = models_root / entry.path
    try:
        st = path.stat()
    except FileNotFoundError:
        raise _Skip("not on disk (run `sdprov sync` first)") from None
    if st.st_size != entry.size:
        raise _Skip(f"size {st.st_size} differs from the lock's {entry.size}")
    sha, subsection = entry.sha256, "hashes"
    if entry.kind is Kind.LORA and PurePosixPath(entry.path).suffix.lower() == ".safetensors":
        try:
            with path.open("rb") as fh:
                full, sha = _lora_hashes(fh)
        except ValueError as exc:
            raise _Skip(f"not a readable safetensors file: {exc}") from None
        if full != entry.sha256:
            raise _Skip("content differs from the lock's sha256")
        subsection = "hashes-addnet"
        # The mtime must be the one of the bytes we hashed: re-stat after reading.
        st = path.stat()
    return SeedEntry(
        kind=entry.kind,
        path=entry.path,
        subsection=subsection,
        key=f"{_KEY_PREFIX[entry.kind]}/{name}",
        sha256=sha,
        mtime=st.st_mtime,
    )


def cache_locations(
    data_dir: Path, cache_file: Path | None = None, cache_dir: Path | None = None
) -> tuple[Path, Path]:
    """Where WebUI looks: explicit paths, else its env vars, else under the data dir."""
    env_file = os.environ.get("SD_WEBUI_CACHE_FILE")
    env_dir = os.environ.get("SD_WEBUI_CACHE_DIR")
    return (
        cache_file or (Path(env_file) if env_file else data_dir / "cache.json"),
        cache_dir or (Path(env_dir) if env_dir else data_dir / "cache"),
    )


def running_webui_owning_json(url: str, auth: tuple[str, str] | None = None) -> str | None:
    """Why we must not write cache.json now, or None. See docs/decisions.md for the rule.

    A WebUI answering at `url` is taken to own cache.json unless it has the 1.9.1+ route
    (`/sdapi/v1/schedulers`): those versions keep hashes in diskcache and read cache.json only
    at a first start. Under --api-auth without credentials the version cannot be told, so a
    running WebUI is assumed to be old.
    """
    with WebuiClient(url, auth) as client:
        if not client.probe():
            return None
        try:
            if client.has_route(DISKCACHE_ERA_ROUTE):
                return None
        except WebuiAuthError:
            return f"a WebUI answers at {client.url} (version unknown: it asks for credentials)"
        except WebuiError:
            pass
        return f"a WebUI older than 1.9.1 answers at {client.url}"


def seed_cache(
    lock: Lockfile,
    models_root: Path,
    data_dir: Path,
    *,
    formats: Iterable[CacheFormat] = ALL_FORMATS,
    webui_url: str | None = None,
    webui_auth: tuple[str, str] | None = None,
    force: bool = False,
    cache_file: Path | None = None,
    cache_dir: Path | None = None,
) -> SeedReport:
    """Write the sha256 of every locked checkpoint, LoRA, embedding and hypernetwork.

    Refuses (`CacheBusyError`) to write cache.json when `webui_url` answers as a WebUI < 1.9.1,
    when WebUI's own temp file `cache.json-` exists (a dump in progress), or when cache.json
    changes while we merge; `force=True` skips the first two checks, never the third.
    """
    chosen = tuple(dict.fromkeys(CacheFormat(f) for f in formats))
    json_path, disk_dir = cache_locations(data_dir, cache_file, cache_dir)
    notes: list[str] = []
    if CacheFormat.JSON in chosen and not force:
        in_progress = json_path.with_name(json_path.name + "-")
        if in_progress.exists():
            raise CacheBusyError(str(json_path), f"WebUI's temp file {in_progress} exists")
        if webui_url is not None:
            why = running_webui_owning_json(webui_url, webui_auth)
            if why is not None:
                raise CacheBusyError(str(json_path), why)
    entries, skipped = cache_entries(lock, models_root)
    if CacheFormat.DISKCACHE in chosen:
        if not disk_dir.exists() and json_path.is_file():
            # WebUI 1.9+ converts cache.json only when cache/ does not exist; creating cache/
            # ourselves would make it skip that, so carry the old entries over as it would.
            _convert_json(json_path, disk_dir)
            notes.append(f"carried the entries of {json_path} over into {disk_dir}")
        write_diskcache(disk_dir, entries)
    if CacheFormat.JSON in chosen:
        write_json_cache(json_path, entries)
    for skip in skipped:
        log.info("not seeding %s: %s", skip.path, skip.reason)
    return SeedReport(
        formats=chosen,
        cache_file=json_path if CacheFormat.JSON in chosen else None,
        cache_dir=disk_dir if CacheFormat.DISKCACHE in chosen else None,
        entries=tuple(entries),
        skipped=tuple(skipped),
        notes=tuple(notes),
    )


def open_diskcache(directory: Path) -> diskcache.Cache:
    return diskcache.Cache(str(directory), **DISKCACHE_OPTIONS)


def write_diskcache(cache_dir: Path, entries: Iterable[SeedEntry]) -> None:
    grouped: dict[str, list[SeedEntry]] = defaultdict(list)
    for entry in entries:
        grouped[entry.subsection].append(entry)
    for subsection, items in grouped.items():
        with open_diskcache(cache_dir / subsection) as cache:
            for item in items:
                cache[item.key] = item.value  # a dict, pickled by diskcache as WebUI stores it


def _convert_json(json_path: Path, cache_dir: Path) -> None:
    data = _read_json_cache(json_path)
    for subsection, values in data.items():
        if isinstance(values, dict):
            with open_diskcache(cache_dir / subsection) as cache:
                for key, value in values.items():
                    cache[key] = value


def _read_json_cache(json_path: Path) -> dict[str, Any]:
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebuiError(
            f"{json_path} is not valid JSON ({exc}); not touching it",
            hint="move it aside (WebUI would discard it too) and run seed-cache again",
        ) from None
    if not isinstance(data, dict):
        raise WebuiError(f"{json_path} is not a JSON object; not touching it")
    return data


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def write_json_cache(json_path: Path, entries: Iterable[SeedEntry]) -> None:
    """Merge our entries into cache.json, keep every other key, replace the file atomically."""
    before = _signature(json_path)
    data = _read_json_cache(json_path)
    for entry in entries:
        section = data.get(entry.subsection)
        if not isinstance(section, dict):
            section = data[entry.subsection] = {}
        section[entry.key] = entry.value
    # Same layout WebUI dumps (indent 4, non-ASCII kept), so diffs of the file stay readable.
    text = json.dumps(data, indent=4, ensure_ascii=False)
    if _signature(json_path) != before:
        raise CacheBusyError(str(json_path), "it changed while sdprov was merging into it")
    write_text_atomic(json_path, text)


def read_back(json_path: Path | None, cache_dir: Path | None, entry: SeedEntry) -> dict[str, Any]:
    """The entry as WebUI would read it (tests and `--verify`-style checks use this)."""
    if cache_dir is not None:
        with open_diskcache(cache_dir / entry.subsection) as cache:
            value = cache.get(entry.key)
    elif json_path is not None:
        value = _read_json_cache(json_path).get(entry.subsection, {}).get(entry.key)
    else:
        value = None
    return value if isinstance(value, dict) else {}
