"""Zip containers of tensors: NumPy `.npz` (`np.savez`) and PyTorch checkpoints (`torch.save`).

Both are zip archives whose members are stored uncompressed, one member per array (npz: a
`.npy` file, its own small header then the bytes) or per storage (torch: `ARCHIVE/data/KEY`,
raw bytes aligned to 64). Only the zip's central directory and each member's local header are
read. A member's part runs from its local header to the next member's, so a changed tensor
changes only its own part (its CRC is in its own local header); the central directory and the
end record are one part at the end. A compressed member (`np.savez_compressed`) stays one
opaque part.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import BinaryIO, NamedTuple

from .layout import ITEMSIZE, MAX_TENSORS, FormatError, Layout, Part, check_name, check_shape, count

LOCAL, CENTRAL, END, END64, LOCATOR64 = (
    b"PK\x03\x04",
    b"PK\x01\x02",
    b"PK\x05\x06",
    b"PK\x06\x06",
    b"PK\x06\x07",
)
MAX_CENTRAL = 64 << 20
MAX_NPY_HEADER = 1 << 16
MAX_PICKLE = 16 << 20
_NPY_DTYPES = {
    "<f8": "F64",
    "<f4": "F32",
    "<f2": "F16",
    "<i8": "I64",
    "<i4": "I32",
    "<i2": "I16",
    "|i1": "I8",
    "<u8": "U64",
    "<u4": "U32",
    "<u2": "U16",
    "|u1": "U8",
    "|b1": "BOOL",
    "<c8": "C64",
    "<c16": "C128",
}


def looks_like(head: bytes, size: int) -> bool:
    return head[:4] == LOCAL


class Member(NamedTuple):
    name: str
    method: int
    header: int  # offset of its local header
    data: int  # offset of its bytes
    size: int  # bytes stored


def members(f: BinaryIO, size: int) -> tuple[list[Member], int]:
    """The members of a zip in file order, and where its central directory starts."""
    count_, central, length = _end_record(f, size)
    if count_ > MAX_TENSORS or length > MAX_CENTRAL or central + length > size:
        raise FormatError("the zip's central directory is too large or past the end")
    f.seek(central)
    table = f.read(length)
    if len(table) != length:
        raise FormatError("the file ended inside its zip central directory")
    found = []
    at = 0
    for _ in range(count_):
        if table[at : at + 4] != CENTRAL or at + 46 > length:
            raise FormatError("a zip central directory entry is damaged")
        fields = struct.unpack("<4s6H3I5H2I", table[at : at + 46])
        method, csize, usize = fields[4], fields[8], fields[9]
        n, e, c, disk, offset = fields[10], fields[11], fields[12], fields[13], fields[16]
        if at + 46 + n + e + c > length:
            raise FormatError("a zip central directory entry is damaged")
        try:
            name = table[at + 46 : at + 46 + n].decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("a zip member name is not UTF-8") from None
        extra = table[at + 46 + n : at + 46 + n + e]
        csize, usize, offset, disk = _zip64(extra, csize, usize, offset, disk)
        if disk != 0:
            raise FormatError("a zip spanning several disks")
        found.append((offset, name, method, csize))
        at += 46 + n + e + c
    found.sort()
    out = []
    for offset, name, method, csize in found:
        f.seek(offset)
        head = f.read(30)
        if len(head) != 30 or head[:4] != LOCAL:
            raise FormatError(f"zip member {name[:80]!r} has no local header where it should")
        n, e = struct.unpack("<2H", head[26:30])
        data = offset + 30 + n + e
        if data + csize > central:
            raise FormatError(f"zip member {name[:80]!r} runs into the central directory")
        out.append(Member(name, method, offset, data, csize))
    return out, central


def _end_record(f: BinaryIO, size: int) -> tuple[int, int, int]:
    """(members, central directory offset, its length), zip64 records followed."""
    tail = min(size, 22 + 0xFFFF)
    f.seek(size - tail)
    data = f.read(tail)
    at = data.rfind(END)
    while at >= 0 and (
        at + 22 > len(data)
        or at + 22 + struct.unpack("<H", data[at + 20 : at + 22])[0] != len(data)
    ):
        at = data.rfind(END, 0, at)
    if at < 0:
        raise FormatError("no zip end record")
    disk, start_disk, _, total, length, central, _ = struct.unpack("<4H2IH", data[at + 4 : at + 22])
    if disk or start_disk:
        raise FormatError("a zip spanning several disks")
    if total == 0xFFFF or length == 0xFFFFFFFF or central == 0xFFFFFFFF:
        end = size - tail + at
        if end < 20:
            raise FormatError("a zip64 end record is missing")
        f.seek(end - 20)
        locator = f.read(20)
        if locator[:4] != LOCATOR64:
            raise FormatError("a zip64 end record is missing")
        (where,) = struct.unpack("<Q", locator[8:16])
        if where + 56 > end:
            raise FormatError("a zip64 end record is damaged")
        f.seek(where)
        record = f.read(56)
        if record[:4] != END64:
            raise FormatError("a zip64 end record is damaged")
        total, length, central = struct.unpack("<3Q", record[32:56])
        if central + length > where:
            raise FormatError("a zip64 central directory overlaps its end record")
    elif central + length > size - tail + at:
        raise FormatError("the zip central directory overlaps its end record")
    return total, central, length


def _zip64(extra: bytes, csize: int, usize: int, offset: int, disk: int) -> tuple[int, ...]:
    """Sizes and offset from a zip64 extra field where the 32-bit fields say to look there."""
    at = 0
    while at + 4 <= len(extra):
        kind, n = struct.unpack("<2H", extra[at : at + 4])
        body = extra[at + 4 : at + 4 + n]
        if kind == 1:
            values = [usize, csize, offset]
            k = 0
            for i, full in enumerate((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)):
                if values[i] == full:
                    if k + 8 > len(body):
                        raise FormatError("a zip64 extra field is short")
                    values[i] = struct.unpack("<Q", body[k : k + 8])[0]
                    k += 8
            usize, csize, offset = values
        at += 4 + n
    return csize, usize, offset, disk


Interpret = Callable[[BinaryIO, Member], Part]


def layout_of(fmt: str, f: BinaryIO, size: int, interpret: Interpret) -> Layout:
    """The parts of a zip: one per member (from its local header to the next one's), each
    described by `interpret`, then the central directory and end record as one part."""
    found, central = members(f, size)
    if not found or found[0].header != 0:
        raise FormatError("the zip does not start with a member")
    parts = []
    names: set[str] = set()
    for i, m in enumerate(found):
        end = found[i + 1].header if i + 1 < len(found) else central
        if m.data + m.size > end:
            raise FormatError(f"zip member {m.name[:80]!r} overlaps the next")
        part = interpret(f, m)
        if part.name in names:
            raise FormatError(f"zip member {m.name[:80]!r} is named twice")
        names.add(part.name)
        parts.append(part._replace(offset=m.header, length=end - m.header))
    parts.append(Part(central, size - central, "(central directory)"))
    return Layout(fmt, size, parts)


# -- npz -------------------------------------------------------------------------------------------


def parse_npz(f: BinaryIO, size: int) -> Layout:
    return layout_of("npz", f, size, _npy_member)


def _npy_member(f: BinaryIO, m: Member) -> Part:
    if not m.name.endswith(".npy"):
        raise FormatError(f"npz member {m.name[:80]!r} is not a .npy array")
    name = check_name(m.name[:-4], "array name")
    if m.method != 0:
        return Part(m.header, 0, f"(compressed {name})")
    f.seek(m.data)
    head = f.read(12)
    if head[:6] != b"\x93NUMPY" or len(head) < 10:
        raise FormatError(f"npz member {name!r} is not a .npy array")
    if head[6] == 1:
        (n,), skip = struct.unpack("<H", head[8:10]), 10
    elif head[6] in (2, 3) and len(head) == 12:
        (n,), skip = struct.unpack("<I", head[8:12]), 12
    else:
        raise FormatError(f"npz member {name!r} has an unknown .npy version")
    if n > MAX_NPY_HEADER or skip + n > m.size:
        raise FormatError(f"npz member {name!r} has a .npy header too large")
    f.seek(m.data + skip)
    text = f.read(n)
    import ast  # (a literal only: nothing is run)

    try:
        header = ast.literal_eval(text.decode("latin-1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        raise FormatError(f"npz member {name!r} has a bad .npy header") from None
    if not isinstance(header, dict) or not isinstance(header.get("descr"), str):
        return Part(m.header, 0, f"(array {name})")  # a structured array: kept opaque
    descr = header["descr"]
    shape = check_shape(header.get("shape"))
    dtype = _NPY_DTYPES.get(descr)
    if dtype is None:
        if descr in ("|O", "O") or not descr.isascii() or not descr.isprintable():
            return Part(m.header, 0, f"(array {name})")  # pickled objects: opaque
        dtype = descr[:16]
    data = m.data + skip + n
    itemsize = ITEMSIZE.get(dtype)
    if itemsize is not None and count(shape) * itemsize != m.data + m.size - data:
        raise FormatError(f"npz array {name!r}: its shape and dtype do not fit its bytes")
    return Part(m.header, 0, name, dtype, shape, data)


# -- torch -----------------------------------------------------------------------------------------


def is_torch(found: list[Member]) -> bool:
    return any(m.name.endswith("/data.pkl") for m in found)


def parse_torch(f: BinaryIO, size: int) -> Layout:
    from .torchpickle import storages

    found, _ = members(f, size)
    pickles = [m for m in found if m.name.endswith("/data.pkl")]
    if len(pickles) != 1 or pickles[0].method != 0 or pickles[0].size > MAX_PICKLE:
        raise FormatError("not a torch.save checkpoint git-model can read")
    archive = pickles[0].name[: -len("data.pkl")]
    f.seek(pickles[0].data)
    described = storages(f.read(pickles[0].size))

    def interpret(f: BinaryIO, m: Member) -> Part:
        if not m.name.startswith(archive):
            raise FormatError("a torch checkpoint with members outside its archive")
        inner = m.name[len(archive) :]
        if inner.startswith("data/") and m.method == 0:
            key = check_name(inner[len("data/") :], "storage key")
            info = described.get(key)
            if info is not None:
                name, dtype, shape = info
                itemsize = ITEMSIZE.get(dtype)
                if itemsize is not None and itemsize * count(shape) != m.size:
                    raise FormatError(f"torch storage {key!r} does not hold what its pickle says")
                return Part(m.header, 0, name, dtype, shape, m.data)
            return Part(m.header, 0, f"(storage {key})")
        return Part(m.header, 0, f"({check_name(inner.replace('/', ' '), 'member name')})")

    return layout_of("torch", f, size, interpret)
