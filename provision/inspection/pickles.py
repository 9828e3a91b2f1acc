"""Recover the tensor names and shapes of a torch pickle without unpickling it.

`pickle.Unpickler` would import and call whatever the file names. Here a small symbolic machine
walks the opcodes from `pickletools.genops` instead: a global is only a `(module, name)` pair,
a call only records what was called with what, and the few torch constructors that matter
(`_rebuild_tensor_v2`, `_rebuild_parameter`, `OrderedDict`) are recognised by name and turned
into plain values. Nothing is imported, nothing from the file is ever called.

Layouts read:
- torch zip (torch >= 1.6): `<dir>/data.pkl` holds the object; tensors point at `<dir>/data/<n>`
  through persistent ids `('storage', torch.HalfStorage, '<n>', 'cpu', numel)`.
- legacy torch (< 1.6): pickles in a row (magic number, protocol, sys info, the object, storage
  keys) followed by raw storage bytes. Only the first four pickles are read.
- a plain pickle of a dict (some `.bin` files).
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final

from provision.inspection.model import TensorInfo

# A state dict's pickle is a few hundred KB even for SDXL; past this the file is not a model
# and reading on would only let a hostile file make us allocate.
MAX_PICKLE_BYTES: Final = 64 * 1024 * 1024
# torch's legacy serialization starts with this number as the first pickle.
LEGACY_MAGIC: Final = 0x1950A86A20F9469CFC6C
# A state dict takes ~30 opcodes per tensor (SDXL: ~80k in all). Every opcode can allocate,
# so the budget bounds memory and time: a 64 MB run of EMPTY_DICT would otherwise build 64M
# dicts (gigabytes) and take minutes.
MAX_OPCODES: Final = 1_000_000
_MAX_DEPTH: Final = 64
_MAX_SCALAR_CHARS: Final = 200
# Torch keys are under 200 characters; nesting one long memoised key 64 deep would otherwise
# make every leaf key megabytes long.
_MAX_KEY_CHARS: Final = 1024

_STORAGE_DTYPES: Final[Mapping[str, str]] = {
    "HalfStorage": "F16",
    "FloatStorage": "F32",
    "BFloat16Storage": "BF16",
    "DoubleStorage": "F64",
    "LongStorage": "I64",
    "IntStorage": "I32",
    "ShortStorage": "I16",
    "CharStorage": "I8",
    "ByteStorage": "U8",
    "BoolStorage": "BOOL",
    "UntypedStorage": "U8",
}


class PickleReadError(ValueError):
    """The bytes are not a pickle this reader can walk (truncated, corrupt, too large)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PickleContents:
    """Flattened view of the pickled object: dotted key -> tensor, and short scalar values."""

    layout: str  # "torch-zip", "torch-legacy" or "plain"
    tensors: Mapping[str, TensorInfo]
    scalars: Mapping[str, str]


# ---- symbolic values -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Global:
    module: str
    name: str


@dataclass(frozen=True, slots=True)
class _Storage:
    dtype: str


@dataclass(eq=False, slots=True)
class _Object:
    """Anything built by calling something we do not interpret: kept inert, never called."""

    factory: object
    args: object = None
    state: object = None
    items: dict[object, object] = field(default_factory=dict)


class _Mark:
    """Stack marker for MARK."""


_MARK: Final = _Mark()
_ORDERED_DICT: Final = _Global("collections", "OrderedDict")
_TENSOR_REBUILDERS: Final = frozenset(
    {
        _Global("torch._utils", "_rebuild_tensor_v2"),
        _Global("torch._utils", "_rebuild_tensor"),
    }
)
_PARAMETER_REBUILDERS: Final = frozenset(
    {
        _Global("torch._utils", "_rebuild_parameter"),
        _Global("torch._utils", "_rebuild_parameter_with_state"),
    }
)


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
    obj = _run(io.BytesIO(raw))
    tensors, scalars = _flatten(obj)
    return PickleContents(layout="torch-zip", tensors=tensors, scalars=scalars)


