"""Read a safetensors header: 8 bytes of little-endian length, then that many bytes of JSON.

Only the header is read, whatever the file's size, so inspecting a 7 GB checkpoint costs one
small read. The length is checked before anything is allocated: a corrupt or hostile file could
otherwise ask us for gigabytes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from provision.errors import InspectionError
from provision.inspection.model import TensorInfo

# The safetensors library itself refuses headers above 100 MB; real headers are well under
# 1 MB even for Flux checkpoints (a few thousand tensors).
MAX_HEADER_BYTES: Final = 100 * 1024 * 1024
# Real files hold at most a few thousand tensors (a Flux checkpoint with its text encoders:
# ~2,000); the cap bounds the memory and time a header of millions of tiny entries would cost.
MAX_TENSORS: Final = 50_000
_LENGTH_BYTES: Final = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class SafetensorsHeader:
    tensors: Mapping[str, TensorInfo]
    metadata: Mapping[str, str]
    header_bytes: int


def looks_like_safetensors(prefix: bytes) -> bool:
    """True when the first bytes are a plausible length followed by the start of a JSON object."""
    if len(prefix) < _LENGTH_BYTES + 1:
        return False
    (length,) = struct.unpack("<Q", prefix[:_LENGTH_BYTES])
    return 2 <= length <= MAX_HEADER_BYTES and prefix[_LENGTH_BYTES : _LENGTH_BYTES + 1] == b"{"


def read_header(path: Path) -> SafetensorsHeader:
    """Parse the header of `path`; raise InspectionError when it is absent, absurd or corrupt."""
    try:
        with path.open("rb") as fh:
            size = path.stat().st_size
            raw_length = fh.read(_LENGTH_BYTES)
            if len(raw_length) < _LENGTH_BYTES:
                raise InspectionError(f"{path}: {size} bytes is too short for a safetensors file")
            (length,) = struct.unpack("<Q", raw_length)
            if length > MAX_HEADER_BYTES:
                raise InspectionError(
                    f"{path}: safetensors header claims {length} bytes (limit "
                    f"{MAX_HEADER_BYTES}); the file is corrupt or not a safetensors file"
                )
            if length > size - _LENGTH_BYTES:
                raise InspectionError(
                    f"{path}: safetensors header claims {length} bytes but the file has only "
                    f"{size}; the file is truncated or not a safetensors file"
                )
            raw = fh.read(length)
    except OSError as exc:
        raise InspectionError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return _parse(path, raw, data_bytes=size - _LENGTH_BYTES - length)


def _parse(path: Path, raw: bytes, *, data_bytes: int) -> SafetensorsHeader:
    # Every tensor entry is one JSON object: counting braces first bounds what parsing builds.
    if (objects := raw.count(b"{")) > MAX_TENSORS + 2:
        raise InspectionError(
            f"{path}: safetensors header holds {objects} JSON objects, more than the "
            f"{MAX_TENSORS} tensors any model has; the file is corrupt or hostile"
        )
    try:
        doc = json.loads(raw.decode("utf-8"))
    except RecursionError as exc:
        raise InspectionError(f"{path}: safetensors header is absurdly deeply nested") from exc
    except ValueError as exc:  # bad UTF-8, bad JSON, a number of thousands of digits
        detail = str(exc)[:200]
        raise InspectionError(f"{path}: safetensors header is not valid JSON ({detail})") from exc
    if not isinstance(doc, dict):
        raise InspectionError(f"{path}: safetensors header is not a JSON object")
    metadata: dict[str, str] = {}
    raw_meta = doc.pop("__metadata__", None)
    if isinstance(raw_meta, dict):
        # The format says str -> str; a few tools write numbers. Keep them as text.
        metadata = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in raw_meta.items()}
    tensors: dict[str, TensorInfo] = {}
    for name, entry in doc.items():
        tensors[name] = _tensor(path, name, entry, data_bytes)
    return SafetensorsHeader(tensors=tensors, metadata=metadata, header_bytes=len(raw))


def _tensor(path: Path, name: str, entry: Any, data_bytes: int) -> TensorInfo:
    if not isinstance(entry, dict):
        raise InspectionError(f"{path}: safetensors entry {name!r} is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if (
        not isinstance(dtype, str)
        or not isinstance(shape, list)
        or not all(isinstance(d, int) and d >= 0 for d in shape)
        or not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) for o in offsets)
    ):
        raise InspectionError(f"{path}: safetensors entry {name!r} is malformed: {entry!r:.200}")
    begin, end = offsets
    # A download cut short keeps its header: catching it here costs one stat, not a hash.
    if not 0 <= begin <= end <= data_bytes:
        raise InspectionError(
            f"{path}: tensor {name!r} lies at bytes {begin}..{end} of the data but the file "
            f"holds only {data_bytes} data bytes; the file is truncated"
        )
    return TensorInfo(dtype=dtype, shape=tuple(shape))
