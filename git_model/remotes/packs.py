"""Packs: many small objects in one remote file, so a push or a pull of a data set is a few
requests, not one an object (S3, Azure and GCS have no batch PUT or GET).

On the remote, beside `objects/`:

- `packs/<id>.pack`: the stored bytes of its objects one after another, each raw or a zstd
  frame as codec.py makes them; nothing else (no header, no padding).
- `packs/<id>.idx`: which objects it holds and where, all integers big-endian:

      b"GMPACKI1"                           magic and format
      pack size u64, count u32, sha256 of the pack's bytes (32)
      fan-out: 256 × u32, the number of objects whose oid's first byte is <= i (as git's)
      count records sorted by oid, each: oid (32), offset u64, stored u32, size u32,
      form u8 (0 raw bytes, 1 a frame), 3 bytes of zeros

`<id>` is the SHA-256 of the .idx file's bytes: the name pins the index and, through the
pack's SHA-256 in it, the pack. An index is checked against its name and its structure
before it is used (then kept in the cache's `packs/`, checked against its name again each
time it is loaded), and every object read out of a pack is checked against its oid before
it enters the cache, like any download. The index is written after its pack, so an index is
never visible before the pack it describes is complete.

This module is the format and the local set of indexes; packed.py moves packs to and from a
remote.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..copying import write_all
from ..hashing import Oid

MAGIC = b"GMPACKI1"
HEAD = struct.Struct(">QI32s")  # pack size, count, pack sha256
FAN = struct.Struct(">256I")
REC = struct.Struct(">32sQIIB3x")  # oid, offset, stored, size, form
TOP = len(MAGIC) + HEAD.size + FAN.size  # where the records start
OBJECT_MAX = 1 << 20  # objects up to this size are packed (a larger one is its own request)
PACK_BYTES = 64 << 20  # a pack is closed once it holds this much
PACK_FROM = 16  # a push with fewer small objects to send than this sends each on its own
INDEX_MAX = TOP + REC.size * (PACK_BYTES // 64 + 4096)  # an index larger is not ours


class BadIndex(ValueError):
    """An index that is not what its name says, or not of this format."""


@dataclass(frozen=True)
class Entry:
    """Where one object is in a pack."""

    pack: str  # the pack's id
    offset: int
    stored: int  # bytes it takes in the pack
    size: int  # bytes it has (the oid's)
    frame: bool  # stored as a zstd frame (codec.py)


def encode_index(
    records: list[tuple[bytes, int, int, int, bool]], pack_size: int, pack_digest: bytes
) -> bytes:
    """The .idx bytes for a pack's records (raw oid, offset, stored, size, frame)."""
    records = sorted(records)
    fan = [0] * 256
    for raw, *_ in records:
        fan[raw[0]] += 1
    total = 0
    for i in range(256):
        total += fan[i]
        fan[i] = total
    out = [MAGIC, HEAD.pack(pack_size, len(records), pack_digest), FAN.pack(*fan)]
    out += [
        REC.pack(raw, off, stored, size, int(frame)) for raw, off, stored, size, frame in records
    ]
    return b"".join(out)


def pack_id(index: bytes) -> str:
    return hashlib.sha256(index).hexdigest()