def _read_stream(fh: BinaryIO) -> PickleContents:
    reader = _BoundedReader(fh, MAX_PICKLE_BYTES)
    first = _run(reader)
    layout = "plain"
    obj = first
    if isinstance(first, int) and not isinstance(first, bool) and first == LEGACY_MAGIC:
        _run(reader)  # protocol version
        _run(reader)  # sys info (endianness, type sizes)
        obj = _run(reader)
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


# ---- the symbolic machine --------------------------------------------------------------------


def _run(stream: Any) -> object:
    """Execute one pickle (up to STOP) symbolically and return its top-level value."""
    stack: list[object] = []
    memo: dict[int, object] = {}
    try:
        for count, (opcode, arg, _pos) in enumerate(pickletools.genops(stream)):
            if count >= MAX_OPCODES:
                raise PickleReadError(
                    f"more than {MAX_OPCODES} pickle opcodes, far beyond any model's"
                )
            name = opcode.name
            if name == "STOP":
                return stack.pop()
            _step(name, arg, stack, memo)
    except PickleReadError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, EOFError) as exc:
        raise PickleReadError(f"not a readable pickle: {exc}") from exc
    raise PickleReadError("pickle ended without STOP (truncated)")


def _pop_mark(stack: list[object]) -> list[object]:
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is _MARK:
            items = stack[i + 1 :]
            del stack[i:]
            return items
    raise PickleReadError("MARK missing")


_PUSH_ARG: Final = frozenset(
    {
        "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4",
        "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
        "BYTEARRAY8", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
        "FLOAT", "BINFLOAT",
    }
)  # fmt: skip
_CONSTANTS: Final[Mapping[str, object]] = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_NO_OPS: Final = frozenset({"PROTO", "FRAME", "READONLY_BUFFER"})


def _step(name: str, arg: Any, stack: list[object], memo: dict[int, object]) -> None:
    # One branch per opcode family; the table in pickletools documents each of them.
    if name in _PUSH_ARG:
        stack.append(arg)
    elif name in _CONSTANTS:
        stack.append(_CONSTANTS[name])
    elif name in _NO_OPS:
        pass
    elif name == "MARK":
        stack.append(_MARK)
    elif name in ("EMPTY_LIST", "EMPTY_SET"):
        stack.append([])
    elif name == "EMPTY_DICT":
        stack.append({})
    elif name == "EMPTY_TUPLE":
        stack.append(())
    elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
        n = int(name[-1])
        items = stack[-n:]
        del stack[-n:]
        stack.append(tuple(items))
    elif name == "TUPLE":
        stack.append(tuple(_pop_mark(stack)))
    elif name in ("LIST", "FROZENSET"):
        stack.append(_pop_mark(stack))
    elif name == "DICT":
        items = _pop_mark(stack)
        stack.append(dict(zip(map(_key, items[::2]), items[1::2], strict=True)))
    elif name == "APPEND":
        value = stack.pop()
        _extend(stack[-1], [value])
    elif name in ("APPENDS", "ADDITEMS"):
        items = _pop_mark(stack)
        _extend(stack[-1], items)
    elif name == "SETITEM":
        value = stack.pop()
        key = stack.pop()
        _setitems(stack[-1], [key, value])
    elif name == "SETITEMS":
        items = _pop_mark(stack)
        _setitems(stack[-1], items)
    elif name == "POP":
        stack.pop()
    elif name == "POP_MARK":
        _pop_mark(stack)
    elif name == "DUP":
        stack.append(stack[-1])
    elif name in ("GET", "BINGET", "LONG_BINGET"):
        stack.append(memo[int(arg)])
    elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
        memo[int(arg)] = stack[-1]
    elif name == "MEMOIZE":
        memo[len(memo)] = stack[-1]
    elif name in ("GLOBAL", "INST"):
        module, _, attr = str(arg).partition(" ")
        ref = _Global(module, attr)
        if name == "GLOBAL":
            stack.append(ref)
        else:
            stack.append(_Object(ref, tuple(_pop_mark(stack))))
    elif name == "STACK_GLOBAL":
        attr_name = stack.pop()
        module_name = stack.pop()
        stack.append(_Global(_text(module_name), _text(attr_name)))
    elif name in ("EXT1", "EXT2", "EXT4"):
        stack.append(_Global("<extension>", str(arg)))
    elif name == "REDUCE":
        args = stack.pop()
        func = stack.pop()
        stack.append(_reduce(func, args))
    elif name == "NEWOBJ":
        args = stack.pop()
        cls = stack.pop()
        ordered_dict = isinstance(cls, _Global) and cls == _ORDERED_DICT
        stack.append(_reduce(cls, args) if ordered_dict else _Object(cls, args))
    elif name == "NEWOBJ_EX":
        stack.pop()  # kwargs
        args = stack.pop()
        stack.append(_Object(stack.pop(), args))
    elif name == "OBJ":
        items = _pop_mark(stack)
        stack.append(_Object(items[0], tuple(items[1:])))
    elif name == "BUILD":
        state = stack.pop()
        target = stack[-1]
        if isinstance(target, _Object):
            target.state = state
        # BUILD on a dict (OrderedDict's `_metadata`) or a tensor carries nothing we need.
    elif name == "BINPERSID":
        stack.append(_persistent(stack.pop()))
    elif name == "PERSID":
        stack.append(_persistent(arg))
    elif name == "NEXT_BUFFER":
        stack.append(_Object(_Global("<out-of-band>", "buffer")))
    else:
        raise PickleReadError(f"unsupported opcode {name}")


