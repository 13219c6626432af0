"""What each storage of a `torch.save` checkpoint holds, read from its `data.pkl` without
running it.

The pickle is walked opcode by opcode (`pickletools.genops`) on a small stack machine that
knows only what a state dict is made of: dicts, lists, tuples, strings, numbers, and the calls
`torch._utils._rebuild_tensor_v2` / `_rebuild_parameter` / `collections.OrderedDict`. Nothing is
imported and nothing is called. A storage is named after the first tensor (dotted keys, as in a
state dict) that uses it; a pickle this walk cannot follow names nothing, and its storages stay
opaque parts.
"""

from __future__ import annotations

import pickletools
from typing import Any, NamedTuple

from .layout import FormatError, check_name, check_shape, count

_STORAGE_DTYPES = {
    "FloatStorage": "F32",
    "DoubleStorage": "F64",
    "HalfStorage": "F16",
    "BFloat16Storage": "BF16",
    "LongStorage": "I64",
    "IntStorage": "I32",
    "ShortStorage": "I16",
    "CharStorage": "I8",
    "ByteStorage": "U8",
    "BoolStorage": "BOOL",
    "ComplexFloatStorage": "C64",
    "ComplexDoubleStorage": "C128",
}
_TENSOR_CALLS = {"_rebuild_tensor_v2", "_rebuild_tensor", "_rebuild_parameter"}
MAX_DEPTH = 32


class _Global(NamedTuple):
    module: str
    name: str


class _Storage(NamedTuple):
    key: str
    dtype: str
    numel: int


class _Tensor(NamedTuple):
    storage: _Storage
    shape: tuple[int, ...]


class _Opaque:
    pass


_MARK = object()


Described = dict[str, tuple[str, str, tuple[int, ...]]]


def storages(pickle: bytes) -> Described:
    """storage key -> (tensor name, dtype, shape); {} when the pickle cannot be followed. The
    shape is the tensor's where it spans its whole storage, else the storage's element count."""
    try:
        root = _run(pickle)
    except (FormatError, ValueError, IndexError, KeyError, TypeError, RecursionError):
        return {}
    out: Described = {}
    _name(root, "", out, 0)
    return out


def _name(obj: Any, prefix: str, out: Described, depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    if isinstance(obj, _Tensor):
        s = obj.storage
        if s.key not in out and prefix:
            try:
                whole = count(obj.shape) == s.numel
                out[s.key] = (check_name(prefix), s.dtype, obj.shape if whole else (s.numel,))
            except FormatError:
                pass
        return
    if isinstance(obj, dict):
        items = list(obj.items())
    elif isinstance(obj, (list, tuple)):
        items = list(enumerate(obj))
    else:
        return
    for key, value in items:
        if isinstance(key, (str, int)) and not isinstance(key, bool):
            _name(value, f"{prefix}.{key}" if prefix else str(key), out, depth + 1)


def _run(pickle: bytes) -> Any:
    stack: list[Any] = []
    memo: dict[int, Any] = {}

    def pop_mark() -> list[Any]:
        at = len(stack) - 1 - stack[::-1].index(_MARK)
        items = stack[at + 1 :]
        del stack[at:]
        return items

    for op, arg, _ in pickletools.genops(pickle):
        name = op.name
        if name in ("PROTO", "FRAME"):
            continue
        if name == "STOP":
            return stack[-1]
        if name == "MARK":
            stack.append(_MARK)
        elif name in ("EMPTY_DICT",):
            stack.append({})
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif (
            name in ("BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE")
            or name in ("BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG")
            or name in ("BINFLOAT", "FLOAT")
        ):
            stack.append(arg)
        elif name in ("NEWTRUE", "NEWFALSE", "NONE"):
            stack.append({"NEWTRUE": True, "NEWFALSE": False, "NONE": None}[name])
        elif name in ("BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "SHORT_BINSTRING", "BINSTRING"):
            stack.append(_Opaque())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = stack[-n:]
            del stack[-n:]
            stack.append(tuple(items))
        elif name == "TUPLE":
            stack.append(tuple(pop_mark()))
        elif name == "LIST":
            stack.append(pop_mark())
        elif name == "DICT":
            items = pop_mark()
            stack.append(dict(zip(items[::2], items[1::2])))
        elif name == "GLOBAL":
            module, _, attr = str(arg).partition(" ")
            stack.append(_Global(module, attr))
        elif name == "STACK_GLOBAL":
            attr, module = stack.pop(), stack.pop()
            stack.append(_Global(str(module), str(attr)))
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[_index(arg)] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            stack.append(memo[_index(arg)])
        elif name == "BINPERSID":
            stack.append(_persistent(stack.pop()))
        elif name == "REDUCE":
            args = stack.pop()
            stack.append(_call(stack.pop(), args))
        elif name in ("NEWOBJ", "NEWOBJ_EX"):
            if name == "NEWOBJ_EX":
                stack.pop()
            stack.pop()
            stack.pop()
            stack.append(_Opaque())
        elif name == "BUILD":
            stack.pop()
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            _setitem(stack[-1], key, value)
        elif name == "SETITEMS":
            items = pop_mark()
            for key, value in zip(items[::2], items[1::2]):
                _setitem(stack[-1], key, value)
        elif name == "APPEND":
            value = stack.pop()
            if isinstance(stack[-1], list):
                stack[-1].append(value)
        elif name == "APPENDS":
            items = pop_mark()
            if isinstance(stack[-1], list):
                stack[-1].extend(items)
        elif name == "POP":
            stack.pop()
        elif name == "POP_MARK":
            pop_mark()
        elif name == "DUP":
            stack.append(stack[-1])
        else:
            raise FormatError(f"pickle opcode {name} is not one a state dict uses")
    raise FormatError("the pickle has no end")


def _index(arg: Any) -> int:
    if isinstance(arg, int):
        return arg
    return int(str(arg))


def _setitem(target: Any, key: Any, value: Any) -> None:
    if isinstance(target, dict) and isinstance(key, (str, int)):
        target[key] = value


def _persistent(pid: Any) -> Any:
    if (
        isinstance(pid, tuple)
        and len(pid) == 5
        and pid[0] == "storage"
        and isinstance(pid[1], _Global)
        and isinstance(pid[2], str)
        and type(pid[4]) is int
    ):
        dtype = _STORAGE_DTYPES.get(pid[1].name)
        if dtype is not None:
            return _Storage(pid[2], dtype, pid[4])
    return _Opaque()


def _call(func: Any, args: Any) -> Any:
    if not isinstance(func, _Global) or not isinstance(args, tuple):
        return _Opaque()
    if func.module == "collections" and func.name == "OrderedDict":
        return {}
    if func.module.startswith("torch") and func.name in _TENSOR_CALLS and args:
        first = args[0]
        if isinstance(first, _Storage):
            size = args[2] if len(args) > 2 else None
            try:
                shape = check_shape(size)
            except FormatError:
                shape = (first.numel,)
            return _Tensor(first, shape)
        if isinstance(first, _Tensor):
            return first
    return _Opaque()