def is_pack_id(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def check_index(data: bytes, name: str) -> None:
    """BadIndex unless `data` is a whole, well-formed index whose SHA-256 is `name`: every
    record sorted and unique, in its fan-out bucket, inside the pack, of a size a pack holds."""
    if len(data) > INDEX_MAX or pack_id(data) != name:
        raise BadIndex("it does not hash to its name")
    if len(data) < TOP or data[: len(MAGIC)] != MAGIC:
        raise BadIndex("it is not a git-model pack index of a format this version knows")
    pack_size, count, _ = HEAD.unpack_from(data, len(MAGIC))
    fan = FAN.unpack_from(data, len(MAGIC) + HEAD.size)
    if len(data) != TOP + count * REC.size or fan[255] != count:
        raise BadIndex("its length does not match its count")
    if any(fan[i] > fan[i + 1] for i in range(255)):
        raise BadIndex("its fan-out is not in order")
    last = b""
    for i in range(count):
        raw, off, stored, size, form = REC.unpack_from(data, TOP + i * REC.size)
        bucket_start = fan[raw[0] - 1] if raw[0] else 0
        if raw <= last or not bucket_start <= i < fan[raw[0]]:
            raise BadIndex("its objects are not sorted")
        if not _plausible(off, stored, size, form, pack_size):
            raise BadIndex(f"it places object {raw.hex()[:12]} outside its pack")
        last = raw


def _plausible(off: int, stored: int, size: int, form: int, pack_size: int) -> bool:
    if form not in (0, 1) or size > OBJECT_MAX or off + stored > pack_size:
        return False
    return stored == size if form == 0 else 0 < stored <= size


class Index:
    """One pack's index, kept in a local file: looked up a fan-out bucket at a time (a
    million packed objects are ~52 MB of index: read in slices, never held)."""

    def __init__(self, path: Path, name: str) -> None:
        self.name = name
        data = path.read_bytes()
        check_index(data, name)  # (the local copy too: a bad one would quarantine good bytes)
        self._path = path
        self.pack_size, self.count, _ = HEAD.unpack_from(data, len(MAGIC))
        self._fan = FAN.unpack_from(data, len(MAGIC) + HEAD.size)

    def find(self, by_byte: dict[int, dict[bytes, Oid]], out: dict[Oid, Entry]) -> None:
        """Add to `out` the wanted objects this pack holds; `by_byte`: first oid byte ->
        raw oid -> oid. An object in several packs keeps the first entry found."""
        fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            for first, wanted in by_byte.items():
                lo = self._fan[first - 1] if first else 0
                hi = self._fan[first]
                if hi <= lo:
                    continue
                data = os.pread(fd, (hi - lo) * REC.size, TOP + lo * REC.size)
                oids = [data[i : i + 32] for i in range(0, len(data), REC.size)]
                if len(wanted) < 8:  # a few wanted: bisect the bucket
                    for raw, oid in wanted.items():
                        j = bisect.bisect_left(oids, raw)
                        if j < len(oids) and oids[j] == raw:
                            self._take(data, j, oid, out)
                    continue
                for j, raw in enumerate(oids):
                    if raw in wanted:
                        self._take(data, j, wanted[raw], out)
        finally:
            os.close(fd)

    def _take(self, data: bytes, j: int, oid: Oid, out: dict[Oid, Entry]) -> None:
        if oid in out:
            return
        _, off, stored, size, form = REC.unpack_from(data, j * REC.size)
        out[oid] = Entry(self.name, off, stored, size, form == 1)


class PackSet:
    """The indexes of the packs a remote holds, kept in `folder` (the cache's `packs/`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.indexes: list[Index] = []

    def local(self, name: str) -> Path:
        return self.folder / f"{name}.idx"

    def load(self, name: str) -> bool:
        """Use the local copy of index `name`; False if there is none (or it is bad: it goes)."""
        path = self.local(name)
        try:
            self.indexes.append(Index(path, name))
        except FileNotFoundError:
            return False
        except BadIndex:
            path.unlink(missing_ok=True)
            return False
        return True

    def keep(self, name: str, data: bytes) -> None:
        """Store a checked index locally (atomically) and use it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{name}.{os.urandom(4).hex()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, self.local(name))
        self.indexes.append(Index(self.local(name), name))

    def find(self, oids: Iterable[Oid]) -> dict[Oid, Entry]:
        """Where each of `oids` that a pack holds is."""
        out: dict[Oid, Entry] = {}
        if not self.indexes:
            return out
        by_byte: dict[int, dict[bytes, Oid]] = {}
        for oid in oids:
            try:
                raw = bytes.fromhex(oid)
            except ValueError:
                continue
            if len(raw) == 32:
                by_byte.setdefault(raw[0], {})[raw] = oid
        for index in self.indexes:
            index.find(by_byte, out)
        return out
