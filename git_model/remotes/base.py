"""What the two halves of a remote store share: where it is, object names, retries, sizes.

`Remote` (store.py: which objects are there, uploads) is built on `Fetching` (fetching.py:
verified downloads, quarantine), which is built on this; the split keeps each file one
concern. Both halves know the two shapes an object may take on a remote (codec.py): raw
bytes at `objects/ab/cdef…`, or a zstd frame at the same name plus `.zst`.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
import uuid
from collections.abc import Callable
from typing import Any, TypeVar, cast

from ..hashing import Oid
from . import codec, crashpoint
from .directory import DirectoryWriter
from .retry import ATTEMPTS, retry

T = TypeVar("T")
Advance = Callable[[int], None]  # called with a number of bytes just moved

OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"})
# stores asked for one object's size with one request of their own API: s3fs's `info` (and
# adlfs's) answers a missing key with a HEAD and then a LIST, to see whether it is a folder,
# and a LIST is the dearer request, on S3's price list and on its servers. S3 downloads are
# one GET too (fetching.py), where s3fs's `open` asks a HEAD and then a GET per block.
S3_DIRECT = frozenset({"s3", "s3a"})
AZURE_DIRECT = frozenset({"az", "abfs", "abfss"})
LIST_PAGE = 1000  # keys asked of one S3 LIST request (the most S3 gives)
# s3fs reads a file under twice its part size whole and sends 10 parts of 50 MiB at once: up
# to 500 MiB a file, and a push sends on 16 threads. In 5 MiB parts (S3's least), two at a
# time, one upload holds at most 10 MiB.
S3_PUT = {"chunksize": 5 << 20, "max_concurrency": 2}


class Counting:
    """A read-only stream that reports the bytes read through it."""

    def __init__(self, f: Any, advance: Advance | None) -> None:
        self._f = f
        self._advance = advance

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._f.read(n)
        if data and self._advance:
            self._advance(len(data))
        return data


def callback(advance: Advance | None) -> Any:
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


class StoreBase:
    """What every store shares: where it is, how its objects are named, how to retry."""

    compressible = True  # may hold zstd frames (codec.py); an LFS remote is not: its oids name the stored bytes

    def __init__(self, name: str, url: str, fs: Any, root: str, level: int | None = None) -> None:
        self.name = name
        self.url = url
        self._fs = fs  # None for a local folder, worked with os (see `fs`)
        self.root = root
        protocol = "file" if fs is None else fs.protocol
        protocols = protocol if isinstance(protocol, tuple) else (protocol,)
        self.local = "file" in protocols or "local" in protocols
        self.atomic_put = bool(OBJECT_STORES.intersection(protocols))
        self.s3_direct = bool(S3_DIRECT.intersection(protocols))
        self.azure_direct = bool(AZURE_DIRECT.intersection(protocols))
        self.writer = DirectoryWriter(root)
        self._attempts = 1 if self.atomic_put else ATTEMPTS  # their clients retry already
        self.level = level if self.compressible else None  # zstd level for uploads; None: raw
        self._seen = (0, 0)  # objects found here as frames, as raw bytes (see _keys)
        self._too_large_to_list = False  # (store.existing: listed whole once, it was too large)
        self._forms: dict[Oid, bool] = {}  # objects about to be fetched: True if a frame
        self._fetch_listing: dict[str, int] | None = None  # (store.plan: listed once, kept)
        self.stored: dict[Oid, int] = {}  # bytes each object moved takes on the remote

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

    def _retry(self, what: str, fn: Callable[[], T], attempts: int = 0) -> T:
        return retry(self.label, what, fn, attempts or self._attempts)

    def _keys(self, oid: Oid) -> list[str]:
        """Where `oid` may be, in the order to look: the form found more often so far on
        this remote first (at the start, a frame where this clone compresses), so a remote
        all of one kind costs one look an object where a look is a request."""
        key = self.key(oid)
        if not self.compressible:
            return [key]
        frames, raw = self._seen
        frame_first = self._forms.get(oid)  # (listed by `plan`: the form it is in)
        if frame_first is None:
            frame_first = frames > raw or (frames == raw and self.level is not None)
        return [codec.frame_key(key), key] if frame_first else [key, codec.frame_key(key)]

    def _saw(self, key: str) -> None:
        """`key` was found: the next objects are looked for in its form first (counts only
        steer the order: a race between threads costs at most a look)."""
        frames, raw = self._seen
        self._seen = (frames + 1, raw) if codec.is_frame_name(key) else (frames, raw + 1)

    def _list_flat(self, pages: int) -> dict[str, int] | None:
        """Every object of an S3 remote, name -> size, if it takes at most `pages` requests
        (else None); an empty dict where the bucket or the folder is not there."""
        try:
            return self._retry(
                "listing the remote's objects", lambda: _s3_listing(self.fs, self.root, pages)
            )
        except FileNotFoundError:
            return {}

    def _size(self, key: str) -> int:
        """The size of the file `key` on the remote; -1 if there is none."""
        if self.local:
            try:
                st = os.stat(key)
            except (FileNotFoundError, NotADirectoryError):
                return -1
            return st.st_size if stat.S_ISREG(st.st_mode) else -1
        what = f"checking object {posixpath.basename(key)[:10]}"
        try:
            if self.s3_direct:
                bucket, path, _ = self.fs.split_path(key)
                head = self._retry(
                    what, lambda: self.fs.call_s3("head_object", Bucket=bucket, Key=path)
                )
                size = head.get("ContentLength")
                return size if isinstance(size, int) and size >= 0 else -1
            if self.azure_direct:
                return self._retry(what, lambda: _azure_size(self.fs, key))
            return file_size(self._retry(what, lambda: self.fs.info(key)))
        except FileNotFoundError:
            return -1

    # -- putting one file, never visible in part -------------------------------------------

    def _put_bytes(self, data: bytes, key: str, oid: Oid) -> None:
        if self.atomic_put:
            crashpoint.before_visible()
            self.fs.pipe_file(key, data)
            crashpoint.visible()
            return
        tmp = f"{self.root}/tmp/{oid[:12]}.{uuid.uuid4().hex}"
        self.fs.makedirs(posixpath.dirname(tmp), exist_ok=True)
        self.fs.pipe_file(tmp, data)
        self._move_into_place(tmp, key)

    def _put(self, src: str, key: str, oid: Oid, advance: Advance | None) -> None:
        """Send the local file `src` to `key`, never visible there in part."""
        if self.atomic_put:
            crashpoint.before_visible()
            self.fs.put_file(src, key, callback=callback(advance), **self._put_options())
            crashpoint.visible()
            return
        tmp = f"{self.root}/tmp/{oid[:12]}.{uuid.uuid4().hex}"
        self.fs.makedirs(posixpath.dirname(tmp), exist_ok=True)
        self.fs.put_file(src, tmp, callback=callback(advance))
        self._move_into_place(tmp, key)

    def _put_options(self) -> dict[str, int]:
        """What bounds the memory of one upload, where the backend takes it (s3fs)."""
        protocol = self.fs.protocol
        protocols = protocol if isinstance(protocol, tuple) else (protocol,)
        return S3_PUT if "s3" in protocols else {}

    def _move_into_place(self, tmp: str, key: str) -> None:
        try:
            crashpoint.before_visible()
            self.fs.makedirs(posixpath.dirname(key), exist_ok=True)
            self.fs.mv(tmp, key)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm_file(tmp)
            raise
        crashpoint.visible()


def _s3_listing(fs: Any, root: str, pages: int) -> dict[str, int] | None:
    """name ("ab/cdef…", a frame with its suffix) -> size of every object of the S3 remote at
    `root`, in at most `pages` LIST requests of LIST_PAGE keys; None when it holds more."""
    bucket, path, _ = fs.split_path(root)
    prefix = f"{path.strip('/')}/objects/".lstrip("/")
    found: dict[str, int] = {}
    token: str | None = None
    for _ in range(pages):
        ask: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": LIST_PAGE}
        if token:
            ask["ContinuationToken"] = token
        page = fs.call_s3("list_objects_v2", **ask)
        for item in page.get("Contents", []):
            key, size = item.get("Key"), item.get("Size")
            if isinstance(key, str) and key.startswith(prefix) and isinstance(size, int):
                found[key[len(prefix) :]] = size
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return found
    return None


def _azure_size(fs: Any, key: str) -> int:
    """A blob's size with one request (adlfs's `info` lists the prefix after a miss)."""
    from azure.core.exceptions import ResourceNotFoundError
    from fsspec.asyn import sync

    container, path, _ = fs.split_path(key)

    async def properties() -> int:
        try:
            async with fs.service_client.get_blob_client(container, path) as blob:
                found = await blob.get_blob_properties()
        except ResourceNotFoundError:
            raise FileNotFoundError(key) from None
        return int(found.size)

    return cast(int, sync(fs.loop, properties))


def file_size(info: Any) -> int:
    """The size in an fsspec info/ls entry when it is a file, else -1."""
    if not isinstance(info, dict) or info.get("type") != "file":
        return -1
    size = info.get("size")
    return size if isinstance(size, int) and size >= 0 else -1
