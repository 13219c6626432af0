"""The content-addressed cache: `<git-common-dir>/model/objects/ab/cdef…`.

Objects are read-only files named by the SHA-256 of their bytes, shared by every worktree and
never committed. Writes are atomic: a temp file in the cache's own `tmp/`, hashed while it is
written, fsynced, checked against the expected oid, made read-only, then renamed into place.
A crash leaves at most a stray temp file, never a partial object. Reads into the work tree are
verified as they copy: bytes that do not hash to their name never reach the workspace.

Here: storing work-tree files (named by what they hash to) and putting objects back. Bytes that
arrive under a name given in advance (downloads) come in through incoming.py.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .copying import SMALL_FILE, copy_and_hash_copy, copy_and_hash_fd, copy_range, fsync_path
from .errors import CorruptObject, GitModelError, MissingObject, disk_error
from .hashing import Oid, hash_file
from .linuxcalls import syncfs
from .newfiles import new_file_beside, settle_new_file
from .prepared import Prepared
from .stamps import REMOVALS

__all__ = ["LINK_TYPES", "Cache", "is_executable"]

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

    def new_object(self) -> tuple[int, str]:
        """A temp file in the cache's `tmp/` for bytes that will become an object
        (`finish_object`, or `place` once the caller made it durable), open for reading and
        writing. It is created read-only, as every object is (git makes its loose objects'
        temp files the same way): the descriptor returned writes it all the same, and no chmod
        is needed before it is named (a syscall a part saved: ~60 ms of the copying thread for
        a 1 GiB model of 256 tensors here)."""
        if not self._ensured:
            self.ensure()
            self._ensured = True
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        for _ in range(100):
            tmp = os.path.join(self.tmp, "obj-" + os.urandom(8).hex())
            try:
                return os.open(tmp, flags, 0o444), tmp
            except FileExistsError:
                continue
        raise FileExistsError(errno.EEXIST, "no free temp name in the cache", str(self.tmp))

    def finish_object(
        self, fd: int, tmp: str, oid: Oid, *, synced: bool = False, size: int = 0
    ) -> None:
        """fsync (unless `synced` says the caller did), make read-only, close and rename the
        verified temp file `tmp` (open as `fd`) into place as `oid`. Inside `batch()` a small
        one (`size`) waits for the batch's flush instead. A large one placed here is remembered
        as verified (callers hashed it)."""
        defer = self._batch is not None and size <= SMALL_FILE and not synced
        try:
            if not synced and not defer:
                os.fsync(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        finally:
            os.close(fd)
        if defer and self._batch is not None:
            self._batch.append((tmp, oid))  # durable and in place when the batch ends
        elif self.place(tmp, oid) and size > SMALL_FILE:
            self.verified.add(oid)

    def place(self, tmp: str, oid: Oid) -> bool:
        """Rename a durable, verified, read-only temp file to its object name `oid` (or drop
        it: same bytes); False when the object was already there."""
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
                self.place(*pending.pop())
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
                fd, tmp = self.new_object()
                try:
                    defer = self._batch is not None and before.st_size <= SMALL_FILE
                    oid, size = copy_and_hash_copy(s.fileno(), fd, before.st_size, not defer)
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
                    os.close(fd)
                    self._batch.append((tmp, oid))  # durable and in place when the batch ends
                else:
                    self.finish_object(fd, tmp, oid, synced=True)
        except OSError as e:
            raise disk_error(e, f"storing {src} in the cache") from e
        return oid, size

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
            return hash_file(self.path(oid), ours=True)[0] == oid
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
                got, _ = copy_and_hash_fd(src, fd, size, sync=False, ours=True)
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


def is_executable(st: os.stat_result) -> bool:
    return bool(st.st_mode & stat.S_IXUSR)