def _key(value: object) -> object:
    # Only plain scalars stay keys. Hashing or printing anything else is unsafe: a tuple that
    # holds itself twice, 60 levels deep through the memo, costs 2^60 steps to hash or repr.
    if value is None or isinstance(value, str | float | bool):
        return value
    if isinstance(value, int) and value.bit_length() <= 64:
        return value
    return f"<{type(value).__name__}>"


def _text(value: object) -> str:
    return value if isinstance(value, str) else f"<{type(value).__name__}>"


def _extend(target: object, items: list[object]) -> None:
    if isinstance(target, list):
        target.extend(items)
    elif isinstance(target, _Object):
        target.items.update((str(len(target.items) + i), v) for i, v in enumerate(items))


def _setitems(target: object, items: list[object]) -> None:
    pairs = zip(map(_key, items[::2]), items[1::2], strict=True)
    if isinstance(target, dict):
        target.update(pairs)
    elif isinstance(target, _Object):
        target.items.update(pairs)


def _persistent(pid: object) -> object:
    # torch: ('storage', <storage class global>, key, location, numel[, view metadata])
    if isinstance(pid, tuple) and len(pid) >= 2 and pid[0] == "storage":
        storage_type = pid[1]
        if isinstance(storage_type, _Global):
            return _Storage(_STORAGE_DTYPES.get(storage_type.name, storage_type.name))
    return _Object(_Global("<persistent>", "id"), pid)


def _reduce(func: object, args: object) -> object:
    """The value of `func(*args)` for the few constructors we understand; else an inert record."""
    if not isinstance(func, _Global):
        return _Object(func, args)  # never hash what the file built: see _key
    if func in _TENSOR_REBUILDERS and isinstance(args, tuple) and len(args) >= 3:
        storage, size = args[0], args[2]
        if isinstance(size, tuple) and all(isinstance(d, int) for d in size):
            dtype = storage.dtype if isinstance(storage, _Storage) else "unknown"
            return TensorInfo(dtype=dtype, shape=tuple(int(d) for d in size))
    if func in _PARAMETER_REBUILDERS and isinstance(args, tuple) and args:
        return args[0]
    if func == _ORDERED_DICT:
        result: dict[object, object] = {}
        if isinstance(args, tuple) and args and isinstance(args[0], list):
            for pair in args[0]:
                if isinstance(pair, tuple) and len(pair) == 2:
                    result[_key(pair[0])] = pair[1]
        return result
    return _Object(func, args)


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
    elif isinstance(obj, _Object):
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
