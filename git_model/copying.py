"""Moving bytes between open files, hashing them on the way, as fast as the kernel allows.

A large file is copied by the kernel (`copy_file_range`: a reflink on btrfs/xfs) in one thread
while another hashes the same bytes from the page cache, so a verified copy costs about
max(copy, hash) rather than their sum; a small one goes through one buffer. How the copy then
gets its name in the work tree is newfiles.py's; the Linux calls that speed the flushing up
(`syncfs`, write-back) are linuxcalls.py's.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from .hashing import CHUNK, Oid, hash_mapped, hash_stream, read_size, update_mapped
from .linuxcalls import write_back_starter

SMALL_FILE = CHUNK  # up to this size a file is copied through one buffer, with no helper thread
WRITE_BACK_STEP = 64 << 20
# The most one write(2) hands the kernel. On a Linux 6.18 VM (ext4 gives a write page-cache folios
# as large as the write) 1 MiB writes from a buffer measured 1.4-2.7 s a GiB and 128-512 KiB
# writes 0.27-0.36 s, in alternation (the likely cause: 1 MiB folios come from memory the host
# has taken back, free page reporting). Elsewhere it costs a system call more per 512 KiB.
WRITE_STEP = 512 << 10


def copy_range(
    src: int, dst: int, *, write_back: bool = False, landed: Callable[[int], None] | None = None
) -> None:
    """Copy all of `src` to the start of `dst` by explicit offsets (neither file position moves,
    so another thread may read `src` meanwhile): in the kernel where it can (a reflink on
    btrfs/xfs), else through a buffer (`copy_some`). `write_back`: start writing each copied
    64 MiB to disk at once, so that the fsync that follows has little left to wait for.
    `landed(n)`: told after each 64 MiB step that the first n bytes are there."""
    kick = write_back_starter() if write_back else None
    step = WRITE_BACK_STEP if kick or landed else 1 << 30
    done = 0
    while n := copy_some(src, dst, step, done, done):
        if kick:
            kick(dst, done, n)
        done += n
        if landed:
            landed(done)


def copy_some(src: int, dst: int, length: int, src_at: int, dst_at: int) -> int:
    """Copy up to `length` bytes from offset `src_at` of `src` to `dst_at` of `dst` (fewer at
    the end of `src`): in the kernel where it can, else through a buffer. Returns how many."""
    done = 0
    try:
        while done < length:
            n = os.copy_file_range(src, dst, length - done, src_at + done, dst_at + done)
            if not n:
                return done
            done += n
        return done
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    while done < length:
        chunk = os.pread(src, min(CHUNK, length - done), src_at + done)
        if not chunk:
            break
        pwrite_all(dst, chunk, dst_at + done)
        done += len(chunk)
    return done


def fsync_path(path: str | Path) -> None:
    """fsync the file or folder at `path`."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[:WRITE_STEP]) :]


def pwrite_all(fd: int, data: bytes, at: int) -> None:
    """`write_all` at offset `at` of `fd` (its position does not move)."""
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view[:WRITE_STEP], at)
        view, at = view[n:], at + n


def write_if_can(fd: int, data: bytes) -> int | None:
    """`write_all` to a second, optional copy: `fd` while it works, None once a write failed
    (the copy is then short, and its owner, checking its size, drops it)."""
    try:
        write_all(fd, data)
    except OSError:
        return None
    return fd


