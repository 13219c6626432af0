"""safetensors: an 8-byte little-endian header length, a JSON header, then the tensor bytes.

The header maps each tensor's name to its dtype, shape and `data_offsets` (begin and end,
relative to the first byte after the header), plus an optional `__metadata__` table of
strings. A tensor's part is its byte range; the header (with the spaces that pad it) is one
part.
"""

from __future__ import annotations

import json
import re
import struct
from typing import Any, BinaryIO

from .layout import (
    ITEMSIZE,
    MAX_HEADER,
    MAX_TENSORS,
    FormatError,
    Layout,
    Part,
    check_name,
    check_shape,
    count,
    cover,
)

_DTYPE = re.compile(r"[A-Z][A-Z0-9_]{0,15}")


def looks_like(head: bytes, size: int) -> bool:
    """The first bytes of a file: a plausible header length followed by a JSON object."""
    if len(head) < 9 or size < 10:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def parse(f: BinaryIO, size: int) -> Layout:
    f.seek(0)
    head = f.read(8)
    if len(head) != 8:
        raise FormatError("shorter than a safetensors header")
    (n,) = struct.unpack("<Q", head)
    if n > MAX_HEADER:
        raise FormatError(f"a safetensors header of {n} bytes is too large to split")
    if n + 8 > size:
        raise FormatError("the safetensors header runs past the end of the file")
    text = f.read(n)
    if len(text) != n:
        raise FormatError("the file ended inside its header")
    try:
        doc = json.loads(text.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise FormatError(f"the safetensors header is not JSON ({str(e)[:80]})") from None
    if not isinstance(doc, dict):
        raise FormatError("the safetensors header is not a JSON object")
    doc.pop("__metadata__", None)
    if len(doc) > MAX_TENSORS:
        raise FormatError("too many tensors")
    start = 8 + n
    tensors = [_tensor(name, entry, start, size) for name, entry in doc.items()]
    return cover("safetensors", size, start, tensors)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("a key appears twice")
    return out


def _tensor(name: str, entry: Any, start: int, size: int) -> Part:
    check_name(name)
    if not isinstance(entry, dict):
        raise FormatError(f"tensor {name!r} is not described by a table")
    dtype, offsets = entry.get("dtype"), entry.get("data_offsets")
    if not isinstance(dtype, str) or not _DTYPE.fullmatch(dtype):
        raise FormatError(f"tensor {name!r} has a bad dtype")
    shape = check_shape(entry.get("shape"))
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(type(o) is int for o in offsets)
        or not 0 <= offsets[0] <= offsets[1] <= size - start
    ):
        raise FormatError(f"tensor {name!r} has bad data offsets")
    begin, end = offsets
    itemsize = ITEMSIZE.get(dtype)
    if itemsize is not None and count(shape) * itemsize != end - begin:
        raise FormatError(f"tensor {name!r}: its shape and dtype do not fit its byte range")
    return Part(start + begin, end - begin, name, dtype, shape, start + begin)
