"""Writing packs (packs.py) to a remote: small objects (up to OBJECT_MAX) are read from the
cache, each checked against its oid as it is read (a bit-rotted cache object never reaches
the remote) and compressed where that pays (codec.pack), into a pack of up to PACK_BYTES in a
temp file; then the pack is sent, then its index (an index is never visible before its pack
is whole). On a directory remote both are made durable before they are renamed into place;
on an object store each PUT is atomic. A push killed between the two leaves a pack no index
names: never read, and its objects are sent again by the next push. One pack is sent while
the next is built.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor

from ..cache import Cache
from ..copying import write_all
from ..errors import CorruptObject, GitModelError, MissingObject
from ..hashing import Oid
from . import codec
from .base import Advance
from .packed import Done, Outcome, Packed
from .packs import OBJECT_MAX, PACK_BYTES, encode_index, pack_id


class PackWriting(Packed):
    """A remote that writes packs on push (`packing`, from model.pack)."""

    def upload_packed(
        self, cache: Cache, oids: list[Oid], advance: Advance | None, done: Done
    ) -> list[Oid]:
        """Send `oids` in packs, `done` called for each (in this thread); returns those not
        sent because their cache object is larger than a pack takes."""
        larger: list[Oid] = []
        builder: _Builder | None = None
        sending: Future[list[Outcome]] | None = None
        with ThreadPoolExecutor(1) as pool:  # one pack is sent while the next is built
            try:
                for oid in oids:
                    try:
                        data = self._read_cached(cache, oid)
                    except CorruptObject as e:
                        done(oid, e)
                        continue
                    except FileNotFoundError:  # (gone since the push looked: as upload says)
                        done(oid, MissingObject(f"object {oid.short} is not in the local cache"))
                        continue
                    if data is None:
                        larger.append(oid)
                        continue
                    if builder is None:
                        builder = self._new_builder(cache)
                    builder.add(oid, data, self.level)
                    if builder.offset >= PACK_BYTES:
                        _report(sending, done, advance)
                        sending, builder = pool.submit(self._send, builder), None
                if builder is not None:
                    _report(sending, done, advance)
                    sending, builder = pool.submit(self._send, builder), None
                _report(sending, done, advance)
                sending = None
            finally:
                if builder is not None:
                    builder.drop()
                if sending is not None:
                    sending.cancel()
        return larger

    def _read_cached(self, cache: Cache, oid: Oid) -> bytes | None:
        """A cache object's bytes, checked against its oid; None if it is too large to pack."""
        with open(cache.path(oid), "rb") as f:
            data = f.read(OBJECT_MAX + 1)
        if len(data) > OBJECT_MAX:
            return None
        if hashlib.sha256(data).hexdigest() != oid:
            cache.quarantine(oid)
            raise CorruptObject(
                f"cache object {oid.short} is corrupt and was quarantined, not uploaded to "
                f"{self.label}; 'git model add' the file again, or fetch it from another remote"
            )
        return data

    def _new_builder(self, cache: Cache) -> _Builder:
        if self.local:
            fd, path = self.writer.temp("pack")
        else:
            cache.ensure()
            fd, path = tempfile.mkstemp(dir=cache.tmp, prefix="pack-")
        return _Builder(fd, path)

    def _send(self, b: _Builder) -> list[Outcome]:
        """Put the pack, then its index; the outcome of each object in it."""
        index = encode_index(b.records, b.offset, b.digest.digest())
        name = pack_id(index)
        pack_key = f"{self.root}/packs/{name}.pack"
        index_key = f"{self.root}/packs/{name}.idx"
        try:
            if self.local:
                os.fsync(b.fd)
                os.close(b.fd)
                b.fd = -1
                self.writer.place(b.path, pack_key)
                fd, tmp = self.writer.temp("idx")
                try:
                    write_all(fd, index)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self.writer.place(tmp, index_key)
            else:
                os.close(b.fd)
                b.fd = -1
                what = f"uploading pack {name[:12]}"
                self._retry(what, lambda: self._put(b.path, pack_key, Oid(name), None))
                self._retry(what, lambda: self._put_bytes(index, index_key, Oid(name)))
        except GitModelError as e:
            return [(oid, e) for oid, _, _ in b.members]
        finally:
            b.drop()
        self._packs().keep(name, index)
        out: list[Outcome] = []
        for oid, size, stored in b.members:
            self.stored[oid] = stored
            out.append((oid, size))
        return out


class _Builder:
    """A pack being written to a temp file."""

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path
        self.offset = 0
        self.digest = hashlib.sha256()
        self.records: list[tuple[bytes, int, int, int, bool]] = []
        self.members: list[tuple[Oid, int, int]] = []  # oid, size, stored
        self._seen: set[Oid] = set()

    def add(self, oid: Oid, data: bytes, level: int | None) -> None:
        if oid in self._seen:
            return
        self._seen.add(oid)
        frame = codec.pack(data, level) if level is not None else None
        stored = frame if frame is not None else data
        write_all(self.fd, stored)
        self.digest.update(stored)
        self.records.append(
            (bytes.fromhex(oid), self.offset, len(stored), len(data), frame is not None)
        )
        self.members.append((oid, len(data), len(stored)))
        self.offset += len(stored)

    def drop(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def _report(sending: Future[list[Outcome]] | None, done: Done, advance: Advance | None) -> None:
    if sending is None:
        return
    for oid, outcome in sending.result():
        if advance and isinstance(outcome, int):
            advance(outcome)
        done(oid, outcome)