class TeeThread:
    """A second copy of a file being written, made on a thread of its own by kernel copies
    from the first (`copy_file_range`) as it grows, for a reader that receives, hashes and
    writes the first copy meanwhile (a download): no second stream of writes from the
    reader's buffers, which cost far more here than the kernel's copy. `grown(size)` says
    how far the first copy is written. `close` returns the copy's descriptor, or None if it
    failed (the copy is then short: its owner, checking its size, drops it)."""

    def __init__(self, src: int, dst: int) -> None:
        import queue

        self._src, self._dst, self._done = src, dst, 0
        self._failed = False
        self._sizes: queue.Queue[int | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (size := self._sizes.get()) is not None:
            if not self._failed:
                try:
                    self._copy(size)
                except OSError:
                    self._failed = True

    def _copy(self, size: int) -> None:
        while (done := self._done) < size:
            n = copy_some(self._src, self._dst, size - done, done, done)
            if n <= 0:
                raise OSError(errno.EIO, "the copy made no progress")
            self._done = done + n

    def grown(self, size: int) -> None:
        self._sizes.put(size)

    def close(self) -> int | None:
        if self._thread.is_alive():
            self._sizes.put(None)
            self._thread.join()
        return None if self._failed else self._dst


def _copy_through(
    src: int, dst: int, expected: int, sync: bool, also: int | None = None
) -> tuple[Oid, int]:
    """Read, hash and write in one thread: for small files (of `expected` bytes), where a
    helper thread costs more than the copy itself."""
    digest = hashlib.sha256()
    size = 0
    while chunk := os.read(src, read_size(expected, size)):
        digest.update(chunk)
        write_all(dst, chunk)
        if also is not None:
            also = write_if_can(also, chunk)
        size += len(chunk)
    if sync:
        os.fsync(dst)
    return Oid(digest.hexdigest()), size


def copy_and_hash_fd(
    src: int, dst: int, size: int, sync: bool, also: int | None = None, *, ours: bool = False
) -> tuple[Oid, int]:
    """`copy_and_hash` of an open file of `size` bytes; `also`: a second destination (not
    flushed), written by a third thread from the same page cache, as far as it can be (an
    error there is not one of the copy: the caller checks its size). `ours`: `src` is the
    cache's own file, hashed through a mapping (`hashing.update_mapped`)."""
    if size <= SMALL_FILE:
        return _copy_through(src, dst, size, sync, also)
    error: list[BaseException] = []

    def copy(to: int, flush: bool) -> None:
        try:
            copy_range(src, to, write_back=flush)
            if flush:  # the disk flush overlaps the hashing instead of following it
                os.fsync(to)
        except BaseException as e:  # re-raised in the caller's thread (but see `also`)
            if to == dst or not isinstance(e, OSError):
                error.append(e)

    workers = [threading.Thread(target=copy, args=(dst, sync))]
    if also is not None:
        workers.append(threading.Thread(target=copy, args=(also, False)))
    for worker in workers:
        worker.start()
    try:
        if ours:
            oid, n = hash_mapped(src)
        else:
            with open(src, "rb", buffering=0, closefd=False) as hash_src:
                oid, n = hash_stream(hash_src)
    finally:
        for worker in workers:
            worker.join()
    if error:
        raise error[0]
    return oid, n


def copy_and_hash_copy(src: int, dst: int, size: int, sync: bool) -> tuple[Oid, int]:
    """Copy the open file `src` (of `size` bytes) into `dst`, the cache's own temp file (open
    for reading too), by kernel copies on a thread, while this one hashes the copy through a
    mapping as each step of it lands: what is hashed is exactly what is stored, no byte goes
    through Python's memory, and the flush (`sync`) overlaps the hash of the last step."""
    if size <= SMALL_FILE:
        return _copy_through(src, dst, size, sync)
    import queue

    landed: queue.Queue[int] = queue.Queue()  # how far the copy is; -1: no more bytes
    error: list[BaseException] = []

    def copy() -> None:
        try:
            copy_range(src, dst, write_back=sync, landed=landed.put)
            landed.put(-1)
            if sync:
                os.fsync(dst)
        except BaseException as e:  # re-raised in the caller's thread
            error.append(e)
            landed.put(-1)

    worker = threading.Thread(target=copy)
    worker.start()
    digest = hashlib.sha256()
    hashed = 0
    try:
        while (upto := landed.get()) >= 0:
            hashed += update_mapped(digest, dst, upto - hashed, hashed)
    finally:
        worker.join()
    if error:
        raise error[0]
    return Oid(digest.hexdigest()), hashed


def copy_and_hash(
    src: Path, dst: int, *, sync: bool = False, also: int | None = None, ours: bool = False
) -> tuple[Oid, int]:
    """Copy `src` into the open file `dst` while hashing `src`; with `sync`, fsync `dst` too.

    A large file is copied by the kernel (a reflink where the file system can) in a second
    thread while this one hashes the same bytes from the page cache, and that thread also
    does the fsync: the cost is about max(copy + flush, hash), not their sum. A small file is
    read, hashed and written through one buffer. `ours`: `src` is the cache's own file (see
    `copy_and_hash_fd`).
    """
    with open(src, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        return copy_and_hash_fd(f.fileno(), dst, size, sync, also, ours=ours)


@contextlib.contextmanager
def watch_size(fd: int, progress: Callable[[int], None] | None) -> Iterator[None]:
    """Report the growth of the file open as `fd` while a kernel copy fills it (copies that
    happen in one system call give no other way to show progress)."""
    if progress is None:
        yield
        return
    done = threading.Event()
    seen = 0

    def poll() -> None:
        nonlocal seen
        while not done.wait(0.2):
            size = os.fstat(fd).st_size
            if size > seen:
                progress(size - seen)
                seen = size

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        with contextlib.suppress(OSError):
            size = os.fstat(fd).st_size
            if size > seen:
                progress(size - seen)
