"""One remote object store, `<url>/objects/ab/cdef…`: the cache's own layout, behind fsspec.

Push, fetch, the pre-push hook and gc need four things from wherever a team keeps its bytes
(S3 and compatible stores, GCS, Azure, an SSH server, a shared folder): which objects are
there, put one, get one, and telling a transient failure from a real one. fsspec gives one
interface to all of them; this module adds what fsspec leaves to its callers:

- Batch existence: listing `objects/ab/` answers for every wanted object under that prefix at
  once (one LIST request per 1,000 keys on S3, one readdir on a directory); a prefix with only
  a few wanted objects is asked per object (`info`, never `exists`, which hides errors).
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
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

from ..cache import Cache
from ..errors import CorruptObject, GitModelError, MissingObject, OversizedObject
from ..hashing import Oid, hash_file
from . import crashpoint
from .directory import SMALL, DirectoryWriter, Failure
from .options import connect
from .retry import ATTEMPTS, TransferError, describe, retry

T = TypeVar("T")
Advance = Callable[[int], None]  # called with a number of bytes just moved

OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"})
LIST_THRESHOLD = 4  # more wanted objects than this under one prefix: list the prefix
READ_BLOCK = 8 << 20  # read-ahead per download: memory stays flat whatever the object size


class _Counting:
    """A read-only stream that reports the bytes read through it."""

    def __init__(self, f: Any, advance: Advance | None) -> None:
        self._f = f
        self._advance = advance

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._f.read(n)
        if data and self._advance:
            self._advance(len(data))
        return data


def _callback(advance: Advance | None) -> Any:
    """An fsspec callback that forwards byte counts to `advance`."""
    from fsspec.callbacks import Callback

    class Forward(Callback):  # type: ignore[misc]
        sent = 0

        def absolute_update(self, value: int) -> None:
            if advance and value > self.sent:
                advance(value - self.sent)
            self.sent = value

        def relative_update(self, inc: int = 1) -> None:
            self.absolute_update(self.sent + inc)

    return Forward()


class Remote:
    compressible = True  # (an LFS remote is not: its oids name the stored bytes)

    def __init__(self, name: str, url: str, fs: Any, root: str) -> None:
        self.name = name
        self.url = url
        self._fs = fs  # None for a local folder, worked with os (see `fs`)
        self.root = root
        protocol = "file" if fs is None else fs.protocol
        protocols = protocol if isinstance(protocol, tuple) else (protocol,)
        self.local = "file" in protocols or "local" in protocols
        self.atomic_put = bool(OBJECT_STORES.intersection(protocols))
        self.writer = DirectoryWriter(root)
        self._attempts = 1 if self.atomic_put else ATTEMPTS  # their clients retry already

    @classmethod
    def open(cls, name: str, url: str, options: dict[str, str]) -> Remote:
        label = url if name == url else f"{name} ({url})"
        fs, root = retry(label, f"connecting to remote {label}", lambda: connect(url, options))
        return cls(name, url, fs, root)

    @property
    def fs(self) -> Any:
        """The remote's fsspec file system (made on first use for a local folder)."""
        if self._fs is None:
            from fsspec.implementations.local import LocalFileSystem

            self._fs = LocalFileSystem()
        return self._fs

    @property
    def label(self) -> str:
        return self.url if self.name == self.url else f"{self.name} ({self.url})"

    @property
    def default_jobs(self) -> int:
        from ..workspace import default_jobs

        return default_jobs() if self.local else 16

    def key(self, oid: Oid) -> str:
        return f"{self.root}/objects/{oid[:2]}/{oid[2:]}"

    def _retry(self, what: str, fn: Callable[[], T]) -> T:
        return retry(self.label, what, fn, self._attempts)

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
        by_prefix: dict[str, list[Oid]] = defaultdict(list)
        for oid in oids:
            by_prefix[oid[:2]].append(oid)
        sizes = sizes or {}

        def check(group: list[Oid]) -> list[Oid]:
            if len(group) > LIST_THRESHOLD:
                found = self._list_prefix(group[0][:2])
                return [o for o in group if _fits(found.get(o[2:], -1), sizes.get(o))]
            return [o for o in group if _fits(self._size(o), sizes.get(o))]

        found: set[Oid] = set()
        if not by_prefix:
            return found
        with ThreadPoolExecutor(min(jobs or self.default_jobs, len(by_prefix))) as pool:
            for present in pool.map(check, by_prefix.values()):
                found.update(present)
        return found

    def plan(
        self, oids: list[Oid], sizes: Mapping[Oid, int], *, upload: bool, jobs: int = 0
    ) -> None:
        """Nothing to arrange before objects move (an LFS remote asks for hrefs here)."""

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
            posixpath.basename(str(e["name"]).rstrip("/")): _file_size(e)
            for e in listed
            if isinstance(e, dict) and "name" in e
        }

    def _size(self, oid: Oid) -> int:
        """The size of the file named for `oid` on the remote; -1 if there is none."""
        if self.local:
            try:
                st = os.stat(self.key(oid))
            except (FileNotFoundError, NotADirectoryError):
                return -1
            return st.st_size if stat.S_ISREG(st.st_mode) else -1
        try:
            info = self._retry(f"checking object {oid.short}", lambda: self.fs.info(self.key(oid)))
        except FileNotFoundError:
            return -1
        return _file_size(info)

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
            return self.writer.write(cache.path(oid), oid, self.key(oid), advance)
        except CorruptObject:
            raise self._corrupt_in_cache(cache, oid) from None

    def _upload_fs(self, cache: Cache, oid: Oid, advance: Advance | None) -> int:
        src = cache.path(oid)
        got, size = hash_file(src)  # the network is slower than this read: verify first
        if got != oid:
            raise self._corrupt_in_cache(cache, oid)
        key = self.key(oid)
        if self.atomic_put:
            crashpoint.before_visible()
            self.fs.put_file(str(src), key, callback=_callback(advance))
            crashpoint.visible()
            return size
        tmp = f"{self.root}/tmp/{oid[:12]}.{uuid.uuid4().hex}"
        self.fs.makedirs(posixpath.dirname(tmp), exist_ok=True)
        self.fs.put_file(str(src), tmp, callback=_callback(advance))
        try:
            crashpoint.before_visible()
            self.fs.makedirs(posixpath.dirname(key), exist_ok=True)
            self.fs.mv(tmp, key)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm_file(tmp)
            raise
        crashpoint.visible()
        return size

    def download(
        self,
        cache: Cache,
        oid: Oid,
        advance: Advance | None = None,
        size: int | None = None,
        tee_to: str | None = None,
    ) -> int:
        """Fetch one object into the cache, verified before it enters; returns its size.

        FileNotFoundError when the remote lacks it. A copy that twice arrives as other bytes
        is moved to the remote's quarantine folder and reported. With the object's `size`
        known, a remote copy larger than that is refused before it is read (and not
        quarantined: the size might be what lies, not the copy). `tee_to`: a work-tree file
        the checkout that asked will write with these bytes (see prepared.py).
        """
        what = f"downloading object {oid.short}"
        oversized = OversizedObject(
            f"object {oid.short} on remote {self.label} is larger than the {size} bytes it "
            "has: it was refused, nothing stored; push it again from a clone that has it"
        )
        try:
            return self._retry(what, lambda: self._download_once(cache, oid, advance, size, tee_to))
        except OversizedObject:
            raise oversized from None
        except CorruptObject:
            pass
        except FileNotFoundError:
            if self._in_quarantine(oid):
                raise CorruptObject(
                    f"object {oid.short} on remote {self.label} was found corrupt and set aside "
                    "in its quarantine/ folder; push it again from a clone that has it"
                ) from None
            raise
        try:  # once more: tell a transfer glitch from a bad copy at rest
            return self._retry(what, lambda: self._download_once(cache, oid, None, size, tee_to))
        except OversizedObject:
            raise oversized from None
        except CorruptObject:
            where = self._quarantine(oid)
            raise CorruptObject(
                f"object {oid.short} on remote {self.label} does not match its oid: it was "
                f"refused{where}; push it again from a clone that has it"
            ) from None

    def _download_once(
        self,
        cache: Cache,
        oid: Oid,
        advance: Advance | None,
        size: int | None,
        tee_to: str | None = None,
    ) -> int:
        key = self.key(oid)
        if self.local:
            # O_NONBLOCK: a FIFO bearing an object's name must not hang the download
            with open(os.open(key, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise FileNotFoundError(errno.ENOENT, "not a regular file", key)
                _check_size(oid, st.st_size, size)
                if st.st_size <= SMALL:
                    n = cache.store_stream(f, oid, size)
                    if advance:
                        advance(n)
                    return n
            return cache.store_copy(Path(key), oid, advance, tee_to)
        kwargs: dict[str, Any] = {}
        if self.atomic_put:
            kwargs = {"block_size": READ_BLOCK, "cache_type": "readahead"}
        with self.fs.open(key, "rb", **kwargs) as f:
            announced = getattr(f, "size", None)
            if isinstance(announced, int):
                _check_size(oid, announced, size)
            stream = cast(BinaryIO, _Counting(f, advance))
            return cache.store_stream(stream, oid, size, tee_to)

    def _in_quarantine(self, oid: Oid) -> bool:
        path = f"{self.root}/quarantine/{oid}"
        if self.local:
            return os.path.isfile(path)
        try:
            self._retry(f"checking object {oid.short}", lambda: self.fs.info(path))
        except (FileNotFoundError, GitModelError):
            return False
        return True

    def _quarantine(self, oid: Oid) -> str:
        dest = f"{self.root}/quarantine/{oid}"
        try:
            if self.local:
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                os.replace(self.key(oid), dest)
            else:
                if not self.atomic_put:
                    self.fs.makedirs(posixpath.dirname(dest), exist_ok=True)
                self.fs.mv(self.key(oid), dest)
        except Exception:
            return ""
        return " and moved to the remote's quarantine/ folder"


def _fits(found: int, wanted: int | None) -> bool:
    """Does a remote file of size `found` (-1: none) stand for an object of size `wanted`?"""
    return found >= 0 and (wanted is None or found == wanted)


def _file_size(info: Any) -> int:
    """The size in an fsspec info/ls entry when it is a file, else -1."""
    if not isinstance(info, dict) or info.get("type") != "file":
        return -1
    size = info.get("size")
    return size if isinstance(size, int) and size >= 0 else -1


def _check_size(oid: Oid, found: int, size: int | None) -> None:
    if size is not None and found > size:
        raise OversizedObject(f"object {oid.short} is {found} bytes, more than its {size}")
