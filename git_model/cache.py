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
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import CorruptObject, GitModelError, MissingObject
from .hashing import CHUNK, Oid, hash_file, hash_stream

LINK_TYPES = ("copy", "reflink", "hardlink", "symlink")


def disk_error(e: OSError, doing: str) -> GitModelError:
    """One line for a failed write, saying what to do about it."""
    if e.errno == errno.ENOSPC:
        return GitModelError(f"no space left on device while {doing}; free some space and rerun")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return GitModelError(
            f"permission denied while {doing} ({e.filename}); fix the permissions and rerun"
        )
    return GitModelError(f"{e.strerror or e} while {doing}; rerun once the cause is fixed")


def _copy_range(src: int, dst: int) -> None:
    """Kernel-side copy (a reflink on btrfs/xfs); falls back to read/write."""
    try:
        while os.copy_file_range(src, dst, 1 << 30):
            pass
        return
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    os.lseek(src, 0, os.SEEK_SET)
    os.lseek(dst, 0, os.SEEK_SET)
    os.ftruncate(dst, 0)
    buf = bytearray(CHUNK)
    with open(src, "rb", buffering=0, closefd=False) as s, open(dst, "wb", closefd=False) as d:
        while n := s.readinto(buf):
            d.write(memoryview(buf)[:n])


def copy_and_hash(src: Path, dst: int) -> tuple[Oid, int]:
    """Copy `src` into the open file `dst` while hashing `src`, side by side in two threads.

    The kernel copies (a reflink where the file system can) while this thread hashes the same
    bytes from the page cache: the cost is about max(copy, hash), not their sum.
    """
    error: list[BaseException] = []

    def copy(fd: int) -> None:
        try:
            _copy_range(fd, dst)
        except BaseException as e:  # re-raised in the caller's thread
            error.append(e)

    with open(src, "rb", buffering=0) as copy_src, open(src, "rb", buffering=0) as hash_src:
        worker = threading.Thread(target=copy, args=(copy_src.fileno(),))
        worker.start()
        try:
            oid, size = hash_stream(hash_src)
        finally:
            worker.join()
    if error:
        raise error[0]
    return oid, size


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


class Cache:
    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self.objects = model_dir / "objects"
        self.tmp = model_dir / "tmp"
        self.quarantine_dir = model_dir / "quarantine"

    def path(self, oid: Oid) -> Path:
        return self.objects / oid[:2] / oid[2:]

    def has(self, oid: Oid) -> bool:
        return self.path(oid).is_file()

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
        self.ensure()
        return tempfile.mkstemp(dir=self.tmp, prefix="obj-")

    def _commit(self, fd: int, tmp: str, oid: Oid) -> None:
        """fsync, make read-only and rename a finished temp file into place."""
        try:
            os.fsync(fd)
            os.fchmod(fd, 0o444)
        finally:
            os.close(fd)
        dest = self.path(oid)
        try:
            if dest.exists():  # someone stored the same bytes meanwhile
                os.unlink(tmp)
                return
            dest.parent.mkdir(exist_ok=True)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def store_file(self, src: Path, known: Oid | None = None) -> tuple[Oid, int]:
        """Store a work-tree file; returns (oid, size). Same bytes are stored once."""
        if known is not None and self.has(known):
            return known, src.stat().st_size
        try:
            with open(src, "rb", buffering=0) as s:
                before = os.fstat(s.fileno())
                fd, tmp = self._tempfile()
                try:
                    oid, size = copy_and_hash(src, fd)
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
                self._commit(fd, tmp, oid)
        except OSError as e:
            raise disk_error(e, f"storing {src} in the cache") from e
        return oid, size

    def store_stream(self, stream: BinaryIO, expected: Oid) -> int:
        """Store bytes from a stream (a download), refusing them unless they hash to `expected`."""
        fd, tmp = self._tempfile()
        try:
            digest = hashlib.sha256()
            size = 0
            with open(fd, "wb", closefd=False) as out:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            if digest.hexdigest() != expected:
                raise CorruptObject(
                    f"object {expected.short} arrived as other bytes (sha256 {digest.hexdigest()[:12]}); "
                    "it was refused: check the remote copy with 'git model verify --remote'"
                )
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._commit(fd, tmp, expected)
        return size

    def store_copy(
        self, src: Path, expected: Oid, progress: Callable[[int], None] | None = None
    ) -> int:
        """Store a file from a local-directory remote: a kernel copy hashed alongside (about
        max(copy, hash) instead of their sum), refused unless it hashes to `expected`."""
        fd, tmp = self._tempfile()
        try:
            with watch_size(fd, progress):
                got, size = copy_and_hash(src, fd)
            if got != expected:
                raise CorruptObject(
                    f"object {expected.short} arrived as other bytes (sha256 {got[:12]}); it was refused"
                )
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._commit(fd, tmp, expected)
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
        src = self.path(oid)
        if not src.is_file():
            raise MissingObject(
                f"object {oid.short} for {dest.name} is not in the cache; "
                "run 'git model fetch' (or 'git model pull') to get it"
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        if link_type in ("hardlink", "symlink"):
            if not self.verify_object(oid):
                self.quarantine(oid)
                raise CorruptObject(
                    f"cache object {oid.short} for {dest.name} is corrupt and was quarantined; "
                    "run 'git model fetch' to get a good copy"
                )
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
            return
        fd, tmp_name = tempfile.mkstemp(
            dir=dest.parent, prefix=f".{dest.name}.", suffix=".gitmodel"
        )
        try:
            got, _ = copy_and_hash(src, fd)
            if got != oid:
                self.quarantine(oid)
                raise CorruptObject(
                    f"cache object {oid.short} for {dest.name} is corrupt and was quarantined; "
                    "run 'git model fetch' to get a good copy"
                )
            mode = 0o666 & ~_umask()
            if executable:
                mode |= (mode & 0o444) >> 2
            os.fchmod(fd, mode)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        os.close(fd)
        os.replace(tmp_name, dest)


_UMASK: int | None = None


def _umask() -> int:
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0)
        os.umask(_UMASK)
    return _UMASK


def is_executable(st: os.stat_result) -> bool:
    return bool(st.st_mode & stat.S_IXUSR)
