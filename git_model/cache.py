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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .copying import (
    SMALL_FILE,
    copy_and_hash,
    copy_and_hash_fd,
    copy_range,
    fsync_path,
    watch_size,
    write_all,
    write_if_can,
)
from .errors import CorruptObject, GitModelError, MissingObject, OversizedObject, disk_error
from .hashing import CHUNK, HashThread, Oid, hash_file
from .linuxcalls import syncfs, write_back_starter
from .newfiles import new_file_beside, settle_new_file
from .prepared import Prepared
from .stamps import REMOVALS

__all__ = ["LINK_TYPES", "Cache", "copy_and_hash", "is_executable", "watch_size"]

LINK_TYPES = ("copy", "reflink", "hardlink", "symlink")


class Cache:
    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self.objects = model_dir / "objects"
        self.tmp = model_dir / "tmp"
        self.quarantine_dir = model_dir / "quarantine"
        self._ensured = False
        self._objects = str(self.objects)
        self._batch: list[tuple[str, Oid]] | None = None
        # large objects this process wrote into the cache and hashed on the way in (a
        # download): copying one out right after needs no second hash. Small ones are not
        # worth remembering: hashing 4 KiB costs less than the set would hold at 100,000 files
        self.verified: set[Oid] = set()
        self.prepared = Prepared()  # work-tree copies written during downloads (prepared.py)

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

    def new_object(self) -> tuple[int, str]:
        """A temp file in the cache's `tmp/` for bytes that will become an object (`place`)."""
        return self._tempfile()

    def place(self, tmp: str, oid: Oid) -> bool:
        """Name a durable, verified, read-only temp file `oid` (dropped if that exists)."""
        return self._place(tmp, oid)

    def _commit(self, fd: int, tmp: str, oid: Oid, *, synced: bool = False, size: int = 0) -> None:
        """fsync (unless `synced` says the caller did), make read-only and rename a finished
        temp file into place. Inside `batch()` a small one (`size`) waits for the batch's flush
        instead. A large one placed here is remembered as verified (callers hashed it)."""
        defer = self._batch is not None and size <= SMALL_FILE and not synced
        try:
            if not synced and not defer:
                os.fsync(fd)
            os.fchmod(fd, 0o444)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        finally:
            os.close(fd)
        if defer and self._batch is not None:
            self._batch.append((tmp, oid))  # durable and in place when the batch ends
        elif self._place(tmp, oid) and size > SMALL_FILE:
            self.verified.add(oid)

    def _place(self, tmp: str, oid: Oid) -> bool:
        """Rename a durable, verified temp file to its object name (or drop it: same bytes);
        False when the object was already there."""
        dest = self.path(oid)
        try:
            if dest.exists():  # someone stored the same bytes meanwhile
                os.unlink(tmp)
                return False
            try:
                os.replace(tmp, dest)
            except FileNotFoundError:  # the first object under this prefix
                dest.parent.mkdir(exist_ok=True)
                os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return True

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
            if pending and not syncfs(self.tmp):
                for tmp, _ in pending:
                    fsync_path(tmp)
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
                    oid, size = copy_and_hash_fd(s.fileno(), fd, before.st_size, not defer)
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

    @contextlib.contextmanager
    def _incoming(self, expected: Oid, also: int | None = None) -> Iterator[tuple[int, str]]:
        """A temp file for bytes arriving as `expected`, open for writing; removed if the
        body raises (and `also`, a work-tree copy being written beside, closed: it vanishes).
        A full disk, on opening or inside, is a `DiskFull`."""
        try:
            fd, tmp = self._tempfile()
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

    def _keep_incoming(
        self,
        fd: int,
        tmp: str,
        expected: Oid,
        size: int,
        synced: bool,
        tee: tuple[int | None, str | None],
    ) -> int:
        """Make the verified temp file of `_incoming` the object `expected`, and keep the
        work-tree copy written beside it (`tee`: its descriptor and destination) if any."""
        also, dest = tee
        try:
            self._commit(fd, tmp, expected, synced=synced, size=size)
        except OSError as e:
            if also is not None:
                os.close(also)
            raise disk_error(e, _storing(expected)) from e
        if also is not None and dest is not None:
            self.prepared.keep(expected, also, dest, size)
        return size

    def store_stream(
        self,
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
        also = teeing = self.prepared.start(expected, tee_to, expected_size)
        large = (expected_size or 0) > SMALL_FILE
        # a large download is hashed on a thread while this one receives and writes, and its
        # bytes start for the disk as they are written: about max(receive, hash), and little
        # left for the flush before it is named (the directory remote's copy does the same)
        kick = write_back_starter() if large else None
        with self._incoming(expected, also) as (fd, tmp):
            digest: Any = HashThread() if large else hashlib.sha256()
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
                    if teeing is not None:
                        teeing = write_if_can(teeing, chunk)
            finally:
                got = digest.hexdigest()  # (a thread: ended here whatever happened)
            if expected_size is not None and size > expected_size:
                raise OversizedObject(
                    f"object {expected.short} arrived with more than its {expected_size} bytes; "
                    "it was refused"
                )
            if got != expected:
                raise _refused(expected, got)
        return self._keep_incoming(fd, tmp, expected, size, False, (also, tee_to))

    def store_copy(
        self,
        src: Path,
        expected: Oid,
        progress: Callable[[int], None] | None = None,
        tee_to: str | None = None,
    ) -> int:
        """Store a file from a local-directory remote: a kernel copy hashed alongside (about
        max(copy, hash) instead of their sum), refused unless it hashes to `expected`. A full
        disk is a `DiskFull`. `tee_to`: a work-tree file that will need these bytes."""
        also = self.prepared.start(expected, tee_to, src.stat().st_size)
        with self._incoming(expected, also) as (fd, tmp):
            with watch_size(fd, progress):  # (the flush overlaps the hash)
                got, size = copy_and_hash(src, fd, sync=True, also=also)
            if got != expected:
                raise _refused(expected, got)
        return self._keep_incoming(fd, tmp, expected, size, True, (also, tee_to))

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
        self.verified.discard(oid)
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path(oid), dest)
            self.note_removal()
        return dest

    def note_removal(self) -> None:
        """Say that objects have left the cache (call it after they left): what status
        remembered as complete in the cache is checked again (stamps.removal_generation)."""
        with open(self.model_dir / REMOVALS, "ab") as f:
            f.write(b".")

    def materialize(
        self, oid: Oid, dest: Path, *, executable: bool = False, link_type: str = "copy"
    ) -> None:
        """Put object `oid` at `dest` atomically, verifying its bytes on the way.

        A corrupt object is quarantined and nothing is written.
        """
        if link_type not in ("hardlink", "symlink"):
            if self.prepared.place(oid, os.fspath(dest), executable):
                return  # written while it downloaded, verified then
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
        if oid not in self.verified and not self.verify_object(oid):
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
        """Copy the open object `src` into a new file beside `dest`, verify it, then put it
        in place: an unnamed file given its name (where the system has them), else a temp
        file renamed over `dest`; a large file replacing another is swapped in."""
        name = os.path.basename(dest)
        mode = 0o777 if executable else 0o666  # less the umask, as git does
        fd, tmp = new_file_beside(dest, mode)
        size = os.fstat(src).st_size
        try:
            # no fsync: the work tree is never the only copy (the cache object is durable),
            # and after a power cut `status` shows a file that lost its bytes and `checkout`
            # puts them back; git treats the files it checks out the same way
            if oid in self.verified:  # hashed as this process wrote it: copy it unhashed
                copy_range(src, fd)
                got = oid
            else:
                got, _ = copy_and_hash_fd(src, fd, size, sync=False)
            if got != oid:
                self.quarantine(oid)
                raise CorruptObject(
                    f"cache object {oid.short} for {name} is corrupt and was quarantined; "
                    "run 'git model fetch' to get a good copy"
                )
        except BaseException:
            os.close(fd)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise
        settle_new_file(fd, tmp, dest, large=size > SMALL_FILE)


def _storing(oid: Oid) -> str:
    return f"storing object {oid.short} in the cache"


def _refused(expected: Oid, got: str) -> CorruptObject:
    return CorruptObject(
        f"object {expected.short} arrived as other bytes (sha256 {got[:12]}); it was refused; "
        "push it again from a clone that has good bytes"
    )


def is_executable(st: os.stat_result) -> bool:
    return bool(st.st_mode & stat.S_IXUSR)
