"""Moving bytes between open files, hashing them on the way, as fast as the kernel allows.

A large file is copied by the kernel (`copy_file_range`: a reflink on btrfs/xfs) in one thread
while another hashes the same bytes from the page cache, so a verified copy costs about
max(copy, hash) rather than their sum; a small one goes through one buffer. Also here: the few
Linux calls the standard library lacks (`syncfs`, an atomic exchange of two names), reached
through ctypes and each with a portable fallback, and the removal of a replaced large file
after the command has finished.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .hashing import CHUNK, Oid, hash_stream, read_size

SMALL_FILE = CHUNK  # up to this size a file is copied through one buffer, with no helper thread
WRITE_BACK_STEP = 64 << 20
REMOVE_LATER = 32 << 20  # a replaced file this large is removed after the command returns


def copy_range(src: int, dst: int, *, write_back: bool = False) -> None:
    """Copy all of `src` to the start of `dst` by explicit offsets (neither file position moves,
    so another thread may read `src` meanwhile): in the kernel where it can (a reflink on
    btrfs/xfs), else through a buffer. `write_back`: start writing each copied 64 MiB to disk
    at once, so that the fsync that follows has little left to wait for."""
    done = 0
    kick = write_back_starter() if write_back else None
    step = WRITE_BACK_STEP if kick else 1 << 30
    try:
        while n := os.copy_file_range(src, dst, step, done, done):
            if kick:
                kick(dst, done, n)
            done += n
        return
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    os.ftruncate(dst, 0)
    done = 0
    while chunk := os.pread(src, CHUNK, done):
        view = memoryview(chunk)
        while view:
            n = os.pwrite(dst, view, done)
            view, done = view[n:], done + n


@functools.cache
def _linux_call(name: str) -> Any:
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


def fsync_path(path: str | Path) -> None:
    """fsync the file or folder at `path`."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@functools.cache
def write_back_starter() -> Callable[[int, int, int], None] | None:
    """`start(fd, offset, length)`: begin writing that range to disk without waiting for it
    and without dropping it from the page cache (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`:
    the bytes just fetched stay cached for the checkout that reads them next). None elsewhere."""
    call = _linux_call("sync_file_range")
    if call is None:
        return None
    import ctypes

    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    sync_file_range_write = 2

    def start(fd: int, offset: int, length: int) -> None:
        call(fd, offset, length, sync_file_range_write)  # a failure only costs speed

    return start


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_if_can(fd: int, data: bytes) -> int | None:
    """`write_all` to a second, optional copy: `fd` while it works, None once a write failed
    (the copy is then short, and its owner, checking its size, drops it)."""
    try:
        write_all(fd, data)
    except OSError:
        return None
    return fd


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
    src: int, dst: int, size: int, sync: bool, also: int | None = None
) -> tuple[Oid, int]:
    """`copy_and_hash` of an open file of `size` bytes; `also`: a second destination (not
    flushed), written by a third thread from the same page cache, as far as it can be (an
    error there is not one of the copy: the caller checks its size)."""
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
        with open(src, "rb", buffering=0, closefd=False) as hash_src:
            oid, n = hash_stream(hash_src)
    finally:
        for worker in workers:
            worker.join()
    if error:
        raise error[0]
    return oid, n


def copy_and_hash(
    src: Path, dst: int, *, sync: bool = False, also: int | None = None
) -> tuple[Oid, int]:
    """Copy `src` into the open file `dst` while hashing `src`; with `sync`, fsync `dst` too.

    A large file is copied by the kernel (a reflink where the file system can) in a second
    thread while this one hashes the same bytes from the page cache, and that thread also
    does the fsync: the cost is about max(copy + flush, hash), not their sum. A small file is
    read, hashed and written through one buffer.
    """
    with open(src, "rb", buffering=0) as f:
        return copy_and_hash_fd(f.fileno(), dst, os.fstat(f.fileno()).st_size, sync, also)


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


def syncfs(folder: str | Path) -> bool:
    """Flush the whole file system that holds `folder` (Linux); False where there is no syncfs."""
    call = _linux_call("syncfs")
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
    renameat2 = _linux_call("renameat2") if _EXCHANGE_WORKS else None
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


