"""The few Linux calls the standard library lacks, reached through ctypes.

`syncfs` (flush a whole file system at once), `sync_file_range` (start writing a range to disk
without waiting for it) and `renameat2(RENAME_EXCHANGE)` (swap two names atomically). Each
answers None or False where the system, the C library or the file system lacks the call, and
its caller then takes the portable way (an fsync each, no write-back hint, a rename). ctypes
is imported only when one of them is first used.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


@functools.cache
def _call(name: str) -> Any:
    """The C library's `name` (errno kept), looked up once; None off Linux or where the C
    library lacks it (glibc older than the call, musl). ctypes is imported only here."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return getattr(ctypes.CDLL(None, use_errno=True), name)
    except (AttributeError, OSError):
        return None


def _last_error(path: str | Path) -> OSError:
    import ctypes

    err = ctypes.get_errno()
    return OSError(err, os.strerror(err), os.fspath(path))


@functools.cache
def write_back_starter() -> Callable[[int, int, int], None] | None:
    """`start(fd, offset, length)`: begin writing that range to disk without waiting for it
    and without dropping it from the page cache (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`:
    the bytes just fetched stay cached for the checkout that reads them next). None elsewhere."""
    call = _call("sync_file_range")
    if call is None:
        return None
    import ctypes

    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    sync_file_range_write = 2

    def start(fd: int, offset: int, length: int) -> None:
        call(fd, offset, length, sync_file_range_write)  # a failure only costs speed

    return start


def syncfs(folder: str | Path) -> bool:
    """Flush the whole file system that holds `folder` (Linux); False where there is no syncfs."""
    call = _call("syncfs")
    if call is None:
        return False
    fd = os.open(folder, os.O_RDONLY)
    try:
        if call(fd) != 0:
            raise _last_error(folder)
    finally:
        os.close(fd)
    return True


_EXCHANGE_WORKS = sys.platform.startswith("linux")


def exchange(a: str, b: str) -> bool:
    """Swap the names `a` and `b` atomically (Linux `renameat2(RENAME_EXCHANGE)`); False where
    the system or the file system cannot, or `b` does not exist: the caller renames instead.

    Renaming a new file over a large old one makes ext4 free the old file's blocks inside the
    rename and flush the new one's data first (its `auto_da_alloc` guard against zero-length
    files after a power cut): 0.3–0.4 s for 1 GiB. An exchange does neither; the caller removes
    the old file when it suits it, and uses it only where the bytes have a durable copy.
    """
    global _EXCHANGE_WORKS
    renameat2 = _call("renameat2") if _EXCHANGE_WORKS else None
    if renameat2 is None:
        _EXCHANGE_WORKS = False
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    error = _last_error(b)
    if error.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # not on this fs
        _EXCHANGE_WORKS = False
    elif error.errno != errno.ENOENT:
        raise error
    return False
