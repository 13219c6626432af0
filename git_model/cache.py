"""The content-addressed cache: `<git-common-dir>/model/objects/ab/cdef…`.

Objects are read-only files named by the SHA-256 of their bytes, shared by every worktree and
never committed. Writes are atomic: a temp file in the cache's own `tmp/`, hashed while it is
written, fsynced, checked against the expected oid, made read-only, then renamed into place.
A crash leaves at most a stray temp file, never a partial object. Reads into the work tree are
verified as they copy: bytes that do not hash to their name never reach the workspace.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import CorruptObject, DiskFull, GitModelError, MissingObject, OversizedObject
from .hashing import CHUNK, Oid, hash_file, hash_stream

LINK_TYPES = ("copy", "reflink", "hardlink", "symlink")
SMALL_FILE = CHUNK  # up to this size a file is copied through one buffer, with no helper thread
WRITE_BACK_STEP = 64 << 20


def disk_error(e: OSError, doing: str) -> GitModelError:
    """One line for a failed write, saying what to do about it."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"no space left on device while {doing}; free some space and rerun")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return GitModelError(
            f"permission denied while {doing} ({e.filename}); fix the permissions and rerun"
        )
    return GitModelError(f"{e.strerror or e} while {doing}; rerun once the cause is fixed")


def _copy_range(src: int, dst: int, *, write_back: bool = False) -> None:
    """Copy all of `src` to the start of `dst` by explicit offsets (neither file position moves,
    so another thread may read `src` meanwhile): in the kernel where it can (a reflink on
    btrfs/xfs), else through a buffer. `write_back`: start writing each copied 64 MiB to disk
    at once, so that the fsync that follows has little left to wait for."""
    done = 0
    kick = write_back and hasattr(os, "posix_fadvise")
    step = WRITE_BACK_STEP if kick else 1 << 30
    try:
        while n := os.copy_file_range(src, dst, step, done, done):
            if kick:  # DONTNEED starts writeback of the dirty range
                os.posix_fadvise(dst, done, n, os.POSIX_FADV_DONTNEED)
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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _copy_through(src: int, dst: int, sync: bool) -> tuple[Oid, int]:
    """Read, hash and write in one thread: for small files, where a helper thread costs more
    than the copy itself."""
    digest = hashlib.sha256()
    size = 0
    while chunk := os.read(src, CHUNK):
        digest.update(chunk)
        _write_all(dst, chunk)
        size += len(chunk)
    if sync:
        os.fsync(dst)
    return Oid(digest.hexdigest()), size


def _copy_and_hash_fd(src: int, dst: int, size: int, sync: bool) -> tuple[Oid, int]:
    if size <= SMALL_FILE:
        return _copy_through(src, dst, sync)
    error: list[BaseException] = []

    def copy(fd: int) -> None:
        try:
            _copy_range(fd, dst, write_back=sync)
            if sync:  # the disk flush overlaps the hashing instead of following it
                os.fsync(dst)
        except BaseException as e:  # re-raised in the caller's thread
            error.append(e)

    worker = threading.Thread(target=copy, args=(src,))
    worker.start()
    try:
        with open(src, "rb", buffering=0, closefd=False) as hash_src:
            oid, n = hash_stream(hash_src)
    finally:
        worker.join()
    if error:
        raise error[0]
    return oid, n


def copy_and_hash(src: Path, dst: int, *, sync: bool = False) -> tuple[Oid, int]:
    """Copy `src` into the open file `dst` while hashing `src`; with `sync`, fsync `dst` too.

    A large file is copied by the kernel (a reflink where the file system can) in a second
    thread while this one hashes the same bytes from the page cache, and that thread also
    does the fsync: the cost is about max(copy + flush, hash), not their sum. A small file is
    read, hashed and written through one buffer.
    """
    with open(src, "rb", buffering=0) as f:
        return _copy_and_hash_fd(f.fileno(), dst, os.fstat(f.fileno()).st_size, sync)


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


