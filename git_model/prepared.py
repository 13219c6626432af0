"""Work-tree copies written while their object downloads, named once the checkout gets there.

A pull used to fetch a large object into the cache (one read, one hash, one flushed write) and
then copy it again from the cache into the work tree: 0.26 s more per GiB, a fifth of the
pull. When a checkout asks for the download, the object's bytes also go, by a third thread
reading the same page cache, into an unnamed file in the folder of a work-tree file that uses
the object. That file has no name until the checkout reaches its path and finds it still to
be written (its bytes verified by then: the download is refused unless they hash to the oid);
any the checkout does not use are closed, and an unnamed file vanishes with its last
descriptor, also when the process is killed. Nothing reaches the work tree unverified, and
no litter is possible.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading

from .copying import SMALL_FILE
from .hashing import Oid
from .newfiles import open_unnamed, settle_new_file

MOST = 64  # unnamed files held open at once (each is a descriptor)


class Prepared:
    """Unnamed work-tree files, one per object at most, waiting for their names."""

    def __init__(self) -> None:
        self._files: dict[Oid, tuple[int, str]] = {}  # oid -> (descriptor, destination)
        self._made: list[str] = []  # folders made for them: removed again if left empty
        self._lock = threading.Lock()

    def start(self, oid: Oid, dest: str | None, size: int | None) -> int | None:
        """An unnamed file beside `dest` to write `oid`'s bytes into while they download, or
        None (no destination, a small object, too many held, no unnamed files here)."""
        if dest is None or size is None or size <= SMALL_FILE:
            return None
        with self._lock:
            if len(self._files) >= MOST or oid in self._files:
                return None
        folder = up = os.path.dirname(dest)
        missing = []
        while up and not os.path.isdir(up):
            missing.append(up)
            up = os.path.dirname(up)
        try:
            for made in reversed(missing):
                os.mkdir(made)
                with self._lock:
                    self._made.append(made)
            return open_unnamed(folder, 0o666)  # less the umask, as git does
        except OSError:
            return None  # the checkout writes it the usual way, and reports any error

    def keep(self, oid: Oid, fd: int, dest: str, size: int) -> None:
        """`fd` was written alongside `oid`'s verified download of `size` bytes, for `dest`;
        it is kept if it got all of them (a write to it may have failed: the work tree's disk
        is full, say, while the cache's is not), else closed."""
        with self._lock:
            if oid not in self._files and os.fstat(fd).st_size == size:
                self._files[oid] = (fd, dest)
                return
        os.close(fd)

    def place(self, oid: Oid, dest: str, executable: bool) -> bool:
        """Name the prepared copy of `oid` `dest`, if there is one for that path."""
        with self._lock:
            found = self._files.get(oid)
            if found is None or found[1] != dest:
                return False
            del self._files[oid]
        fd = found[0]
        try:
            if executable:  # x wherever r is, as git's 0777 less the umask gives
                mode = stat.S_IMODE(os.fstat(fd).st_mode)
                os.fchmod(fd, mode | (mode & 0o444) >> 2)
        except BaseException:
            os.close(fd)
            raise
        settle_new_file(fd, None, dest, large=True)
        return True

    def __len__(self) -> int:
        return len(self._files)

    def close(self) -> None:
        """Drop the copies nobody named (the checkout found those files already right)."""
        with self._lock:
            files, self._files = self._files, {}
            made, self._made = self._made, []
        for fd, _ in files.values():
            os.close(fd)
        for folder in reversed(made):  # deepest first; one that holds anything stays
            with contextlib.suppress(OSError):
                os.rmdir(folder)
