"""What a recognised model file is made of: an ordered list of parts covering it exactly.

A part is a byte range: the header kept verbatim, one tensor (with the padding after it), or
another piece of the container (a zip member that holds no tensor, a zip's central directory).
The parts of a file are contiguous from 0 to its size, so the file is their concatenation.

Every parser here reads only the headers of a file, never its tensor bytes, and trusts nothing
it reads: a range past the end, ranges that overlap, a header too large to hold, a count too
large to be true, a name with `/`, `..` or a control character all raise `FormatError`, which
means "keep this file whole", never a crash.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

MAX_HEADER = 16 << 20  # a header larger than this is kept whole (real ones are ~100 KiB)
MAX_TENSORS = 1 << 20  # more tensors than this in one file is not a model we split
MAX_NAME = 1024
MAX_DIMS = 16

# element sizes in bytes, by the names listings use (safetensors' names where there is one)
ITEMSIZE = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "U8": 1,
    "BOOL": 1,
    "C64": 8,
    "C128": 16,
}
FLOATS = ("F64", "F32", "F16", "BF16")  # the dtypes whose changes `diff --stats` measures


class FormatError(ValueError):
    """The file is not one we split into parts (or its header cannot be trusted): keep it
    whole."""


class Part(NamedTuple):
    """One byte range of a recognised file. For a tensor, `dtype` and `shape` say what it
    holds and `data` where its bytes start (at or after `offset`: a zip member's headers come
    first); for anything else (a header, a container's own bytes) all three are None."""

    offset: int
    length: int
    name: str
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    data: int | None = None

    @property
    def end(self) -> int:
        return self.offset + self.length

    @property
    def is_tensor(self) -> bool:
        return self.dtype is not None


class Layout(NamedTuple):
    """A recognised file: its format's name (`safetensors`, `npz`, `gguf`, `torch`) and its
    parts in file order."""

    format: str
    size: int
    parts: list[Part]


def check_name(name: object, what: str = "tensor name") -> str:
    """A name fit for a listing line: text, not empty, no `/`, no `..`, no control
    characters (C0, DEL, C1), at most MAX_NAME characters."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise FormatError(f"{what} is empty, too long or not text")
    if "/" in name or ".." in name:
        raise FormatError(f"{what} {name[:80]!r} holds '/' or '..'")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        raise FormatError(f"{what} {name[:80]!r} holds a control character")
    if name.startswith("("):
        raise FormatError(f"{what} {name[:80]!r} starts like a part of the container")
    return name


def check_shape(shape: object) -> tuple[int, ...]:
    if not isinstance(shape, (list, tuple)) or len(shape) > MAX_DIMS:
        raise FormatError("a tensor shape is not a short list of sizes")
    if not all(type(d) is int and 0 <= d < 1 << 62 for d in shape):
        raise FormatError("a tensor shape holds something other than sizes")
    return tuple(shape)


def count(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def cover(
    fmt: str, size: int, header: int, tensors: Iterable[Part], *, tail: str | None = None
) -> Layout:
    """The layout of a file whose first `header` bytes are its header and whose tensors are
    `tensors` (each with its own range): checked to lie inside the file, after the header,
    without overlapping. Each gap goes to the part before it (padding after a tensor, or the
    header's own padding); bytes after the last tensor go to a part named `tail` when given,
    else to the last tensor."""
    if not 0 < header <= size:
        raise FormatError("the header runs past the end of the file")
    ordered = sorted(tensors, key=lambda p: (p.offset, p.length))
    if len(ordered) > MAX_TENSORS:
        raise FormatError("too many tensors")
    names: set[str] = set()
    parts = [Part(0, header, "(header)")]
    at = header
    for t in ordered:
        if t.offset < at or t.length < 0 or t.end > size:
            raise FormatError(f"tensor {t.name!r} overlaps another or runs past the end")
        if t.name in names:
            raise FormatError(f"tensor {t.name!r} is named twice")
        names.add(t.name)
        if t.offset > at:
            last = parts[-1]
            parts[-1] = last._replace(length=t.offset - last.offset)
        parts.append(t)
        at = t.end
    if at < size:
        if tail is not None:
            parts.append(Part(at, size - at, tail))
        else:
            last = parts[-1]
            parts[-1] = last._replace(length=size - last.offset)
    return Layout(fmt, size, parts)


def check_layout(layout: Layout) -> Layout:
    """Every layout a parser returns passes this: parts contiguous from 0 to the size."""
    at = 0
    for p in layout.parts:
        if p.offset != at or p.length < 0:
            raise FormatError("parts do not cover the file contiguously")
        if p.data is not None and not p.offset <= p.data <= p.end:
            raise FormatError("a tensor's bytes lie outside its part")
        at = p.end
    if at != layout.size:
        raise FormatError("parts do not cover the file contiguously")
    return layout