def _syncfs(folder: Path) -> bool:
    """Flush the whole file system that holds `folder` (Linux); False where there is no syncfs."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # only for batches of many small files

    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError):
        return False
    fd = os.open(folder, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(folder))
    finally:
        os.close(fd)
    return True


class Cache:
    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self.objects = model_dir / "objects"
        self.tmp = model_dir / "tmp"
        self.quarantine_dir = model_dir / "quarantine"
        self._ensured = False
        self._objects = str(self.objects)
        self._batch: list[tuple[str, Oid]] | None = None

    def path(self, oid: Oid) -> Path:
        return self.objects / oid[:2] / oid[2:]

    def has(self, oid: Oid) -> bool:
        return os.path.isfile(f"{self._objects}/{oid[:2]}/{oid[2:]}")  # hot: one stat, no Path

    def ensure(self) -> None:
        for d in (self.objects, self.tmp):
            d.mkdir(parents=True, exist_ok=True)

    def iter_oids(self) -> Iterator[Oid]:
        if not self.objects.is_dir():
            return
        for sub in sorted(self.objects.iterdir()):
            if len(sub.name) != 2 or not sub.is_dir():
                continue
            for obj in sorted(sub.iterdir()):
                try:
                    yield Oid(sub.name + obj.name)
                except ValueError:
                    continue

    # -- writing -------------------------------------------------------------------------------

    def _tempfile(self) -> tuple[int, str]:
        if not self._ensured:
            self.ensure()
            self._ensured = True
        return tempfile.mkstemp(dir=self.tmp, prefix="obj-")

    def _commit(self, fd: int, tmp: str, oid: Oid, *, synced: bool = False) -> None:
        """fsync (unless `synced` says the caller did), make read-only and rename a finished
        temp file into place."""
        try:
            if not synced:
                os.fsync(fd)
            os.fchmod(fd, 0o444)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        finally:
            os.close(fd)
        self._place(tmp, oid)

    def _place(self, tmp: str, oid: Oid) -> None:
        """Rename a durable, verified temp file to its object name (or drop it: same bytes)."""
        dest = self.path(oid)
        try:
            if dest.exists():  # someone stored the same bytes meanwhile
                os.unlink(tmp)
                return
            try:
                os.replace(tmp, dest)
            except FileNotFoundError:  # the first object under this prefix
                dest.parent.mkdir(exist_ok=True)
                os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Store many small files with one flush to disk instead of one fsync each.

        Inside, a small object is written, verified and made read-only in a temp file, but not
        renamed; on leaving, one `syncfs` makes every temp file durable (an fsync each where
        syncfs is missing), then each is renamed into place. The guarantee is unchanged: no
        object name ever points at bytes that are not on disk. On an error the temp files go.
        """
        if self._batch is not None:  # nested: the outer batch flushes
            yield
            return
        pending: list[tuple[str, Oid]] = []
        self._batch = pending
        try:
            yield
            if pending and not _syncfs(self.tmp):
                for tmp, _ in pending:
                    fd = os.open(tmp, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            while pending:
                self._place(*pending.pop())
        finally:
            self._batch = None
            for tmp, _ in pending:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def store_file(self, src: Path, known: Oid | None = None) -> tuple[Oid, int]:
        """Store a work-tree file; returns (oid, size). Same bytes are stored once."""
        if known is not None and self.has(known):
            return known, src.stat().st_size
        try:
            with open(src, "rb", buffering=0) as s:
                before = os.fstat(s.fileno())
                fd, tmp = self._tempfile()
                try:
                    defer = self._batch is not None and before.st_size <= SMALL_FILE
                    oid, size = _copy_and_hash_fd(s.fileno(), fd, before.st_size, not defer)
                    after = os.stat(src)
                    if (before.st_size, before.st_mtime_ns) != (
                        after.st_size,
                        after.st_mtime_ns,
                    ) or size != before.st_size:
                        raise GitModelError(f"{src} changed while it was being stored; rerun")
                    if os.fstat(fd).st_size != size:
                        raise CorruptObject(f"short write storing {src}; check the disk and rerun")
                except BaseException:
                    os.close(fd)
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
                if defer and self._batch is not None:
                    try:
                        os.fchmod(fd, 0o444)
                    finally:
                        os.close(fd)
                    self._batch.append((tmp, oid))  # durable and in place when the batch ends
                else:
                    self._commit(fd, tmp, oid, synced=True)
        except OSError as e:
            raise disk_error(e, f"storing {src} in the cache") from e
        return oid, size

    def store_stream(
        self, stream: BinaryIO, expected: Oid, expected_size: int | None = None
    ) -> int:
        """Store bytes from a stream (a download), refusing them unless they hash to `expected`.

        With `expected_size`, reading stops one byte past it: a source that sends more than
        the object has (a padded file, an endless stream) is refused at once, before it can
        fill the disk. A full disk is a `DiskFull`; errors reading the stream pass through.
        """
        doing = f"storing object {expected.short} in the cache"
        try:
            fd, tmp = self._tempfile()
        except OSError as e:
            raise disk_error(e, doing) from e
        try:
            digest = hashlib.sha256()
            size = 0
            limit = None if expected_size is None else expected_size + 1
            while limit is None or size < limit:
                chunk = stream.read(CHUNK if limit is None else min(CHUNK, limit - size))
                if not chunk:
                    break
                digest.update(chunk)
                size += len(chunk)
                try:
                    _write_all(fd, chunk)
                except OSError as e:
                    raise disk_error(e, doing) from e
            if expected_size is not None and size > expected_size:
                raise OversizedObject(
                    f"object {expected.short} arrived with more than its {expected_size} bytes; "
                    "it was refused"
                )
            if digest.hexdigest() != expected:
                raise CorruptObject(
                    f"object {expected.short} arrived as other bytes (sha256 {digest.hexdigest()[:12]}); "
                    "it was refused; push it again from a clone that has good bytes"
                )
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        try:
            self._commit(fd, tmp, expected)
        except OSError as e:
            raise disk_error(e, doing) from e
        return size

    def store_copy(
        self, src: Path, expected: Oid, progress: Callable[[int], None] | None = None
    ) -> int:
        """Store a file from a local-directory remote: a kernel copy hashed alongside (about
        max(copy, hash) instead of their sum), refused unless it hashes to `expected`. A full
        disk is a `DiskFull`."""
        doing = f"storing object {expected.short} in the cache"
        try:
            fd, tmp = self._tempfile()
        except OSError as e:
            raise disk_error(e, doing) from e
        try:
            with watch_size(fd, progress):
                got, size = copy_and_hash(src, fd, sync=True)  # the flush overlaps the hash
            if got != expected:
                raise CorruptObject(
                    f"object {expected.short} arrived as other bytes (sha256 {got[:12]}); it was refused"
                )
        except BaseException as e:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise disk_error(e, doing) from e
            raise
        try:
            self._commit(fd, tmp, expected, synced=True)
        except OSError as e:
            raise disk_error(e, doing) from e
        return size

    # -- reading -------------------------------------------------------------------------------

    def open(self, oid: Oid) -> BinaryIO:
        try:
            return open(self.path(oid), "rb")
        except FileNotFoundError:
            raise MissingObject(
                f"object {oid.short} is not in the cache; run 'git model fetch' to get it"
            ) from None

    def verify_object(self, oid: Oid) -> bool:
        try:
            return hash_file(self.path(oid))[0] == oid
        except OSError:
            return False

    def quarantine(self, oid: Oid) -> Path:
        """Move a corrupt object out of the cache so it is never used again."""
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        dest = self.quarantine_dir / oid
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path(oid), dest)
        return dest

    def materialize(
        self, oid: Oid, dest: Path, *, executable: bool = False, link_type: str = "copy"
    ) -> None:
        """Put object `oid` at `dest` atomically, verifying its bytes on the way.

        A corrupt object is quarantined and nothing is written.
        """
        if link_type not in ("hardlink", "symlink"):
            obj = f"{self._objects}/{oid[:2]}/{oid[2:]}"
            try:
                src_fd = os.open(obj, os.O_RDONLY)
            except FileNotFoundError:
                raise self._missing(oid, dest) from None
            try:
                self._copy_out(oid, src_fd, os.fspath(dest), executable)
            finally:
                os.close(src_fd)
            return
        src = self.path(oid)
        if not src.is_file():
            raise self._missing(oid, dest)
        if not self.verify_object(oid):
            self.quarantine(oid)
            raise CorruptObject(
                f"cache object {oid.short} for {dest.name} is corrupt and was quarantined; "
                "run 'git model fetch' to get a good copy"
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.gitmodel-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if link_type == "hardlink":
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
        else:
            os.symlink(src, tmp)
        os.replace(tmp, dest)

    @staticmethod
    def _missing(oid: Oid, dest: Path) -> MissingObject:
        return MissingObject(
            f"object {oid.short} for {dest.name} is not in the cache; "
            "run 'git model fetch' (or 'git model pull') to get it"
        )

    def _copy_out(self, oid: Oid, src: int, dest: str, executable: bool) -> None:
        """Copy the open object `src` to a temp file beside `dest`, verify, rename over `dest`."""
        where, name = os.path.split(dest)
        try:
            fd, tmp = tempfile.mkstemp(dir=where, prefix=f".{name}.", suffix=".gitmodel")
        except FileNotFoundError:  # a new folder: made when its first file is written
            os.makedirs(where, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=where, prefix=f".{name}.", suffix=".gitmodel")
        try:
            got, _ = _copy_and_hash_fd(src, fd, os.fstat(src).st_size, sync=False)
            if got != oid:
                self.quarantine(oid)
                raise CorruptObject(
                    f"cache object {oid.short} for {name} is corrupt and was quarantined; "
                    "run 'git model fetch' to get a good copy"
                )
            mode = 0o666 & ~_umask()
            if executable:
                mode |= (mode & 0o444) >> 2
            os.fchmod(fd, mode)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, dest)


_UMASK: int | None = None


def _umask() -> int:
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0)
        os.umask(_UMASK)
    return _UMASK


def is_executable(st: os.stat_result) -> bool:
    return bool(st.st_mode & stat.S_IXUSR)
