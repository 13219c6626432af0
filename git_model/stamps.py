"""Stamps: is an artifact exactly as last seen? One pass of `lstat`s and one small file read.

The stat cache answers per file and needs sqlite; the commit hook and `git model status` ask a
coarser question every time they run: did anything under this artifact change at all? A stamp
is one SHA-1 over the stat data (name, size, mtime, inode, ctime, executable bits) of every
file of an artifact, kept with the oid the artifact had and the time the stamp was taken. When
the work tree still gives the same fingerprint, the artifact is unchanged and nothing is read,
hashed or looked up: for a tracked directory of 10,000 files that is 10,000 `lstat`s (each
folder's names from one `scandir`, each file stat'ed relative to its open folder), not a walk
through the stat cache.

The fingerprint is taken before the artifact is hashed, so a change made while it is being
hashed shows up next time. Git's racy-timestamp rule applies, to the later of each file's
mtime and ctime (a write dated back with `touch -d` or utime() still moves ctime, which cannot
be set): a stamp whose files changed too close to the moment it was taken (`racy`: the same
second on a file system of whole seconds, else 100 ms) is not trusted, since a second write
within the same timestamp tick could leave every stat field as it was. The time a
stamp is taken is read from the coarse clock, the one the kernel gives file timestamps from,
so that a write just after the stamp can never carry a timestamp from before it (`now_ns`). Anything unusual (a symlink, a
special file, a path that vanished) has no fingerprint and takes the full path.

The per-worktree file `<git dir>/model/stamps` (marshal: read without importing json) holds:

- `artifacts`: path -> (fingerprint, oid, taken_ns), written by the commit hook and by status;
  each is a fact that holds whoever wrote it ("these stat data were this oid").
- `seal`: the commit hook's fast path (hooks/fastpath.py), with the oids it was made for.
- `cached`: artifact oid -> the cache's removal generation when every object it needs was
  seen in the cache. Every removal of an object (gc, quarantine) bumps the generation after
  the fact (cache.note_removal), so a fact is dropped by any removal since.
- `status`: the last answer of `git model status` when everything was unchanged, with the
  fingerprint of the manifest and listings it was read from (ops/fast_status.py).

Writers replace the whole file (a temp file of their own, then rename); the last one wins, and
losing what another wrote costs one slower run, never a wrong answer. Losing the file costs
one slower commit and one slower status.
"""

from __future__ import annotations

import marshal
import os
import stat
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing costs ~3 ms to import, and nothing on the fast path needs it)
    from collections.abc import Iterable
    from hashlib import sha1 as _new_sha1
    from typing import Any
else:
    try:  # the builtin SHA-1: OpenSSL's (hashlib) costs ~3 ms to load on every hook
        from _sha1 import sha1 as _new_sha1
    except ImportError:  # pragma: no cover (a Python built without it)
        from hashlib import sha1 as _new_sha1

FILE = "stamps"
OLD_FILE = "stamps.json"  # the first version's (JSON, removed on the next save)
VERSION = 2
REMOVALS = "objects-removed"  # in the model dir: grows by a byte with each removal
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)


RACY_NS = 100_000_000  # 10× the coarsest sub-second timestamp tick in use (exFAT: 10 ms)


def racy(mtime_ns: int, taken_ns: int) -> bool:
    """Whether a file modified at `mtime_ns` may have changed again, under the same stat, after
    its stat or hash was taken at `taken_ns`: modified in the same second on a file system that
    keeps whole seconds, else within RACY_NS. Such a record is never trusted as it stands (the
    stat cache's and the stamps' one rule)."""
    if mtime_ns % 1_000_000_000 == 0:  # whole seconds: a coarse file system
        return mtime_ns // 1_000_000_000 >= taken_ns // 1_000_000_000
    return mtime_ns + RACY_NS >= taken_ns


def now_ns() -> int:
    """Now, by the clock file timestamps come from (never ahead of a later write's mtime)."""
    coarse = getattr(time, "CLOCK_REALTIME_COARSE", None)
    if coarse is not None:
        return time.clock_gettime_ns(coarse)
    return time.time_ns() - 20_000_000  # elsewhere: allow for a coarse tick behind


SPLIT_FILES = 2048  # a directory stamped with at least this many files is walked by two processes


def fingerprint(root: str | os.PathLike[str], relpath: str, hint: int = 0) -> str | None:
    """`<SHA-1 of the stat data of every file under relpath>:<files>:<newest m/ctime, ns>`;
    None for anything but a regular file or a directory of regular files.

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
    digests, files, newest = walked
    digests.sort()
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


Walked = tuple[list[tuple[str, bytes]], int, int]  # (folder, digest) pairs, files, newest


def _walk_dir(top: str, *, split: bool) -> Walked | None:
    """Every folder's digest under `top`; with `split`, half the subtrees in a child."""
    out: list[tuple[str, bytes]] = []
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


def _walk(top: str, stack: list[str], out: list[tuple[str, bytes]]) -> tuple[int, int] | None:
    """Walk the subtrees `stack` (folders relative to `top`, each ending in "/")."""
    files = newest = 0
    while stack:
        counts = _folder(top, stack.pop(), out, stack)
        if counts is None:
            return None
        files += counts[0]
        newest = max(newest, counts[1])
    return files, newest


