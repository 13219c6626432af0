"""Packs (packs.py) on a remote: which objects they hold, and reading them a span of
neighbours at a time (writing them: packwrite.py).

- Which objects a remote holds in packs: one listing of `packs/` per command, each index not
  yet in the cache's `packs/` fetched once, checked against its name, and kept.
- Reading: the wanted objects of a pack are read in spans of neighbours (one ranged read per
  span: a GET with a Range on S3), each object decoded if it is a frame and checked against
  its oid before it enters the cache. One that does not match is read once more on its own;
  if it is still wrong, a marker `packs/<oid>.bad` says so (a pack cannot lose one object;
  the listing of packs/ each command makes sees the marks). The remote then counts the
  object as missing, so a push from a clone with good bytes sends it again, loose, and a
  fetch takes that copy.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import tempfile
import weakref
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, BinaryIO, cast

from ..cache import Cache
from ..errors import CorruptObject, GitModelError, OversizedObject
from ..hashing import Oid
from ..incoming import store_stream
from . import codec
from .base import LIST_PAGE, Advance
from .fetching import READ_BLOCK, Fetching, _get
from .packs import (
    INDEX_MAX,
    BadIndex,
    Entry,
    PackSet,
    check_index,
    is_pack_id,
)

SPAN_BYTES = 16 << 20  # one ranged read covers neighbouring packed objects up to this much
SPAN_GAP = 256 << 10  # neighbours this close are read in one range (the gap read and dropped)
MARK = ".bad"  # packs/<oid>.bad: the packed copy of <oid> is bad (listed with the indexes)

Outcome = tuple[Oid, int | BaseException]
Done = Callable[[Oid, int | BaseException], None]


class Packed(Fetching):
    """A remote's packs: which objects they hold, writing and reading them."""

    packing = False  # a push writes packs (model.pack = auto; Remote.open sets it)
    index_dir: Path | None = None  # where indexes are kept (the cache's packs/; else a temp dir)
    _pack_set: PackSet | None = None
    _marks: set[str] | None = None
    _planned: dict[Oid, Entry] | None = None

    # -- which objects the packs hold -------------------------------------------------------

    def packed(
        self, oids: Collection[Oid], sizes: dict[Oid, int] | None = None
    ) -> dict[Oid, Entry]:
        """Where each of `oids` held in a pack of this remote is (and is not marked bad; with
        `sizes`, of the size given)."""
        packs = self._packs()
        found = packs.find(oids) if packs.indexes else {}
        if not found:
            return found
        marks = self._quarantine_marks()
        sizes = sizes or {}
        return {o: e for o, e in found.items() if o not in marks and sizes.get(o, e.size) == e.size}

    def _packs(self) -> PackSet:
        if self._pack_set is not None:
            return self._pack_set
        folder = self.index_dir
        if folder is None:
            tmp = tempfile.mkdtemp(prefix="git-model-packs-")
            weakref.finalize(self, _remove_tree, tmp)
            folder = Path(tmp)
        packs = self._pack_set = PackSet(folder)
        names = self._list_names("packs")
        self._marks = {n[: -len(MARK)] for n in names if n.endswith(MARK)}
        for name in (n[:-4] for n in names if n.endswith(".idx")):
            if not is_pack_id(name) or packs.load(name):
                continue
            data = self._fetch_index(name)
            if data is not None:
                packs.keep(name, data)
        return packs

    def _fetch_index(self, name: str) -> bytes | None:
        """Index `name` from the remote, checked; one that twice does not check out is moved
        to the remote's quarantine/packs/ (its objects then count as missing: a push sends
        them again) and None returned."""
        key = f"{self.root}/packs/{name}.idx"
        for _ in range(2):  # (once more: tell a transfer glitch from a bad copy at rest)
            data = self._retry(f"reading pack index {name[:12]}", lambda: self._read_whole(key))
            with contextlib.suppress(BadIndex):
                check_index(data, name)
                return data
        self._move_aside(key, f"{self.root}/quarantine/packs/{name}.idx")
        return None

    def _read_whole(self, key: str) -> bytes:
        with self._open_at(key, 0, INDEX_MAX + 1) as f:
            return _read_exactly(f, INDEX_MAX + 1)

    def _list_names(self, folder: str) -> list[str]:
        """The names of the files under `<root>/<folder>/`."""
        path = f"{self.root}/{folder}"
        try:
            if self.local:
                names = os.listdir(path)
            elif self.s3_direct:
                names = self._retry(f"listing {path}", lambda: _s3_names(self.fs, path))
            else:

                def ls() -> list[str]:
                    self.fs.invalidate_cache(path)
                    return [
                        posixpath.basename(str(n).rstrip("/"))
                        for n in self.fs.ls(path, detail=False)
                    ]

                names = self._retry(f"listing {path}", ls)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return names

    def _in_quarantine(self, oid: Oid) -> bool:
        return oid in self._quarantine_marks() or super()._in_quarantine(oid)

    def _quarantine_marks(self) -> set[str]:
        self._packs()  # (its listing of packs/ finds the marks)
        if self._marks is None:
            self._marks = set()
        return self._marks

    # -- reading ------------------------------------------------------------------------------

    def plan_packed(self, oids: list[Oid], sizes: dict[Oid, int]) -> bool:
        """Before a fetch of `oids`: note those held in packs, for `fetch_packed` to read
        (and `plan` to leave out); whether there are any."""
        self._planned = self.packed(oids, sizes)
        return bool(self._planned)

    def fetch_packed(
        self, cache: Cache, sizes: dict[Oid, int], jobs: int, advance: Advance | None, done: Done
    ) -> set[Oid]:
        """Fetch the packed objects `plan_packed` found, `done` called for each (in this
        thread); returns them."""
        planned = self._planned or {}
        spans = _spans(planned)
        if not spans:
            return set()
        if self.local:  # (a local disk reads as fast in this thread: threads only hand over)
            for span in spans:
                for oid, outcome in self._read_span(cache, span, sizes, advance):
                    done(oid, outcome)
            return set(planned)
        pool = ThreadPoolExecutor(max(1, min(jobs or self.default_jobs, len(spans))))
        try:
            futures = [pool.submit(self._read_span, cache, s, sizes, advance) for s in spans]
            for fut in as_completed(futures):
                for oid, outcome in fut.result():
                    done(oid, outcome)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return set(planned)

    def _read_span(
        self,
        cache: Cache,
        span: list[tuple[Oid, Entry]],
        sizes: dict[Oid, int],
        advance: Advance | None,
    ) -> list[Outcome]:
        first, last = span[0][1], span[-1][1]
        start, end = first.offset, last.offset + last.stored
        key = f"{self.root}/packs/{first.pack}.pack"
        out: list[Outcome] = []
        try:
            with self._open_at(key, start, end) as f:
                at = start
                for oid, e in span:
                    _read_exactly(f, e.offset - at)  # (a gap: objects not wanted)
                    data = _read_exactly(f, e.stored)
                    at = e.offset + len(data)
                    out.append(
                        (oid, self._store_packed(cache, oid, e, data, sizes.get(oid), advance))
                    )
        except (OSError, GitModelError, ValueError):
            pass  # the rest are read one at a time, each retried
        for oid, e in span[len(out) :]:
            out.append((oid, self._store_packed(cache, oid, e, None, sizes.get(oid), advance)))
        return out

    def _store_packed(
        self,
        cache: Cache,
        oid: Oid,
        e: Entry,
        data: bytes | None,
        size: int | None,
        advance: Advance | None,
    ) -> int | BaseException:
        key = f"{self.root}/packs/{e.pack}.pack"
        for attempt in range(2):
            try:
                if data is None or attempt:
                    what = f"downloading object {oid.short}"
                    data = self._retry(what, lambda: self._read_one(key, e))
                got = _store(cache, oid, e, data, size, f"object {oid.short} in pack {e.pack[:12]}")
            except (CorruptObject, OversizedObject):
                continue
            except (OSError, GitModelError) as err:
                return err
            self.stored[oid] = e.stored
            if advance:
                advance(got)
            return got
        return self._bad_packed(cache, oid, e, size, advance)

    def _read_one(self, key: str, e: Entry) -> bytes:
        with self._open_at(key, e.offset, e.offset + e.stored) as f:
            return _read_exactly(f, e.stored)

    def _bad_packed(
        self, cache: Cache, oid: Oid, e: Entry, size: int | None, advance: Advance | None
    ) -> int | BaseException:
        """The packed copy of `oid` is bad: mark it so, and take a loose copy if there is one."""
        mark = f"{self.root}/packs/{oid}{MARK}"
        with contextlib.suppress(Exception):
            if self.local:
                os.makedirs(os.path.dirname(mark), exist_ok=True)
                with open(mark, "w") as f:
                    f.write(e.pack + "\n")
            else:
                self._put_bytes((e.pack + "\n").encode(), mark, oid)
        self._quarantine_marks().add(oid)
        try:
            return self.download(cache, oid, advance, size)
        except FileNotFoundError:
            pass
        except (OSError, GitModelError) as err:
            return err
        return CorruptObject(
            f"object {oid.short} in pack {e.pack[:12]} on remote {self.label} does not match "
            f"its oid: it was refused and marked bad (packs/{oid[:12]}…{MARK}); push it "
            "again from a clone that has it"
        )

    def _open_at(self, key: str, start: int, end: int) -> Any:
        """The bytes of `key` from `start` (up to `end`) as a stream."""
        if self.local:
            f = open(os.open(key, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb")  # noqa: SIM115 (the caller's `with`)
            f.seek(start)
            return f
        if self.s3_direct:
            return _get(self.fs, key, f"bytes={start}-{max(start, end - 1)}")
        f = self.fs.open(
            key, "rb", block_size=min(READ_BLOCK, max(end - start, 1 << 16)), cache_type="readahead"
        )
        f.seek(start)
        return f

    def _move_aside(self, key: str, dest: str) -> None:
        with contextlib.suppress(Exception):
            if self.local:
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                os.replace(key, dest)
            else:
                if not self.atomic_put:
                    self.fs.makedirs(posixpath.dirname(dest), exist_ok=True)
                self.fs.mv(key, dest)


def _store(cache: Cache, oid: Oid, e: Entry, data: bytes, size: int | None, what: str) -> int:
    """Store a packed object's bytes (decoded, if a frame) as `oid`, checked."""
    if len(data) < e.stored:
        raise CorruptObject(f"{what} is cut short")
    if size is not None and e.size != size:
        raise CorruptObject(f"{what} has {e.size} bytes, not {size}")
    stream: BinaryIO = io.BytesIO(data)
    if e.frame:
        reader = codec.FrameReader(stream, what)
        if reader.size != e.size:
            raise CorruptObject(f"{what} records {reader.size} bytes, not {e.size}")
        stream = cast(BinaryIO, reader)
    return store_stream(cache, stream, oid, e.size)


def _spans(planned: dict[Oid, Entry]) -> list[list[tuple[Oid, Entry]]]:
    """The planned objects in runs of neighbours of one pack, each read with one request."""
    by_pack: dict[str, list[tuple[Oid, Entry]]] = {}
    for oid, e in planned.items():
        by_pack.setdefault(e.pack, []).append((oid, e))
    spans: list[list[tuple[Oid, Entry]]] = []
    for members in by_pack.values():
        members.sort(key=lambda m: m[1].offset)
        span: list[tuple[Oid, Entry]] = []
        for oid, e in members:
            if span:
                start, prev = span[0][1].offset, span[-1][1]
                gap = e.offset - (prev.offset + prev.stored)
                if gap < 0 or gap > SPAN_GAP or e.offset + e.stored - start > SPAN_BYTES:
                    spans.append(span)
                    span = []
            span.append((oid, e))
        if span:
            spans.append(span)
    return spans


def _read_exactly(f: Any, n: int) -> bytes:
    parts: list[bytes] = []
    while n > 0:
        data = f.read(min(n, 1 << 20))
        if not data:
            break
        parts.append(data)
        n -= len(data)
    return b"".join(parts)


def _s3_names(fs: Any, path: str) -> list[str]:
    bucket, prefix, _ = fs.split_path(path)
    prefix = f"{prefix.strip('/')}/".lstrip("/")
    names: list[str] = []
    token: str | None = None
    while True:
        ask: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": LIST_PAGE}
        if token:
            ask["ContinuationToken"] = token
        page = fs.call_s3("list_objects_v2", **ask)
        for item in page.get("Contents", []):
            key = item.get("Key")
            if isinstance(key, str) and key.startswith(prefix) and "/" not in key[len(prefix) :]:
                names.append(key[len(prefix) :])
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return names


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
