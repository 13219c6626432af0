"""GGUF (llama.cpp's model file): a header of key/value metadata and tensor descriptions,
then the tensor bytes, each tensor at an aligned offset into the data section.

The header is read as a stream, its values skipped rather than held (a tokenizer's vocabulary
can be a few MiB of strings); only `general.alignment` is kept. Shapes are given in NumPy order
(outermost first), as the `gguf` package presents them. A tensor's part runs from its first
byte to the next tensor's (its padding with it); the header and the padding that aligns the
data section are one part.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from .layout import MAX_DIMS, MAX_NAME, MAX_TENSORS, FormatError, Layout, Part, check_name, count

MAGIC = b"GGUF"
MAX_GGUF_HEADER = 256 << 20  # skipped as it is read, never held: larger than safetensors'
DEFAULT_ALIGNMENT = 32
MAX_DEPTH = 3  # arrays of arrays of...

# metadata value types: fixed sizes (string = 8, array = 9 are read specially)
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY, _UINT32 = 8, 9, 4

# ggml tensor types: name, elements per block, bytes per block
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
}


def looks_like(head: bytes, size: int) -> bool:
    return head[:4] == MAGIC


class _Reader:
    """Little-endian reads that never go past the header's limit or the file's end."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f = f
        self.limit = min(size, MAX_GGUF_HEADER)
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.limit:
            raise FormatError("the GGUF header runs past the end of the file or is too large")
        data = self.f.read(n)
        if len(data) != n:
            raise FormatError("the file ended inside its GGUF header")
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > self.limit:
            raise FormatError("the GGUF header runs past the end of the file or is too large")
        self.pos += n
        self.f.seek(self.pos)

    def u32(self) -> int:
        value: int = struct.unpack("<I", self.take(4))[0]
        return value

    def u64(self) -> int:
        value: int = struct.unpack("<Q", self.take(8))[0]
        return value

    def string(self, limit: int | None = None) -> bytes:
        n = self.u64()
        if limit is not None and n > limit:
            raise FormatError("a GGUF string is too long")
        return self.take(n)

    def skip_value(self, kind: int, depth: int = 0) -> None:
        if kind in _FIXED:
            self.skip(_FIXED[kind])
        elif kind == _STRING:
            self.skip(self.u64())
        elif kind == _ARRAY and depth < MAX_DEPTH:
            inner, n = self.u32(), self.u64()
            if inner in _FIXED:
                self.skip(n * _FIXED[inner])
            elif n > self.limit:
                raise FormatError("a GGUF array is longer than the file")
            else:
                for _ in range(n):
                    self.skip_value(inner, depth + 1)
        else:
            raise FormatError(f"unknown GGUF value type {kind}")


def parse(f: BinaryIO, size: int) -> Layout:
    f.seek(0)
    r = _Reader(f, size)
    if r.take(4) != MAGIC:
        raise FormatError("not a GGUF file")
    version = r.u32()
    if version not in (2, 3):
        raise FormatError(f"GGUF version {version} is not one git-model splits")
    n_tensors, n_kv = r.u64(), r.u64()
    if n_tensors > MAX_TENSORS or n_kv > MAX_TENSORS:
        raise FormatError("too many GGUF tensors or metadata entries")
    alignment = DEFAULT_ALIGNMENT
    for _ in range(n_kv):
        key = r.string(MAX_NAME)
        kind = r.u32()
        if key == b"general.alignment" and kind == _UINT32:
            alignment = r.u32()
            if alignment == 0 or alignment & (alignment - 1) or alignment > 1 << 20:
                raise FormatError("GGUF alignment is not a power of two")
        else:
            r.skip_value(kind)
    infos = []
    for _ in range(n_tensors):
        raw = r.string(MAX_NAME)
        try:
            name = check_name(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise FormatError("a GGUF tensor name is not UTF-8") from None
        n_dims = r.u32()
        if n_dims > MAX_DIMS:
            raise FormatError(f"GGUF tensor {name!r} has too many dimensions")
        dims = tuple(r.u64() for _ in range(n_dims))
        kind, offset = r.u32(), r.u64()
        if any(d >= 1 << 62 for d in dims) or offset % alignment:
            raise FormatError(f"GGUF tensor {name!r} has a bad shape or offset")
        infos.append((offset, name, kind, dims[::-1]))
    start = -(-r.pos // alignment) * alignment
    if start > size:
        raise FormatError("the GGUF data section starts past the end of the file")
    infos.sort()
    tensors = []
    names = set()
    for i, (offset, name, kind, shape) in enumerate(infos):
        if name in names:
            raise FormatError(f"GGUF tensor {name!r} is named twice")
        names.add(name)
        begin = start + offset
        end = start + infos[i + 1][0] if i + 1 < len(infos) else size
        known = GGML_TYPES.get(kind)
        if known is not None:
            dtype, block, per_block = known
            n = count(shape)
            if n % block:
                raise FormatError(f"GGUF tensor {name!r} does not fill whole blocks")
            if begin + n // block * per_block > end:
                raise FormatError(f"GGUF tensor {name!r} overlaps the next or runs past the end")
        else:
            dtype = f"GGML_{kind}"
        if begin > end:
            raise FormatError(f"GGUF tensor {name!r} lies past the end of the file")
        tensors.append(Part(begin, end - begin, name, dtype, shape, begin))
    parts = [Part(0, tensors[0].offset if tensors else size, "(header)"), *tensors]
    return Layout("gguf", size, parts)
