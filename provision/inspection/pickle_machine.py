"""The symbolic pickle machine: runs a pickle's opcodes without importing or calling anything.

A global is only a `(module, name)` pair, a call only records what was called with what, and the
few torch constructors that matter (`_rebuild_tensor_v2`, `_rebuild_parameter`, `OrderedDict`)
are recognised by name and turned into plain values. `pickles` reads files and flattens what
this returns. Budgets (opcodes here, bytes in `pickles`) bound what a hostile file can cost.
"""

from __future__ import annotations

import pickletools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from provision.inspection.model import TensorInfo

# A state dict takes ~30 opcodes per tensor (SDXL: ~80k in all). Every opcode can allocate,
# so the budget bounds memory and time: a 64 MB run of EMPTY_DICT would otherwise build 64M
# dicts (gigabytes) and take minutes.
MAX_OPCODES: Final = 1_000_000

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


# ---- symbolic values -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Global:
    module: str
    name: str


@dataclass(frozen=True, slots=True)
class _Storage:
    dtype: str


@dataclass(eq=False, slots=True)
class Inert:
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


# ---- the symbolic machine --------------------------------------------------------------------


def run_pickle(stream: Any) -> object:
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
            stack.append(Inert(ref, tuple(_pop_mark(stack))))
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
        stack.append(_reduce(cls, args) if ordered_dict else Inert(cls, args))
    elif name == "NEWOBJ_EX":
        stack.pop()  # kwargs
        args = stack.pop()
        stack.append(Inert(stack.pop(), args))
    elif name == "OBJ":
        items = _pop_mark(stack)
        stack.append(Inert(items[0], tuple(items[1:])))
    elif name == "BUILD":
        state = stack.pop()
        target = stack[-1]
        if isinstance(target, Inert):
            target.state = state
        # BUILD on a dict (OrderedDict's `_metadata`) or a tensor carries nothing we need.
    elif name == "BINPERSID":
        stack.append(_persistent(stack.pop()))
    elif name == "PERSID":
        stack.append(_persistent(arg))
    elif name == "NEXT_BUFFER":
        stack.append(Inert(_Global("<out-of-band>", "buffer")))
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
    elif isinstance(target, Inert):
        target.items.update((str(len(target.items) + i), v) for i, v in enumerate(items))


def _setitems(target: object, items: list[object]) -> None:
    pairs = zip(map(_key, items[::2]), items[1::2], strict=True)
    if isinstance(target, dict):
        target.update(pairs)
    elif isinstance(target, Inert):
        target.items.update(pairs)


def _persistent(pid: object) -> object:
    # torch: ('storage', <storage class global>, key, location, numel[, view metadata])
    if isinstance(pid, tuple) and len(pid) >= 2 and pid[0] == "storage":
        storage_type = pid[1]
        if isinstance(storage_type, _Global):
            return _Storage(_STORAGE_DTYPES.get(storage_type.name, storage_type.name))
    return Inert(_Global("<persistent>", "id"), pid)


def _reduce(func: object, args: object) -> object:
    """The value of `func(*args)` for the few constructors we understand; else an inert record."""
    if not isinstance(func, _Global):
        return Inert(func, args)  # never hash what the file built: see _key
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
    return Inert(func, args)
