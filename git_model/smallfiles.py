"""Writing many small files out of the cache: one tight loop per process.

A checkout of a 10,000-file data set is mostly small files, and for them the per-file cost is
the whole cost. Threads do not help there: each of the ~8 system calls a file needs gives up
Python's lock and takes it back, and threads that trade the lock that often spend more time
waking each other than copying (measured on tmpfs: 1.78 s on 4 threads, 0.72 s on one).
So files up to SMALL_FILE go through `write_small`: read the object whole, hash it, write it
into an unnamed file in its folder and give that file its name, with nothing else on the way
(no path objects, no second stat). `parallel.iter_split` runs it in several processes, as git's
parallel checkout does.

Each result is a plain tuple (it may cross a pipe from another process): WRITTEN and the new
file's stat key, MISSING, CORRUPT (the object's bytes do not hash to its name; nothing was
written), or SLOW: this file needs the general path (`Cache.materialize`), which also words
any error.
"""

from __future__ import annotations

import gc
import hashlib
import os

from .copying import SMALL_FILE, write_all
from .newfiles import UNNAMED_FLAGS, replace_with_new_file, unnamed_files_work

WRITTEN, MISSING, CORRUPT, SLOW = 0, 1, 2, 3

Item = tuple[str, str, bool, int]  # oid, absolute destination, executable, size
Outcome = tuple[int, ...]  # (WRITTEN, size, mtime_ns, inode, ctime_ns) or (MISSING,) …


def can_write_small(link_type: str) -> bool:
    """Whether `write_small` works here: copies (not links) on a system with unnamed files."""
    return link_type not in ("hardlink", "symlink") and unnamed_files_work()


def write_small(objects: str, items: list[Item], verified: frozenset[str]) -> list[Outcome]:
    """Write each small file of `items` from the cache folder `objects`, verifying its bytes
    (unless its oid is in `verified`: hashed by this process as it arrived). The destination
    folders exist and were checked to be safe to write through."""
    out: list[Outcome] = []
    gc.disable()  # a loop that makes ~10 small objects a file and keeps none that could cycle
    try:
        _write_all(objects, items, verified, out)
    finally:
        gc.enable()
    return out


def _write_all(
    objects: str, items: list[Item], verified: frozenset[str], out: list[Outcome]
) -> None:
    """Creating each file under its name, as `cp` and git do, would be ~10% faster (10,000
    files on ext4: 0.34 s against 0.38 s), but a checkout killed between the create and the
    write would leave a half-written file under that name; an unnamed file leaves nothing.
    The calls are made inline (no helper per file: ~1 µs a file, 3% of the loop)."""
    sha256, open_, read, write, close = hashlib.sha256, os.open, os.read, os.write, os.close
    link, fstat = os.link, os.fstat
    rdonly = os.O_RDONLY | os.O_CLOEXEC
    for oid, dest, executable, size in items:
        try:
            src = open_(f"{objects}/{oid[:2]}/{oid[2:]}", rdonly)
        except FileNotFoundError:
            out.append((MISSING,))
            continue
        except OSError:
            out.append((SLOW,))
            continue
        try:
            data = read(src, size + 1)
        except OSError:
            out.append((SLOW,))
            continue
        finally:
            close(src)
        if len(data) > size:  # the listing's size is wrong: the general path reads it all
            out.append((SLOW,))
            continue
        if oid not in verified and sha256(data).hexdigest() != oid:
            out.append((CORRUPT,))
            continue
        try:  # (newfiles.open_unnamed; where unnamed files fail, the general path learns it)
            fd = open_(dest.rpartition("/")[0], UNNAMED_FLAGS, 0o777 if executable else 0o666)
        except OSError:
            out.append((SLOW,))
            continue
        try:
            done = write(fd, data)
            if done != len(data):  # (a short write)
                write_all(fd, data[done:])
            try:
                link(f"/proc/self/fd/{fd}", dest, src_dir_fd=fd)  # (newfiles.give_name)
            except FileExistsError:  # something is there: a temp name, renamed over it
                replace_with_new_file(fd, None, dest, large=False)
            st = fstat(fd)  # after the link: linking changes the ctime
        except OSError:
            out.append((SLOW,))
            continue
        finally:
            close(fd)
        out.append((WRITTEN, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))


__all__ = [
    "CORRUPT",
    "MISSING",
    "SLOW",
    "SMALL_FILE",
    "WRITTEN",
    "Item",
    "Outcome",
    "can_write_small",
    "write_small",
]
