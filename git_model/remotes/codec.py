"""How an object sits on a remote: its raw bytes, or a zstd frame of them (issue 18).

Object stores bill by the byte stored and moved; training data shrinks 3-10x with zstd, and
float weights shrink too once their bytes are grouped by role (ZipNN). The cache always holds
raw bytes; only the way to and from a remote goes through here, and nothing outside
`remotes/` knows that frames exist.

Layout. A frame is stored beside where the raw object would be, as `objects/ab/cdef….zst`: an
old git-model looks for `cdef…`, does not find it and says the object is missing (it never
takes a frame for a corrupt raw object), a plain `ls` tells the two apart, and remotes holding
both kinds are normal. The file is a valid zstd stream (`zstd -d` reads it): a zstd
*skippable* frame carrying our header (JSON: format, raw size, grouping), then one zstd frame.

Choosing. Each object is probed before it is sent: small ones (up to WHOLE) are compressed
whole and the result decides; a large one by a sample of a few windows across it. Only a
saving of at least 10% makes a frame, so random bytes, JPEGs and archives go raw after a
probe of at most 256 KiB.

Byte grouping. In IEEE floats the exponent byte of trained weights holds ~2-3 bits of
information and the mantissa bytes ~8: mixed, zstd finds little; apart, the exponent plane
shrinks to a third. Each element is first rotated left by one bit (the sign moves to the
bottom, so bf16's and fp32's top byte is exactly the exponent), then chunks of CHUNK bytes
are written plane by plane, most significant byte first. `group` is the element width (2:
fp16/bf16, 4: fp32); the probe tries both against plain zstd, so a file of floats after a
header (npy, safetensors) or a tensor part (issue 19) is found without parsing its format.
Chunks start at multiples of the width, so an odd tail stays as it is: lossless for any
input.

Reading. Decompression streams (one chunk in memory whatever the size), and a frame that
decodes past the size its header records is corrupt at the first byte too many (a zip bomb
stops there); the caller's own limit (the manifest's size) applies too. A frame that does not
decode raises CorruptObject, and the caller verifies the decoded bytes against the oid.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..errors import CorruptObject, GitModelError
from ..hashing import CHUNK

SUFFIX = ".zst"  # objects/ab/cdef….zst: a frame; objects/ab/cdef…: raw bytes
MAGIC = 0x184D2A5E  # one of zstd's skippable-frame magic numbers: decoders pass over it
HEADER_MAX = 4096  # a header longer than this is not ours
FORMAT = 1
AUTO = 0  # model.compress = auto: level 3 for bytes as they are, 1 for grouped floats
SAVING = 0.9  # a frame is stored only when it is at most this share of the raw bytes
WHOLE = 1 << 20  # objects up to this size are compressed whole to decide
WINDOW = 64 << 10  # a larger one is probed on WINDOWS windows of this size across it
WINDOWS = 4
GROUPS = (0, 2, 4)  # plain zstd; byte grouping of 2-byte floats; of 4-byte floats
RANDOM_LIKE = 0.98  # plain zstd saving less than 2%: no grouping is tried (fp32 weights: ~7%)
PLAIN_ENOUGH = 0.5  # plain zstd at half the size or less: text, not floats; no grouping tried
MAX_CHUNK = 64 << 20  # a header asking to ungroup larger chunks is not ours
THREADS_FROM = 64 << 20  # objects at least this large are compressed on every core


_local = threading.local()


def parse_level(value: object) -> int | None:
    """`model.compress`: auto (AUTO), off (None: store raw), or a zstd level 1-22."""
    text = str(value).strip().lower()
    if text in ("auto", "on", "true", "yes", ""):
        return AUTO
    if text in ("off", "false", "no", "0", "none", "raw"):
        return None
    try:
        level = int(text)
    except ValueError:
        level = 0
    if not 1 <= level <= 22:
        raise GitModelError(
            f"model.compress = {value!r}; use auto, off or a zstd level from 1 to 22 "
            "('git config model.compress auto')"
        )
    return level


def frame_key(key: str) -> str:
    return key + SUFFIX


def is_frame_name(name: str) -> bool:
    return name.endswith(SUFFIX)


# -- byte grouping -------------------------------------------------------------------------------


def group(data: bytes, width: int) -> bytes:
    """Rotate each `width`-byte little-endian element left by one bit, then lay the bytes out
    plane by plane, most significant first; a tail shorter than one element stays as it is."""
    if not width:
        return data
    import numpy as np

    n = len(data) // width
    v: Any = np.frombuffer(data, dtype=f"<u{width}", count=n)
    rotated: Any = (v << 1) | (v >> (width * 8 - 1))
    planes: Any = rotated.view(np.uint8).reshape(n, width)[:, ::-1].T
    return bytes(planes.tobytes()) + data[n * width :]


def ungroup(data: bytes, width: int) -> bytes:
    """The inverse of `group`."""
    if not width:
        return data
    import numpy as np

    n = len(data) // width
    planes: Any = np.frombuffer(data, dtype=np.uint8, count=n * width).reshape(width, n)
    r: Any = np.ascontiguousarray(planes[::-1].T).view(f"<u{width}").reshape(n)
    v: Any = (r >> 1) | (r << (width * 8 - 1))
    return bytes(v.tobytes()) + data[n * width :]


# -- choosing ------------------------------------------------------------------------------------


def _compressor(level: int, width: int, size: int = 0) -> Any:
    """A zstd compressor for `level` (AUTO: 3, zstd's default, for bytes as they are; 1 for
    grouped floats, whose exponent plane is nearly memoryless: level 1 leaves more of it to
    the entropy coder and measured both smaller and 1.5x faster than 3 on float weights)."""
    if level == AUTO:
        level = 1 if width else 3
    threads = -1 if size >= THREADS_FROM else 0
    made: dict[tuple[int, int], Any] = _local.__dict__.setdefault("compressors", {})
    if (level, threads) not in made:  # one per thread: a compressor is not thread-safe
        import zstandard

        made[level, threads] = zstandard.ZstdCompressor(level=level, threads=threads)
    return made[level, threads]


def header(size: int, width: int) -> bytes:
    meta = {"format": FORMAT, "size": size, "group": width, "chunk": CHUNK}
    body = json.dumps(meta).encode()
    return struct.pack("<II", MAGIC, len(body)) + body


def _candidates(data: bytes, level: int) -> list[tuple[int, bytes]]:
    """(width, compressed body) for each way worth trying on `data`: plain zstd, then, if
    plain zstd found anything at all (float data always has some: its exponent bytes), the
    byte groupings. Bytes that plain zstd cannot shrink by RANDOM_LIKE stop there, so a
    push of random bytes or archives never imports numpy; nor do bytes it halves (text, CSV,
    JSON: dense float weights never shrink that far plainly, and grouping text costs two more
    compressions of each object for nothing)."""
    plain = _compressor(level, 0).compress(data)
    found = [(0, plain)]
    if len(data) >= 4096 and len(data) * PLAIN_ENOUGH < len(plain) < len(data) * RANDOM_LIKE:
        found += [(w, _compressor(level, w).compress(group(data, w))) for w in GROUPS[1:]]
    return found


def pack(data: bytes, level: int) -> bytes | None:
    """The frame for a small object's bytes, or None when it does not save 10%."""
    if not data:
        return None
    width, body = min(_candidates(data, level), key=lambda c: len(c[1]))
    frame = header(len(data), width) + body
    return frame if len(frame) <= len(data) * SAVING else None


