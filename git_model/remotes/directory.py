"""Writing objects into a directory remote (a local folder, a mounted share).

An upload is a temp file under `<root>/tmp/`, written while the cache object is hashed (so a
bit-rotted cache object never reaches the remote), made durable, then renamed to
`objects/ab/cdef…`: no reader ever sees a partial object under its final name.

Making each small file durable on its own costs a journal commit per file (an fsync: about a
millisecond on a quiet disk, far more on a busy one, to store 4 KiB). Inside `batch()` a
small object is written and verified but left under its temp name; leaving the batch flushes
them all at once (one syncfs; an fsync each where there is none), then renames them. A kill
before the renames leaves only temp files, swept away by a later push once they are a day
old. `finish()` makes the renames themselves durable, once per push, before the pre-push hook
lets git move any ref.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..copying import copy_and_hash, fsync_path, watch_size, write_all
from ..errors import CorruptObject
from ..hashing import Oid
from ..linuxcalls import syncfs
from . import codec, crashpoint

Pending = tuple[str, str, Oid, int]  # temp file, final name, oid, size: waiting for a flush
Failure = tuple[Oid, int, OSError]  # an object that could not take its name at the flush
SMALL = 1 << 20  # objects up to this size are copied with one read, and wait for a batch flush
STALE_TMP = 86400.0  # a temp file this old is a killed push's


class DirectoryWriter:
    """The write side of one directory remote."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.tmp = f"{root}/tmp"
        self._tmp_ready = False
        self._pending: list[Pending] | None = None
        self._renamed_into: set[str] = set()  # folders whose new entries are not yet durable

    def write(
        self,
        src: Path,
        oid: Oid,
        dest: str,
        advance: Callable[[int], None] | None,
        level: int | None = None,
    ) -> tuple[int, int]:
        """Copy the cache object `src` to `dest`, hashing it on the way; returns its size and
        the bytes it takes on the remote. With a zstd `level`, an object that compresses by
        10% goes to `dest`'s frame name as a frame instead (codec.py).

        CorruptObject (nothing written) when the bytes do not hash to `oid`.
        """
        fd, tmp = self._temp(oid)
        try:
            try:
                src_fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    size = os.fstat(src_fd).st_size
                    stored = size
                    width = None
                    if level is not None and size > SMALL:
                        width = codec.probe(src_fd, size, level)
                    if size <= SMALL:  # one read: cheaper than a copy thread per file
                        data = os.read(src_fd, size + 1)  # (a 1 MiB buffer: 18 µs more)
                        size = stored = len(data)
                        got = Oid(hashlib.sha256(data).hexdigest())
                        frame = None if level is None else codec.pack(data, level)
                        if frame is not None:
                            data, dest, stored = frame, codec.frame_key(dest), len(frame)
                        write_all(fd, data)
                        synced = False
                    elif width is not None and level is not None:
                        encoded = codec.encode(src_fd, size, width, level, _writer(fd))
                        got, size, stored = Oid(encoded.digest), encoded.size, encoded.stored
                        dest = codec.frame_key(dest)
                        os.fsync(fd)
                        synced = True
                    else:  # the copy thread also flushes, alongside the hash
                        with watch_size(fd, advance):
                            got, size = copy_and_hash(src, fd, sync=True, ours=True)
                        advance, synced = None, True  # reported as it went
                finally:
                    os.close(src_fd)
                if got != oid:
                    raise CorruptObject(f"object {oid.short} does not hash to its name")
                defer = self._pending is not None and not synced
                if not synced and not defer:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if defer and self._pending is not None:
                self._pending.append((tmp, dest, oid, size))  # durable and renamed at the end
            else:
                self._rename(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if advance:
            advance(size)
        return size, stored

    @contextlib.contextmanager
    def batch(self, failed: list[Failure]) -> Iterator[None]:
        """Let small objects written inside share one flush to disk, and appear on leaving.

        An object that cannot take its name then (a folder squats it) is added to `failed`;
        the others still appear. On an error inside, the objects still waiting are dropped
        (their temp files go): they were never visible, so a rerun sends them again."""
        if self._pending is not None:  # nested: the outer batch flushes
            yield
            return
        pending: list[Pending] = []
        self._pending = pending
        try:
            yield
            if pending and not syncfs(self.tmp):
                for tmp, *_ in pending:
                    fsync_path(tmp)
            while pending:
                tmp, dest, oid, size = pending.pop()
                try:
                    self._rename(tmp, dest)
                except OSError as e:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    failed.append((oid, size, e))
        finally:
            self._pending = None
            for tmp, *_ in pending:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def finish(self) -> None:
        """Make every rename so far durable: after this, a power cut loses no object that a
        push reported sent. Also tidies the temp files of pushes killed long ago when this
        push wrote nothing (a rerun that found everything already there)."""
        if not self._tmp_ready:
            _sweep_stale(self.tmp)
            self._tmp_ready = os.path.isdir(self.tmp)
        if not self._renamed_into:
            return
        if not syncfs(self.root):
            for folder in sorted(self._renamed_into):
                fsync_path(folder)
        self._renamed_into.clear()

    def temp(self, label: str) -> tuple[int, str]:
        """A new temp file under the remote's tmp/ (a pack being written: packed.py)."""
        return self._temp(label)

    def place(self, tmp: str, dest: str) -> None:
        """Rename a durable temp file into place; `finish()` makes the rename durable."""
        self._rename(tmp, dest)

    def _temp(self, label: str) -> tuple[int, str]:
        if not self._tmp_ready:
            os.makedirs(self.tmp, exist_ok=True)
            _sweep_stale(self.tmp)
            self._tmp_ready = True
        while True:  # created read-only: the fd still writes, and no chmod is needed later
            tmp = f"{self.tmp}/{label[:12]}.{os.urandom(4).hex()}"
            with contextlib.suppress(FileExistsError):
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
                return os.open(tmp, flags, 0o444), tmp

    def _rename(self, tmp: str, dest: str) -> None:
        crashpoint.before_visible()
        folder = os.path.dirname(dest)
        try:
            os.replace(tmp, dest)
        except FileNotFoundError:  # the first object under this prefix
            os.makedirs(folder, exist_ok=True)
            self._renamed_into.add(os.path.dirname(folder))
            os.replace(tmp, dest)
        self._renamed_into.add(folder)
        crashpoint.visible()


def _writer(fd: int) -> Callable[[bytes], None]:
    return lambda data: write_all(fd, data)


def _sweep_stale(folder: str) -> None:
    """Remove temp files that pushes killed more than a day ago left (a live upload's is
    fresh: its file grows as it goes), so a shared remote does not fill up with them."""
    cutoff = time.time() - STALE_TMP
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for e in entries:
            with contextlib.suppress(OSError):
                if e.is_file(follow_symlinks=False) and e.stat().st_mtime < cutoff:
                    os.unlink(e.path)
