"""Fingerprints of stat data: what `Stamps` compares to know that nothing changed.

A file's fingerprint digests its stat data; a directory's digests each folder's files' stat
data (names, size, mtime, inode, ctime, the executable bits) and then the folders' digests in
path order. Standard library only, and not even `typing`: the commit hook and the fast status
run it on every call.
"""

from __future__ import annotations

import marshal
import os
import stat
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hashlib import sha1 as _new_sha1
else:
    try:  # the builtin SHA-1: OpenSSL's (hashlib) costs ~3 ms to load on every hook
        from _sha1 import sha1 as _new_sha1
    except ImportError:  # pragma: no cover (a Python built without it)
        from hashlib import sha1 as _new_sha1

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
SPLIT_FILES = 2048  # a directory stamped with at least this many files is walked by two processes


def fingerprint(
    root: str | os.PathLike[str], relpath: str, hint: int = 0, sink: list[Folder] | None = None
) -> str | None:
    """`<SHA-1 of the stat data of every file under relpath>:<files>:<newest m/ctime, ns>`;
    None for anything but a regular file or a directory of regular files. `sink` (a
    directory's) receives each folder's (prefix, digest, newest m/ctime) in path order.

    A directory is hashed a folder at a time (memory does not grow with its number of files),
    and the folders' digests in path order make the whole. When `hint` (the number of files it
    had last time) is large, half of the top folder's subfolders are walked by a forked
    process meanwhile: `lstat` is most of the cost (~3 µs each on a VM), and it uses both cores.
    """
    top = os.path.join(root, relpath)
    try:
        st = os.lstat(top)
    except OSError:
        return None
    if stat.S_ISREG(st.st_mode):
        digest = _new_sha1(marshal.dumps([_row("", st)]))
        return f"{digest.hexdigest()}:1:{max(st.st_mtime_ns, st.st_ctime_ns)}"
    if not stat.S_ISDIR(st.st_mode):
        return None
    walked = _walk_dir(top, split=hint >= SPLIT_FILES)
    if walked is None:
        return None
    folders, files, newest = walked
    folders.sort()
    if sink is not None:
        sink[:] = folders
    digests = [(prefix, digest) for prefix, digest, _ in folders]
    return f"{_new_sha1(marshal.dumps(digests)).hexdigest()}:{files}:{newest}"


def files_fingerprint(root: str | os.PathLike[str], relpaths: list[str]) -> str | None:
    """The same over a list of single files (None if one is missing or not a file)."""
    newest = 0
    rows = []
    for rel in relpaths:
        try:
            st = os.lstat(os.path.join(root, rel))
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        rows.append(_row(rel, st))
        newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    return f"{_new_sha1(marshal.dumps(rows)).hexdigest()}:{len(rows)}:{newest}"


def _row(rel: str, st: os.stat_result) -> tuple[str, int, int, int, int, int]:
    return (rel, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_mode & 0o111)


Folder = tuple[str, bytes, int]  # a folder with files: prefix ("" or "a/b/"), digest, newest
Walked = tuple[list[Folder], int, int]  # every folder with files, files, newest


def _walk_dir(top: str, *, split: bool) -> Walked | None:
    """Every folder's digest under `top`; with `split`, half the subtrees in a child."""
    out: list[Folder] = []
    subdirs: list[str] = []
    counts = _folder(top, "", out, subdirs)
    if counts is None:
        return None
    files, newest = counts
    child = _fork(top, subdirs[1::2]) if split and len(subdirs) > 1 else None
    mine = subdirs[::2] if child is not None else subdirs
    walked = _walk(top, mine, out)
    theirs = _join(child) if child is not None else ([], 0, 0)
    if walked is None or theirs is None:
        return None
    out += theirs[0]
    return out, files + walked[0] + theirs[1], max(newest, walked[1], theirs[2])


def _walk(top: str, stack: list[str], out: list[Folder]) -> tuple[int, int] | None:
    """Walk the subtrees `stack` (folders relative to `top`, each ending in "/")."""
    files = newest = 0
    while stack:
        counts = _folder(top, stack.pop(), out, stack)
        if counts is None:
            return None
        files += counts[0]
        newest = max(newest, counts[1])
    return files, newest


def _folder(top: str, prefix: str, out: list[Folder], subdirs: list[str]) -> tuple[int, int] | None:
    """One folder: its files' digest to `out`, its subfolders to `subdirs`; (files, newest
    mtime), or None if a file is not a regular file (or the folder cannot be read). One
    `scandir` (entry types come with the names), then one `lstat` a file relative to the
    open folder."""
    newest = 0
    lstat, isreg = os.lstat, stat.S_ISREG
    try:
        fd = os.open(os.path.join(top, prefix) if prefix else top, _DIR_FLAGS)
    except OSError:
        return None
    try:
        with os.scandir(fd) as it:
            entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        rows = []
        for name, is_dir in entries:
            if is_dir:
                subdirs.append(f"{prefix}{name}/")
            elif not (name[0] == "." and name.endswith(".gitmodel")):
                # (checkout's own temp files are skipped, as Workspace.walk skips them)
                st = lstat(name, dir_fd=fd)
                if not isreg(st.st_mode):
                    return None
                ctime = st.st_ctime_ns
                if ctime > newest:
                    newest = ctime
                mtime = st.st_mtime_ns
                if mtime > newest:
                    newest = mtime
                rows.append((name, st.st_size, mtime, st.st_ino, ctime, st.st_mode & 0o111))
    except OSError:
        return None
    finally:
        os.close(fd)
    if rows:
        rows.sort()  # the order scandir gives is the file system's, not always the same
        out.append((prefix, _new_sha1(marshal.dumps(rows)).digest(), newest))
    return len(rows), newest


def _fork(top: str, stack: list[str]) -> tuple[int, int] | None:
    """Start a child walking `stack`; (pid, read end of its pipe), or None where forking is
    not safe (another thread runs) or fails: the caller walks it all."""
    threading = sys.modules.get("threading")
    if not hasattr(os, "fork") or (threading is not None and threading.active_count() > 1):
        return None
    try:
        r, w = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return None
    if pid == 0:  # the child: its answer down the pipe, then out without any clean-up
        code = 1
        try:
            os.close(r)
            out: list[Folder] = []
            walked = _walk(top, stack, out)
            data = marshal.dumps(None if walked is None else (out, *walked))
            view = memoryview(data)
            while view:
                view = view[os.write(w, view) :]
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    return pid, r


def _join(child: tuple[int, int]) -> Walked | None:
    pid, r = child
    chunks = []
    try:
        while chunk := os.read(r, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    try:
        found = marshal.loads(b"".join(chunks)) if status == 0 else None
    except (ValueError, EOFError, TypeError):
        return None
    return None if found is None else (found[0], found[1], found[2])
