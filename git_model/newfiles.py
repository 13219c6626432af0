"""New files put in place of their names atomically: the work tree never shows a half-written
file, and a killed process leaves nothing, or a temp name it recognises as its own, behind.

A new file is opened unnamed (Linux `O_TMPFILE`) in the folder of its destination, or under a
temp name beside it where the system has no unnamed files; it is given its name only once its
bytes are complete and verified, dated back first (`pin_times`) so that the stat record taken
right after can be trusted. A large file replacing another is swapped in by an exchange of
names, and the old one removed after the command has returned.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import subprocess
import time

from .linuxcalls import exchange

REMOVE_LATER = 32 << 20  # a replaced file this large is removed after the command returns


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
