"""Objects arriving from elsewhere (a remote's download, a local-directory remote's file):
stored in the cache only if their bytes hash to the oid they were asked for.

Unlike `Cache.store_file`, which names a work-tree file by what it hashes to, the name here is
given in advance and the bytes are the suspects: they are hashed as they arrive (a large one on
a second thread, or beside a kernel copy), refused before they take the name when they differ,
cut off one byte past the size they should have, and may be written into the work tree at the
same time (`tee_to`, see prepared.py) for the checkout that waits for them.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .cache import Cache
from .copying import SMALL_FILE, TeeThread, copy_and_hash, watch_size, write_all
from .errors import CorruptObject, OversizedObject, disk_error
from .hashing import CHUNK, HashThread, Oid
from .linuxcalls import write_back_starter


@contextlib.contextmanager
def _temp_object(cache: Cache, expected: Oid, also: int | None = None) -> Iterator[tuple[int, str]]:
    """A temp file for bytes arriving as `expected`, open for writing; removed if the
    body raises (and `also`, a work-tree copy being written beside, closed: it vanishes).
    A full disk, on opening or inside, is a `DiskFull`."""
    try:
        fd, tmp = cache.new_object()
    except OSError as e:
        if also is not None:
            os.close(also)
        raise disk_error(e, _storing(expected)) from e
    try:
        yield fd, tmp
    except BaseException as e:
        os.close(fd)
        if also is not None:
            os.close(also)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_error(e, _storing(expected)) from e
        raise


def _keep(
    cache: Cache,
    fd: int,
    tmp: str,
    expected: Oid,
    size: int,
    synced: bool,
    tee: tuple[int | None, str | None],
) -> int:
    """Make the verified temp file of `_temp_object` the object `expected`, and keep the
    work-tree copy written beside it (`tee`: its descriptor and destination) if any."""
    also, dest = tee
    try:
        cache.finish_object(fd, tmp, expected, synced=synced, size=size)
    except OSError as e:
        if also is not None:
            os.close(also)
        raise disk_error(e, _storing(expected)) from e
    if also is not None and dest is not None:
        cache.prepared.keep(expected, also, dest, size)
    return size


def store_stream(
    cache: Cache,
    stream: BinaryIO,
    expected: Oid,
    expected_size: int | None = None,
    tee_to: str | None = None,
) -> int:
    """Store bytes from a stream (a download), refusing them unless they hash to `expected`.

    With `expected_size`, reading stops one byte past it: a source that sends more than
    the object has (a padded file, an endless stream) is refused at once, before it can
    fill the disk. A full disk is a `DiskFull`; errors reading the stream pass through.
    `tee_to`: a work-tree file that will need these bytes (see prepared.py).
    """
    also = cache.prepared.start(expected, tee_to, expected_size)  # (large objects only)
    large = (expected_size or 0) > SMALL_FILE
    # a large download is hashed on a thread, and its work-tree copy written by another, while
    # this one receives and writes the cache's copy, whose bytes start for the disk as they are
    # written: about max(receive + write, hash), and little left for the flush before it is
    # named (the directory remote's kernel copies work the same way)
    kick = write_back_starter() if large else None
    with _temp_object(cache, expected, also) as (fd, tmp):
        digest: Any = HashThread() if large else hashlib.sha256()
        tee = TeeThread(fd, also) if also is not None else None
        size = 0
        limit = None if expected_size is None else expected_size + 1
        try:
            while limit is None or size < limit:
                chunk = stream.read(CHUNK if limit is None else min(CHUNK, limit - size))
                if not chunk:
                    break
                digest.update(chunk)
                try:
                    write_all(fd, chunk)
                except OSError as e:
                    raise disk_error(e, _storing(expected)) from e
                if kick:
                    kick(fd, size, len(chunk))
                size += len(chunk)
                if tee is not None:
                    tee.grown(size)
        finally:
            got = digest.hexdigest()  # (a thread: ended here whatever happened)
            if tee is not None:
                tee.close()  # (a copy that failed is short: dropped by its size)
        if expected_size is not None and size > expected_size:
            raise OversizedObject(
                f"object {expected.short} arrived with more than its {expected_size} bytes; "
                "it was refused"
            )
        if got != expected:
            raise _refused(expected, got)
    return _keep(cache, fd, tmp, expected, size, False, (also, tee_to))


def store_copy(
    cache: Cache,
    src: Path,
    expected: Oid,
    progress: Callable[[int], None] | None = None,
    tee_to: str | None = None,
) -> int:
    """Store a file from a local-directory remote: a kernel copy hashed alongside (about
    max(copy, hash) instead of their sum), refused unless it hashes to `expected`. A full
    disk is a `DiskFull`. `tee_to`: a work-tree file that will need these bytes."""
    also = cache.prepared.start(expected, tee_to, src.stat().st_size)
    with _temp_object(cache, expected, also) as (fd, tmp):
        with watch_size(fd, progress):  # (the flush overlaps the hash)
            got, size = copy_and_hash(src, fd, sync=True, also=also)
        if got != expected:
            raise _refused(expected, got)
    return _keep(cache, fd, tmp, expected, size, True, (also, tee_to))


def _storing(oid: Oid) -> str:
    return f"storing object {oid.short} in the cache"


def _refused(expected: Oid, got: str) -> CorruptObject:
    return CorruptObject(
        f"object {expected.short} arrived as other bytes (sha256 {got[:12]}); it was refused; "
        "push it again from a clone that has good bytes"
    )
