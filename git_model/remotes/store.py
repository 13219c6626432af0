"""One remote object store, `<url>/objects/ab/cdef…`: the cache's own layout, behind fsspec.

Push, fetch, the pre-push hook and gc need four things from wherever a team keeps its bytes
(S3 and compatible stores, GCS, Azure, an SSH server, a shared folder): which objects are
there, put one, get one, and telling a transient failure from a real one. fsspec gives one
interface to all of them; this module adds what fsspec leaves to its callers:

- Batch existence: listing `objects/ab/` answers for every wanted object under that prefix at
  once (one LIST request per 1,000 keys on S3, one readdir on a directory), and on S3 many
  wanted objects on a small remote are answered by one flat listing of it all (a first push
  of a data set: one LIST instead of two HEADs a file); a prefix with only
  a few wanted objects is asked per object (`info`, never `exists`, which hides errors; on
  S3 and Azure one request of their own API, where fsspec's `info` follows a miss with a
  listing).
- Atomic uploads: an object store's PUT is atomic (nothing is visible until it completes), so
  those write the final key directly; any other file system gets a temp name under `tmp/` and
  a rename, so no reader ever sees a partial object under its final name. A directory remote
  (directory.py) also makes the bytes durable before the rename, many small objects with one
  flush (`batch()`): a push must not report bytes safe that are still in RAM.
- Verification both ways: an upload hashes the cache object as it sends it, so a bit-rotted
  cache object never poisons the remote; a download goes through the cache's
  verify-before-rename, and a remote object that twice fails to match its name is moved to
  `<url>/quarantine/` so that a push from a clone with good bytes can repair it.
- Retries with exponential backoff for transient errors (retry.py); a final failure names the
  object and the remote.
- Compression (codec.py): with a zstd level set, an object that compresses by 10% or more is
  stored as a frame, `objects/ab/cdef….zst`; reads look for a frame first, then raw bytes,
  and the decoded bytes are verified like any download. A store that must hold exactly the
  bytes its names hash (LFS) sets `compressible = False` and never writes or looks for one.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import tempfile
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from ..cache import Cache
from ..errors import CorruptObject, GitModelError, MissingObject
from ..hashing import Oid, hash_bytes, hash_file
from . import codec
from .base import Advance, file_size
from .directory import Failure
from .options import connect
from .packwrite import PackWriting
from .retry import TransferError, describe, retry

LIST_THRESHOLD = 4  # more wanted objects than this under one prefix: list the prefix
# On S3, this many wanted objects or more: list the whole remote first, if that takes at most
# one LIST page (1,000 keys) per FLAT_PER_PAGE of them (a LIST is priced as ~12 HEADs; each
# object costs up to two HEADs, its frame and its raw bytes, where its prefix is not listed)
FLAT_FROM = 32
FLAT_PER_PAGE = 8
FLAT_PAGES = 64  # and at most this many pages (64,000 names held at once; a larger remote
# is asked per prefix, as before, and not listed whole again by the same Remote)


class Remote(PackWriting):
    """One remote store (see the module docstring); downloads come from `Fetching`, packs
    from `Packed` and `PackWriting`."""

    @classmethod
    def open(
        cls,
        name: str,
        url: str,
        options: dict[str, str],
        compress: object = "off",
        pack: object = "off",
        index_dir: Path | None = None,
    ) -> Remote:
        """`compress`: the `model.compress` setting for uploads (auto, off, a zstd level);
        `model.remote.NAME.compress` overrides it for this remote. `pack`: model.pack for
        uploads (auto: many small objects go in packs; off), `model.remote.NAME.pack` over
        it. `index_dir`: where the indexes of the remote's packs are kept (the cache's)."""
        level = codec.parse_level(options.get("compress", compress))
        packing = parse_pack(options.get("pack", pack))
        label = url if name == url else f"{name} ({url})"
        fs, root = retry(label, f"connecting to remote {label}", lambda: connect(url, options))
        remote = cls(name, url, fs, root, level)
        remote.packing = packing
        remote.index_dir = index_dir
        return remote

    # -- which objects are there -----------------------------------------------------------------

    def existing(
        self,
        oids: Collection[Oid],
        jobs: int = 0,
        sizes: Mapping[Oid, int] | None = None,
        *,
        for_upload: bool = False,
    ) -> set[Oid]:
        """The subset of `oids` the remote holds: prefix listings where many are wanted.

        Only a file counts, and where `sizes` gives an object's size, only a file of that size:
        a truncated copy, or a directory or junk that merely bears an object's name, is not
        the object, so a push replaces it and gc never drops the only good copy for it.
        """
        sizes = sizes or {}
        found: set[Oid] = set(self.packed(oids, dict(sizes)))
        if found:
            oids = [o for o in oids if o not in found]
        listed = self._flat_listing(len(oids))
        if listed is not None:
            return found | {
                o
                for o in oids
                if _listed(listed, f"{o[:2]}/{o[2:]}", sizes.get(o), self.compressible)
            }
        by_prefix: dict[str, list[Oid]] = defaultdict(list)
        for oid in oids:
            by_prefix[oid[:2]].append(oid)

        def check(group: list[Oid]) -> list[Oid]:
            if len(group) > LIST_THRESHOLD:
                found = self._list_prefix(group[0][:2])
                return [o for o in group if _listed(found, o[2:], sizes.get(o), self.compressible)]
            return [o for o in group if self._holds(o, sizes.get(o))]

        if not by_prefix:
            return found
        with ThreadPoolExecutor(min(jobs or self.default_jobs, len(by_prefix))) as pool:
            for present in pool.map(check, by_prefix.values()):
                found.update(present)
        return found

    def plan(
        self, oids: list[Oid], sizes: Mapping[Oid, int], *, upload: bool, jobs: int = 0
    ) -> None:
        """Before many objects are fetched from S3, the form each is in (frame or raw bytes)
        from one flat listing, when it is small enough (as in `existing`): on a remote of
        both forms each is then one GET, not a miss first half the time. Objects not listed
        are looked for in both forms, as always (an LFS remote asks for hrefs here)."""
        self._forms = {}
        if upload or not self.compressible:
            return
        if self._planned:  # (read from packs by fetch_packed)
            oids = [o for o in oids if o not in self._planned]
        # (a fetch asks a batch at a time, and a fetch changes nothing on the remote: one
        # listing serves every batch; a listing per batch was the whole remote each time)
        listed = self._fetch_listing
        if listed is None:
            listed = self._fetch_listing = self._flat_listing(len(oids))
        if listed is None:
            return
        for oid in oids:
            name = f"{oid[:2]}/{oid[2:]}"
            if listed.get(codec.frame_key(name), -1) > 0:
                self._forms[oid] = True
            elif name in listed:
                self._forms[oid] = False

    def _flat_listing(self, wanted: int) -> dict[str, int] | None:
        """Every object of the remote (name -> size) from one flat listing, where that is
        cheap: on S3, for `wanted` objects or more, within the pages FLAT_* allow; else None
        (and a remote found too large is not listed whole again)."""
        if not self.s3_direct or wanted < FLAT_FROM or self._too_large_to_list:
            return None
        listed = self._list_flat(min(FLAT_PAGES, max(1, wanted // FLAT_PER_PAGE)))
        self._too_large_to_list = listed is None
        return listed

    def _list_prefix(self, prefix: str) -> dict[str, int]:
        """name -> size of each file under `objects/PREFIX/` (-1 for anything not a file)."""
        path = f"{self.root}/objects/{prefix}"
        if self.local:
            found = {}
            try:
                with os.scandir(path) as entries:
                    for e in entries:
                        found[e.name] = e.stat().st_size if e.is_file() else -1
            except (FileNotFoundError, NotADirectoryError):
                pass
            return found

        def ls() -> list[dict[str, Any]]:
            self.fs.invalidate_cache(path)
            return cast("list[dict[str, Any]]", self.fs.ls(path, detail=True))

        try:
            listed = self._retry(f"listing {path}", ls)
        except FileNotFoundError:
            return {}
        return {
            posixpath.basename(str(e["name"]).rstrip("/")): file_size(e)
            for e in listed
            if isinstance(e, dict) and "name" in e
        }

    def _holds(self, oid: Oid, size: int | None) -> bool:
        """Does the remote hold `oid`: raw bytes of that size, or a frame (not empty)? Looked
        for in the order of `_keys`."""
        for key in self._keys(oid):
            found = self._size(key)
            if found > 0 if codec.is_frame_name(key) else _fits(found, size):
                self._saw(key)
                return True
        return False

    # -- moving one object ---------------------------------------------------------------------

    def upload(self, cache: Cache, oid: Oid, advance: Advance | None = None) -> int:
        """Send one cache object; returns its size. The remote never shows a partial object."""
        src = cache.path(oid)
        if not src.is_file():
            raise MissingObject(f"object {oid.short} is not in the local cache")
        send = self._upload_local if self.local else self._upload_fs
        what = f"uploading object {oid.short}"
        try:
            size = self._retry(what, lambda: send(cache, oid, advance))
        except FileNotFoundError as e:  # a bucket or folder that is not there
            raise TransferError(
                f"{what} to remote {self.label} failed: {e}; check that the remote exists"
            ) from e
        return size

    @contextlib.contextmanager
    def batch(self) -> Iterator[list[tuple[Oid, int, str]]]:
        """Uploads inside share one flush to disk (a directory remote; elsewhere each PUT or
        rename stands alone: see DirectoryWriter.batch). Yields a list that, on leaving, holds
        the uploads that failed at that flush: (oid, size, message)."""
        failed: list[tuple[Oid, int, str]] = []
        if not self.local:
            yield failed
            return
        late: list[Failure] = []
        with self.writer.batch(late):
            yield failed
        for oid, size, e in late:
            what = f"uploading object {oid.short}"
            failed.append((oid, size, f"{what} on remote {self.label} failed: {describe(e)}"))

    def finish_uploads(self) -> None:
        """Make what the uploads so far renamed into place durable (a directory remote)."""
        if self.local:
            self.writer.finish()

    def _corrupt_in_cache(self, cache: Cache, oid: Oid) -> CorruptObject:
        cache.quarantine(oid)
        return CorruptObject(
            f"cache object {oid.short} is corrupt and was quarantined, not uploaded to "
            f"{self.label}; 'git model add' the file again, or fetch it from another remote"
        )

    def _upload_local(self, cache: Cache, oid: Oid, advance: Advance | None) -> int:
        try:
            size, self.stored[oid] = self.writer.write(
                cache.path(oid), oid, self.key(oid), advance, self.level
            )
        except CorruptObject:
            raise self._corrupt_in_cache(cache, oid) from None
        return size

    def _upload_fs(self, cache: Cache, oid: Oid, advance: Advance | None) -> int:
        src = cache.path(oid)
        if self.level is not None:
            sent = self._upload_frame(cache, oid, advance, self.level)
            if sent is not None:
                return sent
        got, size = hash_file(src, ours=True)  # (the network is slower: verify first)
        if got != oid:
            raise self._corrupt_in_cache(cache, oid)
        self._put(str(src), self.key(oid), oid, advance)
        self.stored[oid] = size
        return size

    def _upload_frame(
        self, cache: Cache, oid: Oid, advance: Advance | None, level: int
    ) -> int | None:
        """Send `oid` as a frame if it compresses by 10% (its size), else None: send it raw.
        The frame is made in the cache's tmp/ (hashing the object as it is read), then sent."""
        fd = os.open(cache.path(oid), os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            if size <= codec.WHOLE:
                data = os.read(fd, size + 1)
                if hash_bytes(data) != oid:
                    raise self._corrupt_in_cache(cache, oid)
                frame = codec.pack(data, level)
                if frame is None:
                    return None
                self._put_bytes(frame, codec.frame_key(self.key(oid)), oid)
                self.stored[oid] = len(frame)
                if advance:
                    advance(len(data))
                return len(data)
            width = codec.probe(fd, size, level)
            if width is None:
                return None
            cache.ensure()
            with tempfile.NamedTemporaryFile(dir=cache.tmp, prefix="frame-") as tmp:
                encoded = codec.encode(fd, size, width, level, tmp.write)
                tmp.flush()
                if encoded.digest != oid:
                    raise self._corrupt_in_cache(cache, oid)
                self._put(tmp.name, codec.frame_key(self.key(oid)), oid, None)
        finally:
            os.close(fd)
        self.stored[oid] = encoded.stored
        if advance:
            advance(encoded.size)
        return encoded.size


def parse_pack(value: object) -> bool:
    """model.pack: auto (write packs) or off."""
    text = str(value).strip().lower()
    if text in ("auto", "on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0", ""):
        return False
    raise GitModelError(f"model.pack is {value!r}: set it to auto or off")


def _listed(listing: Mapping[str, int], name: str, size: int | None, frames: bool) -> bool:
    """Does a listing (name -> size) hold the object `name`: raw bytes of its size, or (where
    the store keeps frames) a frame, not empty?"""
    return _fits(listing.get(name, -1), size) or (
        frames and listing.get(codec.frame_key(name), -1) > 0
    )


def _fits(found: int, wanted: int | None) -> bool:
    """Does a remote file of size `found` (-1: none) stand for an object of size `wanted`?"""
    return found >= 0 and (wanted is None or found == wanted)
