"""Recover the tensor names and shapes of a torch pickle without unpickling it.

`pickle.Unpickler` would import and call whatever the file names. Here the symbolic machine of
`pickle_machine` walks the opcodes instead: nothing is imported, nothing from the file is
ever called. This module finds the pickle in a file and flattens what the machine returns.

Layouts read:
- torch zip (torch >= 1.6): `<dir>/data.pkl` holds the object; tensors point at `<dir>/data/<n>`
  through persistent ids `('storage', torch.HalfStorage, '<n>', 'cpu', numel)`.
- legacy torch (< 1.6): pickles in a row (magic number, protocol, sys info, the object, storage
  keys) followed by raw storage bytes. Only the first four pickles are read.
- a plain pickle of a dict (some `.bin` files).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from provision.inspection.model import TensorInfo
from provision.inspection.pickle_machine import Inert, PickleReadError, run_pickle

# A state dict's pickle is a few hundred KB even for SDXL; past this the file is not a model
# and reading on would only let a hostile file make us allocate.
MAX_PICKLE_BYTES: Final = 64 * 1024 * 1024
# torch's legacy serialization starts with this number as the first pickle.
LEGACY_MAGIC: Final = 0x1950A86A20F9469CFC6C
_MAX_DEPTH: Final = 64
_MAX_SCALAR_CHARS: Final = 200
# Torch keys are under 200 characters; nesting one long memoised key 64 deep would otherwise
# make every leaf key megabytes long.
_MAX_KEY_CHARS: Final = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class PickleContents:
    """Flattened view of the pickled object: dotted key -> tensor, and short scalar values."""

    layout: str  # "torch-zip", "torch-legacy" or "plain"
    tensors: Mapping[str, TensorInfo]
    scalars: Mapping[str, str]


# ---- reading files ---------------------------------------------------------------------------


def read_pickle_file(path: Path) -> PickleContents:
    """Read `path` (torch zip, legacy torch or plain pickle). Raises OSError or PickleReadError."""
    with path.open("rb") as fh:
        if fh.read(4) == b"PK\x03\x04":
            return _read_zip(path)
        fh.seek(0)
        return _read_stream(fh)


def _read_zip(path: Path) -> PickleContents:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if not names:
                # Some other zip (an archive of a model, say): not a torch file at all.
                return PickleContents(layout="zip without data.pkl", tensors={}, scalars={})
            if len(names) > 1:
                raise PickleReadError(f"{len(names)} data.pkl members in one zip")
            info = archive.getinfo(names[0])
            if info.file_size > MAX_PICKLE_BYTES:
                raise PickleReadError(f"data.pkl is {info.file_size} bytes, more than any model")
            with archive.open(info) as member:
                # The declared size can lie: read at most one byte past the bound.
                raw = member.read(MAX_PICKLE_BYTES + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise PickleReadError(f"not a readable zip: {exc}") from exc
    except PickleReadError:
        raise
    except (ValueError, RuntimeError) as exc:  # bad CRC, encrypted member, bad compression
        raise PickleReadError(f"not a readable zip member: {exc}") from exc
    if len(raw) > MAX_PICKLE_BYTES:
        raise PickleReadError(f"data.pkl unpacks to more than {MAX_PICKLE_BYTES} bytes")
    obj = run_pickle(io.BytesIO(raw))
    tensors, scalars = _flatten(obj)
    return PickleContents(layout="torch-zip", tensors=tensors, scalars=scalars)


def _read_stream(fh: BinaryIO) -> PickleContents:
    reader = _BoundedReader(fh, MAX_PICKLE_BYTES)
    first = run_pickle(reader)
    layout = "plain"
    obj = first
    if isinstance(first, int) and not isinstance(first, bool) and first == LEGACY_MAGIC:
        run_pickle(reader)  # protocol version
        run_pickle(reader)  # sys info (endianness, type sizes)
        obj = run_pickle(reader)
        layout = "torch-legacy"
    tensors, scalars = _flatten(obj)
    return PickleContents(layout=layout, tensors=tensors, scalars=scalars)


class _BoundedReader(io.RawIOBase):
    """File wrapper that refuses to read past `limit` bytes (pickletools reads lazily)."""

    def __init__(self, fh: BinaryIO, limit: int) -> None:
        super().__init__()
        self._fh = fh
        self._left = limit

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        want = self._left + 1 if size is None or size < 0 else size
        if want > self._left:
            raise PickleReadError(f"pickle stream longer than {MAX_PICKLE_BYTES} bytes")
        data = self._fh.read(want)
        self._left -= len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data = self._fh.readline(min(self._left + 1, 1 << 20))
        if len(data) > self._left:
            raise PickleReadError(f"pickle stream longer than {MAX_PICKLE_BYTES} bytes")
        self._left -= len(data)
        return data

    def tell(self) -> int:
        return self._fh.tell()


# ---- flattening ------------------------------------------------------------------------------


def _flatten(obj: object) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    tensors: dict[str, TensorInfo] = {}
    scalars: dict[str, str] = {}
    seen: set[int] = set()
    for key, value in _walk(obj, "", 0, seen):
        if isinstance(value, TensorInfo):
            tensors[key] = value
        elif key and "." not in key:  # top-level scalars only: name, step, sd_checkpoint_name
            scalars[key] = _scalar_text(value)
    return tensors, scalars


def _scalar_text(value: object) -> str:
    if isinstance(value, int) and value.bit_length() > 256:
        return f"<integer of {value.bit_length()} bits>"  # str() refuses past 4300 digits
    return str(value)[:_MAX_SCALAR_CHARS]


def _walk(obj: object, prefix: str, depth: int, seen: set[int]) -> Iterator[tuple[str, object]]:
    if isinstance(obj, TensorInfo | str | int | float | bool):
        yield prefix, obj
        return
    if depth > _MAX_DEPTH or id(obj) in seen:
        return  # self-referencing or absurdly deep: nothing a state dict looks like
    seen.add(id(obj))
    for key, value in _children(obj):
        text = key if isinstance(key, str) else str(key)  # a str or a small scalar: see _key
        if len(prefix) + len(text) >= _MAX_KEY_CHARS:
            continue  # a memoised megabyte key repeated everywhere: no torch key is this long
        yield from _walk(value, f"{prefix}.{text}" if prefix else text, depth + 1, seen)


def _children(obj: object) -> Iterator[tuple[object, object]]:
    if isinstance(obj, dict):
        yield from obj.items()
    elif isinstance(obj, list | tuple):
        yield from enumerate(obj)
    elif isinstance(obj, Inert):
        state = obj.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            state = state[0]  # (dict state, slots state)
        if isinstance(state, dict) and ("_parameters" in state or "_modules" in state):
            # An nn.Module (e.g. the ParameterDict in A1111 embeddings): its tensors live in
            # `_parameters`/`_buffers`, children in `_modules`; the names are what torch uses.
            for attr in ("_parameters", "_buffers", "_modules"):
                inner = state.get(attr)
                if isinstance(inner, dict):
                    yield from inner.items()
        elif isinstance(state, dict):
            yield from state.items()
        yield from obj.items.items()


__all__ = [
    "LEGACY_MAGIC",
    "MAX_PICKLE_BYTES",
    "PickleContents",
    "PickleReadError",
    "read_pickle_file",
]