def remove_later(path: str) -> None:
    """Remove a file that nothing needs any more without waiting for it.

    Freeing a large file's blocks takes the file system 50–200 ms per GiB; a detached `rm`
    does it after the command (or the hook git is waiting for) has returned. If it never runs,
    the file keeps its temp name and the next checkout of that folder removes it.
    """
    try:
        subprocess.Popen(
            ["rm", "-f", "--", path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        os.unlink(path)


_UNNAMED_WORKS = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")
UNNAMED_FLAGS = getattr(os, "O_TMPFILE", 0) | os.O_WRONLY | os.O_CLOEXEC  # see open_unnamed


def unnamed_files_work() -> bool:
    """Whether `open_unnamed` gives unnamed files here (as far as known so far)."""
    return _UNNAMED_WORKS


def open_unnamed(folder: str, mode: int) -> int | None:
    """A new file in `folder` that has no name yet (Linux `O_TMPFILE`), open for writing.

    It is named by `give_name` once its bytes are complete and checked; a crash before that
    leaves nothing at all behind, and a file written this way costs one directory change
    instead of two (create a temp name, rename it). None where the system or the file system
    has no unnamed files. `mode` is narrowed by the umask, as for any new file.
    """
    global _UNNAMED_WORKS
    if not _UNNAMED_WORKS:
        return None
    try:
        return os.open(folder, UNNAMED_FLAGS, mode)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            _UNNAMED_WORKS = False
            return None
        raise


def give_name(fd: int, path: str) -> None:
    """Link the unnamed file open as `fd` at `path`; `FileExistsError` if `path` is taken.

    Through `/proc/self/fd`, which any process may do (a link by descriptor alone needs
    privileges). Passing a `src_dir_fd` makes Python call `linkat(…, AT_SYMLINK_FOLLOW)`, which
    links the file the /proc entry points to; the source path is absolute, so the descriptor
    is otherwise ignored.
    """
    os.link(f"/proc/self/fd/{fd}", path, src_dir_fd=fd)


def temp_name(dest: str) -> str:
    """A fresh name beside `dest` that checkouts recognise as their own litter
    (`.NAME.XXXXXXXX.gitmodel`, see `is_temp_name`)."""
    where, name = os.path.split(dest)
    return os.path.join(where, f".{name}.{os.urandom(4).hex()}.gitmodel")


def is_temp_name(name: str) -> bool:
    """A temp file a checkout writes beside its target before renaming it into place
    (`.NAME.XXXXXXXX.gitmodel` from `temp_name`; `.NAME.gitmodel-PID` for links). One still there after the
    checkout was killed is litter: git-model never reads it, the next checkout removes it."""
    if not name.startswith("."):
        return False
    return name.endswith(".gitmodel") or name.rpartition(".gitmodel-")[2].isdigit()


def new_file_beside(dest: str, mode: int) -> tuple[int, str | None]:
    """A new file in the folder of `dest`, open for writing: (fd, None) when it is unnamed
    (see `open_unnamed`), else (fd, its temp name). The folder is made if it is missing."""
    where = os.path.dirname(dest)
    for _ in range(100):
        try:
            fd = open_unnamed(where, mode)
            if fd is not None:
                return fd, None
            tmp = temp_name(dest)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            return os.open(tmp, flags, mode), tmp
        except FileNotFoundError:  # a new folder: made when its first file is written
            os.makedirs(where, exist_ok=True)
        except FileExistsError:  # that temp name is taken: draw another
            continue
    raise FileExistsError(errno.EEXIST, "no free temp name", where)


def name_new_file(fd: int, tmp: str | None, dest: str, *, large: bool) -> None:
    """Give the finished new file open as `fd` (unnamed, or named `tmp` where the system has
    no unnamed files) the name `dest`, replacing what is there (see `put_in_place`). `fd`
    stays open; on an error nothing is left beside `dest`."""
    if tmp is None:  # unnamed: name it `dest` if free
        try:
            give_name(fd, dest)
            return
        except FileExistsError:
            pass
    replace_with_new_file(fd, tmp, dest, large=large)


def replace_with_new_file(fd: int, tmp: str | None, dest: str, *, large: bool) -> None:
    """`name_new_file` where `dest` is taken: an unnamed file gets a temp name first, then
    moves over `dest`; on an error nothing is left beside `dest`."""
    try:
        if tmp is None:
            tmp = temp_name(dest)
            give_name(fd, tmp)
        put_in_place(tmp, dest, large=large)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


PIN_NS = 200_000_000  # how far back a finished work-tree file is dated before it is named


def pin_times(fd: int) -> None:
    """Date the finished new file `fd` PIN_NS into the past, before it gets its name. Until
    then nobody else writes it; once named, any write dates it to the present, so the stat
    record taken right after can be trusted at once (`statecache.pinned`) instead of being
    racy: the next checkout or commit does not hash the file it just wrote again."""
    then = time.time_ns() - PIN_NS
    with contextlib.suppress(OSError):
        os.utime(fd, ns=(then, then))


def settle_new_file(fd: int, tmp: str | None, dest: str, *, large: bool) -> None:
    """`pin_times`, `name_new_file`, then close `fd`."""
    try:
        pin_times(fd)
        name_new_file(fd, tmp, dest, large=large)
    finally:
        os.close(fd)


def put_in_place(tmp: str, dest: str, *, large: bool) -> None:
    """Move the finished file `tmp` to `dest` atomically. A large one is swapped with what
    `dest` holds (see `exchange`) and the old file removed, later when it is large too."""
    if large and exchange(tmp, dest):  # `tmp` now names the replaced file
        try:
            old = os.lstat(tmp)
            if stat.S_ISREG(old.st_mode) and old.st_size >= REMOVE_LATER:
                remove_later(tmp)
            else:
                os.unlink(tmp)
        except FileNotFoundError:
            pass
        return
    os.replace(tmp, dest)