def probe(fd: int, size: int, level: int) -> int | None:
    """The grouping width to store a large open object with (0: plain zstd), or None to keep
    it raw: judged on WINDOWS windows spread across it, aligned to 64 bytes."""
    step = max(size // WINDOWS, WINDOW)
    sample = b"".join(
        os.pread(fd, WINDOW, min(i * step, max(size - WINDOW, 0)) & ~63) for i in range(WINDOWS)
    )
    if not sample:
        return None
    width, body = min(_candidates(sample, level), key=lambda c: len(c[1]))
    return width if len(body) <= len(sample) * SAVING else None


# -- writing a frame -----------------------------------------------------------------------------


@dataclass
class Encoded:
    digest: str  # sha256 hex of the raw bytes read
    size: int  # raw bytes read
    stored: int  # bytes of the frame written


def encode(fd: int, size: int, width: int, level: int, write: Callable[[bytes], Any]) -> Encoded:
    """Stream the open object `fd` (from its start) into a frame given to `write`, hashing the
    raw bytes as they go by: one chunk in memory, whatever the size."""
    import hashlib

    digest = hashlib.sha256()
    head = header(size, width)
    write(head)
    stored = len(head)
    cobj = _compressor(level, width, size).compressobj(size=size)
    done = 0
    while chunk := os.pread(fd, CHUNK, done):
        done += len(chunk)
        digest.update(chunk)
        if out := cobj.compress(group(chunk, width)):
            write(out)
            stored += len(out)
    out = cobj.flush()
    write(out)
    return Encoded(digest.hexdigest(), done, stored + len(out))


# -- reading a frame -----------------------------------------------------------------------------


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    parts = []
    while n > 0:
        data = stream.read(n)
        if not data:
            break
        parts.append(data)
        n -= len(data)
    return b"".join(parts)


class FrameReader:
    """The raw bytes of a frame read from `stream`, as a stream (see module docstring)."""

    def __init__(self, stream: BinaryIO, what: str) -> None:
        import zstandard

        self._what = what
        head = _read_exactly(stream, 8)
        if len(head) < 8:
            raise self._corrupt("it is cut short")
        magic, length = struct.unpack("<II", head)
        if magic != MAGIC or length > HEADER_MAX:
            raise self._corrupt("it has no git-model header")
        try:
            meta = json.loads(_read_exactly(stream, length))
            self.size = int(meta["size"])
            self._width = int(meta.get("group", 0))
            self._chunk = int(meta.get("chunk", CHUNK))
            version = int(meta.get("format", 0))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise self._corrupt("its header is unreadable") from None
        if (
            version != FORMAT
            or self._width not in GROUPS
            or self.size < 0
            or not 0 < self._chunk <= MAX_CHUNK
            or self._chunk % 4
        ):
            raise self._corrupt(f"it is of a format this git-model does not know ({meta})")
        self._error = zstandard.ZstdError
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            stream, read_size=CHUNK, read_across_frames=False
        )
        self._buffer = b""
        self._done = 0  # raw bytes produced

    def _corrupt(self, why: str) -> CorruptObject:
        return CorruptObject(f"{self._what} is not a valid frame: {why}")

    def _decode(self, n: int) -> bytes:
        try:
            return _read_exactly(self._reader, n)
        except self._error as e:
            raise self._corrupt(f"it does not decompress ({e})") from None

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = CHUNK
        if not self._buffer:
            if self._width:
                self._buffer = ungroup(self._decode(self._chunk), self._width)
            else:
                self._buffer = self._decode(min(n, CHUNK))
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        self._done += len(out)
        if self._done > self.size:  # a zip bomb stops one byte past the size it claims
            raise self._corrupt(f"it decodes to more than the {self.size} bytes it records")
        return out
