"""Model file formats git-model sees inside: which parts (header, tensors) a file is made of.

`recognise` looks at a file's first bytes, never its name, and returns its `Layout` (parts in
file order, covering it exactly) or raises `FormatError`, which means "keep it whole". Pure
and standard library only: no numpy, no format package, no git-model module below it.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from .layout import FLOATS, ITEMSIZE, FormatError, Layout, Part, check_layout, check_name, count

__all__ = [
    "FLOATS",
    "ITEMSIZE",
    "FormatError",
    "Layout",
    "Part",
    "check_name",
    "count",
    "recognise",
]

PEEK = 16


def recognise(f: BinaryIO, size: int) -> Layout:
    """The layout of the open file `f` of `size` bytes, read from its headers only."""
    from . import gguf, safetensors, zipped  # (here: the hooks' no-change path never parses)

    f.seek(0)
    head = f.read(PEEK)
    try:
        if gguf.looks_like(head, size):
            layout = gguf.parse(f, size)
        elif zipped.looks_like(head, size):
            found, _ = zipped.members(f, size)
            if zipped.is_torch(found):
                layout = zipped.parse_torch(f, size)
            elif found and all(m.name.endswith(".npy") for m in found):
                layout = zipped.parse_npz(f, size)
            else:
                raise FormatError("a zip archive that holds no tensors")
        elif safetensors.looks_like(head, size):
            layout = safetensors.parse(f, size)
        else:
            raise FormatError("not a model format git-model splits")
    except (OverflowError, MemoryError, struct.error, IndexError, KeyError, RecursionError) as e:
        # (numbers too large to seek to or to hold, records cut short: each parser checks
        # what it reads, and this is the net under those checks)
        raise FormatError(f"a header that cannot be true ({type(e).__name__})") from None
    if not any(p.is_tensor for p in layout.parts):
        raise FormatError("no tensors to split")
    return check_layout(layout)