def _folder(
    top: str, prefix: str, out: list[tuple[str, bytes]], subdirs: list[str]
) -> tuple[int, int] | None:
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
        out.append((prefix, _new_sha1(marshal.dumps(rows)).digest()))
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
            out: list[tuple[str, bytes]] = []
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


def trusted(stamp: Any, current: str | None) -> bool:
    """Does a stamp `(fingerprint, oid, taken_ns)` still hold for the `current` fingerprint?"""
    if current is None or not isinstance(stamp, (tuple, list)) or len(stamp) != 3:
        return False
    fp, _oid, taken_ns = stamp
    if fp != current or not isinstance(taken_ns, int):
        return False
    return not racy(int(current.rsplit(":", 1)[1]), taken_ns)


def files_in(stamp: Any) -> int:
    """How many files a stamp's artifact had (0 if unknown)."""
    try:
        return int(stamp[0].split(":")[1])
    except (TypeError, IndexError, ValueError, AttributeError):
        return 0


def removal_generation(model_dir: str | os.PathLike[str]) -> tuple[int, int, int]:
    """Changes whenever an object has left the cache since (see cache.note_removal)."""
    try:
        st = os.stat(os.path.join(model_dir, REMOVALS))
    except OSError:
        return (0, 0, 0)
    return (st.st_size, st.st_mtime_ns, st.st_ino)


class Stamps:
    def __init__(self, git_dir: str | os.PathLike[str], root: str | os.PathLike[str]) -> None:
        self.dir = os.path.join(git_dir, "model")
        self.path = os.path.join(self.dir, FILE)
        self.root = root
        self.artifacts: dict[str, Any] = {}
        self.seal: dict[str, Any] | None = None
        self.cached: dict[str, Any] = {}
        self.status: dict[str, Any] | None = None
        self.pending: dict[str, tuple[str, int]] = {}  # fingerprint and when it was taken
        self.changed = False
        try:
            with open(self.path, "rb") as f:
                data = marshal.load(f)
        except (OSError, ValueError, EOFError, TypeError):
            return  # none yet, or unreadable: as good as none
        if isinstance(data, dict) and data.get("version") == VERSION:
            self._take(data)

    def _take(self, data: dict[str, Any]) -> None:
        for name in ("artifacts", "cached"):
            if isinstance(data.get(name), dict):
                setattr(self, name, data[name])
        for name in ("seal", "status"):
            if isinstance(data.get(name), dict):
                setattr(self, name, data[name])

    def take(self, relpath: str) -> str | None:
        """Fingerprint `relpath` now, to `stamp` it once its oid is known."""
        taken = now_ns()
        current = fingerprint(self.root, relpath, files_in(self.artifacts.get(relpath)))
        if current is not None:
            self.pending[relpath] = (current, taken)
        return current

    def unchanged(self, relpath: str, oid: str) -> bool:
        """True when `relpath` is exactly as it was when stamped as `oid`."""
        current = self.take(relpath)
        stamp = self.artifacts.get(relpath)
        return trusted(stamp, current) and stamp is not None and stamp[1] == oid

    def stamp(self, relpath: str, oid: str) -> None:
        """Remember the fingerprint taken by `take` / `unchanged` (before hashing) as `oid`."""
        taken = self.pending.get(relpath)
        if taken is not None:
            new = (taken[0], str(oid), taken[1])
            if self.artifacts.get(relpath) != new:
                self.artifacts[relpath] = new
                self.changed = True

    def keep_only(self, paths: set[str]) -> None:
        """Forget the stamps of paths that are no longer artifacts."""
        for relpath in set(self.artifacts) - paths:
            del self.artifacts[relpath]
            self.changed = True

    def set_cached(self, oids: dict[str, Any]) -> None:
        """Artifact oids whose objects were all seen in the cache, under its generation."""
        if any(self.cached.get(oid) != gen for oid, gen in oids.items()):
            self.cached.update(oids)
            self.changed = True

    def set_status(self, status: dict[str, Any] | None) -> None:
        if status != self.status:
            self.status = status
            self.changed = True

    def save(
        self,
        keep: set[str],
        seal: dict[str, Any] | None = None,
        *,
        reseal: bool,
        recorded: Iterable[str] = (),
    ) -> None:
        """Write the stamps out, keeping those of the artifacts in `keep`; with `reseal` the
        seal becomes `seal` (else the one read stays). `cached` facts are kept for the oids the
        work tree has and for `recorded` (the manifest's, while the work tree has others)."""
        self.keep_only(keep)
        live = {s[1] for s in self.artifacts.values() if isinstance(s, (tuple, list)) and s[1:]}
        live.update(recorded)
        for oid in set(self.cached) - live:
            del self.cached[oid]
            self.changed = True
        if reseal and seal != self.seal:
            self.seal = seal
            self.changed = True
        if not self.changed:
            return
        os.makedirs(self.dir, exist_ok=True)
        data = {
            "version": VERSION,
            "artifacts": self.artifacts,
            "seal": self.seal,
            "cached": self.cached,
            "status": self.status,
        }
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                marshal.dump(data, f)
            os.replace(tmp, self.path)
        except BaseException:
            _unlink(tmp)
            raise
        _unlink(os.path.join(self.dir, OLD_FILE))
        self.changed = False


def _unlink(path: str) -> None:
    try:  # noqa: SIM105 (contextlib: ~1 ms more on every hook)
        os.unlink(path)
    except OSError:
        pass
