"""Downloads from a remote store: verified before they enter the cache, bad copies set aside.

Each object is looked for in the form found more often so far (a frame or raw bytes,
codec.py; `_keys`), then the other; on S3 with one GET each, its body streamed (on Azure, one
GET for a small object). A frame is
decoded as it streams into the cache, which hashes the decoded bytes: nothing enters that does
not hash to the oid. A copy that twice arrives as other bytes (or a frame that does not
decode, or decodes past the size it records) is moved to `<url>/quarantine/`, so that a push
from a clone with good bytes repairs it; raw bytes beside a bad frame are still tried.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from pathlib import Path
from typing import Any, BinaryIO, cast

from ..cache import Cache
from ..errors import CorruptObject, GitModelError, OversizedObject
from ..hashing import Oid
from ..incoming import store_copy, store_stream
from . import codec
from .base import Advance, Counting, StoreBase
from .directory import SMALL

READ_BLOCK = 8 << 20  # read-ahead per download: memory stays flat whatever the object size
BODY_BLOCK = 1 << 20  # the most an S3 body read asks of the connection at once


class Fetching(StoreBase):
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
        error: CorruptObject | None = None
        for key in self._keys(oid):
            try:
                got = self._download_key(cache, oid, key, advance, size, tee_to)
                self._saw(key)
                return got
            except OversizedObject:
                raise
            except CorruptObject as e:  # set aside: raw bytes beside a bad frame may be good
                error = e
            except FileNotFoundError:
                continue
        if error is not None:
            raise error
        if self._in_quarantine(oid):
            raise CorruptObject(
                f"object {oid.short} on remote {self.label} was found corrupt and set aside "
                "(its quarantine/ folder, or a mark in packs/); push it again from a clone "
                "that has it"
            )
        raise FileNotFoundError(errno.ENOENT, "no such object on the remote", self.key(oid))

    def _download_key(
        self,
        cache: Cache,
        oid: Oid,
        key: str,
        advance: Advance | None,
        size: int | None,
        tee_to: str | None,
    ) -> int:
        what = f"downloading object {oid.short}"
        oversized = OversizedObject(
            f"object {oid.short} on remote {self.label} is larger than the {size} bytes it "
            "has: it was refused, nothing stored; push it again from a clone that has it"
        )
        # (an S3 GET streams the whole object, which s3fs does not retry once it has begun)
        attempts = 2 if self.s3_direct else 0
        try:
            return self._retry(
                what, lambda: self._download_once(cache, oid, key, advance, size, tee_to), attempts
            )
        except OversizedObject:
            raise oversized from None
        except CorruptObject:
            pass
        try:  # once more: tell a transfer glitch from a bad copy at rest
            return self._retry(
                what, lambda: self._download_once(cache, oid, key, None, size, tee_to), attempts
            )
        except OversizedObject:
            raise oversized from None
        except CorruptObject as e:
            where = self._quarantine(oid, key)
            raise CorruptObject(
                f"object {oid.short} on remote {self.label} does not match its oid "
                f"({e}): it was refused{where}; push it again from a clone that has it"
            ) from None

    def _download_once(
        self,
        cache: Cache,
        oid: Oid,
        key: str,
        advance: Advance | None,
        size: int | None,
        tee_to: str | None = None,
    ) -> int:
        framed = codec.is_frame_name(key)
        if self.local:
            # O_NONBLOCK: a FIFO bearing an object's name must not hang the download
            with open(os.open(key, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise FileNotFoundError(errno.ENOENT, "not a regular file", key)
                if framed:
                    return self._store_frame(cache, oid, f, st.st_size, advance, size, tee_to)
                _check_size(oid, st.st_size, size)
                self.stored[oid] = st.st_size
                if st.st_size <= SMALL:
                    n = store_stream(cache, f, oid, size)
                    if advance:
                        advance(n)
                    return n
            return store_copy(cache, Path(key), oid, advance, tee_to)
        with self._open_remote(key, size) as f:
            announced = getattr(f, "size", None)
            if framed:
                body = cast(BinaryIO, f)
                return self._store_frame(cache, oid, body, announced, advance, size, tee_to)
            if isinstance(announced, int):
                _check_size(oid, announced, size)
                self.stored[oid] = announced
            stream = cast(BinaryIO, Counting(f, advance))
            return store_stream(cache, stream, oid, size, tee_to)

    def _store_frame(
        self,
        cache: Cache,
        oid: Oid,
        f: BinaryIO,
        stored: object,
        advance: Advance | None,
        size: int | None,
        tee_to: str | None,
    ) -> int:
        """Decode the frame `f` into the cache as `oid`: verified, and never past its size."""
        reader = codec.FrameReader(f, f"object {oid.short} on remote {self.label}")
        _check_size(oid, reader.size, size)
        if isinstance(stored, int):
            self.stored[oid] = stored
        stream = cast(BinaryIO, Counting(reader, advance))
        return store_stream(cache, stream, oid, reader.size if size is None else size, tee_to)

    def _open_remote(self, key: str, size: int | None) -> Any:
        """The remote file `key` as a stream that knows its `size`: on S3 one GET (`_get`); on
        Azure one GET for a non-empty object of up to SMALL bytes (`_azure_get`); elsewhere
        fsspec's open, an object store's read ahead READ_BLOCK at a time."""
        if self.s3_direct:
            return _get(self.fs, key)
        if self.azure_direct and size and size <= SMALL:  # (a range of an empty blob: 416)
            return _azure_get(self.fs, key)
        kwargs = {"block_size": READ_BLOCK, "cache_type": "readahead"} if self.atomic_put else {}
        return self.fs.open(key, "rb", **kwargs)

    def _in_quarantine(self, oid: Oid) -> bool:
        path = f"{self.root}/quarantine/{oid}"
        for p in [path, codec.frame_key(path)] if self.compressible else [path]:
            try:
                if self._size(p) >= 0:  # (one request where a look is one: base._size)
                    return True
            except (OSError, GitModelError):  # unreadable: the object is reported missing
                continue
        return False

    def _quarantine(self, oid: Oid, key: str) -> str:
        dest = f"{self.root}/quarantine/{oid}"
        if codec.is_frame_name(key):
            dest = codec.frame_key(dest)
        try:
            if self.local:
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                os.replace(key, dest)
            else:
                if not self.atomic_put:
                    self.fs.makedirs(posixpath.dirname(dest), exist_ok=True)
                self.fs.mv(key, dest)
        except Exception:
            return ""
        return " and moved to the remote's quarantine/ folder"


class _Body:
    """One S3 GET's body as a blocking stream (each read runs on s3fs's event loop): the whole
    object in one request, where s3fs's `open` asks a HEAD first and then a GET per block.

    Each trip to the event loop costs both threads ~0.1 ms, so a small read (a frame's 8-byte
    head, then its header) takes what has arrived, up to BODY_BLOCK, and keeps the rest for
    the next: a frame of a small object is then one trip, not three."""

    def __init__(self, fs: Any, response: dict[str, Any]) -> None:
        self._fs = fs
        self._body = response["Body"]
        size = response.get("ContentLength")
        self.size = size if isinstance(size, int) else None
        self._kept = b""
        self._at = 0  # where in `_kept` the next read starts (a slice of the rest per small
        # read copied the whole block each time: 4 KiB objects from a pack's ranged GET)

    def read(self, n: int = -1) -> bytes:
        from fsspec.asyn import sync

        if n < 0:
            rest = cast(bytes, sync(self._fs.loop, self._body.read, None))
            out, self._kept, self._at = self._kept[self._at :] + rest, b"", 0
            return out
        if self._at >= len(self._kept):
            self._kept = cast(bytes, sync(self._fs.loop, self._body.read, max(n, BODY_BLOCK)))
            self._at = 0
        out = self._kept[self._at : self._at + n]
        self._at += len(out)
        return out

    def __enter__(self) -> _Body:
        return self

    def __exit__(self, *exc: object) -> None:
        from fsspec.asyn import sync

        async def close() -> None:  # (on the loop that owns the connection)
            self._body.close()

        sync(self._fs.loop, close)


def _get(fs: Any, key: str, byte_range: str = "") -> _Body:
    """GET `key` from an s3fs file system (`byte_range`: only those, as "bytes=A-B"):
    FileNotFoundError if there is none."""
    bucket, path, _ = fs.split_path(key)
    ask = {"Range": byte_range} if byte_range else {}
    return _Body(fs, fs.call_s3("get_object", Bucket=bucket, Key=path, **ask))


class _AzureBody:
    """A small Azure blob in one request, where adlfs's `open` asks the blob's properties
    first (a data set's files are mostly small: a pull makes half the requests). The SDK's
    first GET of a download is held in memory whole, so it asks for SMALL + 1 bytes at most:
    a blob larger than its object is still seen to be (`size`), and refused, unread."""

    def __init__(self, fs: Any, client: Any, downloader: Any) -> None:
        self._fs = fs
        self._client = client
        self._downloader = downloader
        self.size = int(downloader.size)

    def read(self, n: int = -1) -> bytes:
        from fsspec.asyn import sync

        return cast(bytes, sync(self._fs.loop, self._downloader.read, n))

    def __enter__(self) -> _AzureBody:
        return self

    def __exit__(self, *exc: object) -> None:
        from fsspec.asyn import sync

        sync(self._fs.loop, self._client.close)  # (its transport is the file system's own)


def _azure_get(fs: Any, key: str) -> _AzureBody:
    """GET `key` from an adlfs file system: FileNotFoundError if there is none."""
    from azure.core.exceptions import ResourceNotFoundError
    from fsspec.asyn import sync

    container, path, _ = fs.split_path(key)
    client = fs.service_client.get_blob_client(container, path)

    async def start() -> Any:
        try:
            # (a range: a blob larger than it should be is never held past SMALL + 1 bytes)
            return await client.download_blob(offset=0, length=SMALL + 1, max_concurrency=1)
        except BaseException as e:
            await client.close()
            if isinstance(e, ResourceNotFoundError):
                raise FileNotFoundError(errno.ENOENT, "no such blob", key) from None
            raise

    return _AzureBody(fs, client, sync(fs.loop, start))


def _check_size(oid: Oid, found: int, size: int | None) -> None:
    if size is not None and found > size:
        raise OversizedObject(f"object {oid.short} is {found} bytes, more than its {size}")
