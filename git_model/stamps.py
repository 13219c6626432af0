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

Beside it, `<git dir>/model/stamps.d/<SHA-1 of the path>` holds, for a directory of two or more
folders of files, each folder's digest and newest m/ctime as they were when the listing it was
stamped for was made (written with the stamp when that listing is kept, read only when the
directory changed): `reusable` says which folders still hold their lines of it (rescan.py).

Writers replace the whole file (a temp file of their own, then rename); the last one wins, and
losing what another wrote costs one slower run, never a wrong answer. Losing the file costs
one slower commit and one slower status.
"""

from __future__ import annotations

import marshal
import os
import time

from . import watch
from .statwalk import Folder, files_fingerprint, fingerprint

__all__ = ["Folder", "Stamps", "files_fingerprint", "fingerprint", "now_ns", "racy"]

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


MIN_FOLDERS = 2  # a directory with fewer folders of files is rescanned whole when it changes
FOLDERS_DIR = "stamps.d"  # in the model dir: each directory's folders (Stamps.reusable)


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
        self.folders: dict[str, list[Folder]] = {}  # a directory's folders, as `take` saw them
        self._folders_out: dict[str, tuple[str, int, list[Folder]]] = {}  # to save
        self.watch: dict[str, Any] = {}  # path -> the watcher's token its stamp was taken at
        self.pending_token: dict[str, tuple[str, int] | None] = {}
        self._answer: watch.Answer | None = None
        self._asked = False
        self.changed = False
        try:
            with open(self.path, "rb") as f:
                data = marshal.load(f)
        except (OSError, ValueError, EOFError, TypeError):
            return  # none yet, or unreadable: as good as none
        if isinstance(data, dict) and data.get("version") == VERSION:
            self._take(data)

    def _take(self, data: dict[str, Any]) -> None:
        for name in ("artifacts", "cached", "watch"):
            if isinstance(data.get(name), dict):
                setattr(self, name, data[name])
        for name in ("seal", "status"):
            if isinstance(data.get(name), dict):
                setattr(self, name, data[name])

    def _ask(self, relpath: str) -> watch.Answer | None:
        """`git model watch`'s answer (watch.py), asked once for every artifact stamped."""
        if self._answer is not None and relpath in self._answer[2]:
            return self._answer
        if self._asked and self._answer is None:
            return None  # (no daemon: not asked again)
        self._asked = True
        self._answer = watch.ask(self.dir, sorted({*self.artifacts, relpath}), str(self.root))
        return self._answer

    def _token(self, relpath: str) -> tuple[str, int] | None:
        """The watcher's counter now, if it vouches for `relpath` (asked before a walk)."""
        answer = self._ask(relpath)
        if answer is None or answer[2].get(relpath) is None:
            return None
        return answer[0], answer[1]

    def _quiet(self, relpath: str, stamp: Any) -> bool:
        """True when the watcher saw nothing touch `relpath` since its stamp was taken (the
        stamp not racy): it holds without a walk. Takes the stamp as the fingerprint."""
        token = self.watch.get(relpath)
        if not isinstance(token, tuple) or len(token) != 2 or not trusted(stamp, stamp[0]):
            return False
        answer = self._ask(relpath)
        if answer is None or answer[0] != token[0]:
            return False
        seen = answer[2].get(relpath)
        if seen is None or not isinstance(token[1], int) or seen > token[1]:
            return False
        self.pending[relpath] = (stamp[0], stamp[2])
        self.pending_token[relpath] = token
        return True

    def holds(self, relpath: str, oid: str) -> bool:
        """True when `relpath` is exactly as it was when stamped as `oid` (the watcher's word,
        or else a fingerprint walk)."""
        stamp = self.artifacts.get(relpath)
        if not isinstance(stamp, tuple) or len(stamp) != 3 or stamp[1] != oid:
            return False
        return self._quiet(relpath, stamp) or trusted(stamp, self.take(relpath))

    def keep_tokens(self, held: dict[str, str]) -> None:
        """After `holds` said yes to each of `held` (path -> oid), walking where it had to:
        stamp those walked with the watcher's token, so that next time it is taken at its
        word; and save (nothing is written when nothing new was learnt)."""
        for relpath, oid in held.items():
            token = self.pending_token.get(relpath)
            if token is not None and self.watch.get(relpath) != token:
                self.stamp(relpath, oid, folders=False)
        if self.changed:
            self.save(set(self.artifacts), reseal=False, recorded=held.values())

    def take(self, relpath: str) -> str | None:
        """Fingerprint `relpath` now, to `stamp` it once its oid is known."""
        self.pending_token[relpath] = self._token(relpath)  # (asked before the walk begins)
        taken = now_ns()
        folders: list[Folder] = []
        current = fingerprint(self.root, relpath, files_in(self.artifacts.get(relpath)), folders)
        if current is not None:
            self.pending[relpath] = (current, taken)
            if len(folders) >= MIN_FOLDERS:
                self.folders[relpath] = folders
        return current

    def unchanged(self, relpath: str, oid: str) -> bool:
        """True when `relpath` is exactly as it was when stamped as `oid`; either way its
        fingerprint is then pending, to `stamp` it once hashed."""
        stamp = self.artifacts.get(relpath)
        if isinstance(stamp, tuple) and stamp[1:2] == (oid,) and self._quiet(relpath, stamp):
            return True
        current = self.take(relpath)
        return trusted(stamp, current) and stamp is not None and stamp[1] == oid

    def stamp(self, relpath: str, oid: str, *, folders: bool = True) -> None:
        """Remember the fingerprint taken by `take` / `unchanged` (before hashing) as `oid`;
        with `folders`, a directory's folders too (for `reusable`: only where the listing
        `oid` names is kept, in the index or a commit)."""
        taken = self.pending.get(relpath)
        if taken is not None:
            new = (taken[0], str(oid), taken[1])
            if self.artifacts.get(relpath) != new:
                self.artifacts[relpath] = new
                self.changed = True
            token = self.pending_token.get(relpath)
            if self.watch.get(relpath) != token:
                if token is None:
                    del self.watch[relpath]
                else:
                    self.watch[relpath] = token
                self.changed = True
            seen = self.folders.get(relpath) if folders else None
            if seen is not None:
                self._folders_out[relpath] = (str(oid), taken[1], seen)

    def reusable(self, relpath: str, oid: str) -> tuple[set[str], set[str]] | None:
        """For a directory `take` fingerprinted now and stamped as `oid` before: the prefixes
        of its folders whose files are exactly as they were then (their lines of the listing
        `oid` still hold), and of the others. None without such a stamp.

        A folder counts as unchanged when the stat data of its files (names, size, mtime,
        inode, ctime, mode) digest as before and none was racy when that stamp was taken."""
        now = self.folders.get(relpath)
        if now is None:
            return None
        before = _read_folders(self._folders_file(relpath), relpath, oid)
        if before is None:
            return None
        taken, old = before
        unchanged, changed = set(), set()
        for prefix, digest, _newest in now:
            was = old.get(prefix)
            if was is not None and was[0] == digest and not racy(was[1], taken):
                unchanged.add(prefix)
            else:
                changed.add(prefix)
        return unchanged, changed

    def _folders_file(self, relpath: str) -> str:
        name = _new_sha1(relpath.encode("utf-8", "surrogateescape")).hexdigest()
        return os.path.join(self.dir, FOLDERS_DIR, name)

    def keep_only(self, paths: set[str]) -> None:
        """Forget the stamps of paths that are no longer artifacts."""
        for relpath in set(self.watch) - paths:
            del self.watch[relpath]
            self.changed = True
        for relpath in set(self.artifacts) - paths:
            del self.artifacts[relpath]
            _unlink(self._folders_file(relpath))  # (its folders' stamps, if it had any)
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
        self._save_folders(keep)
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
            "watch": self.watch,
        }
        _dump(self.path, data)
        _unlink(os.path.join(self.dir, OLD_FILE))
        self.changed = False

    def _save_folders(self, keep: set[str]) -> None:
        """The folders of each directory stamped in this run, one file per directory (read
        only when one changed, never on the no-change path)."""
        for relpath, (oid, taken, folders) in self._folders_out.items():
            if relpath not in keep:
                continue
            path = self._folders_file(relpath)
            data = {"version": 1, "path": relpath, "oid": oid, "taken": taken, "folders": folders}
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                _dump(path, data)
            except OSError:
                pass  # only a cache: the next change is found by a full walk
        self._folders_out.clear()


def _read_folders(
    path: str, relpath: str, oid: str
) -> tuple[int, dict[str, tuple[bytes, int]]] | None:
    """(taken_ns, prefix -> (digest, newest)) of a folders file written for `relpath` stamped
    as `oid`; None if there is none, or it is for something else, or does not read."""
    try:
        with open(path, "rb") as f:
            data = marshal.load(f)
        if (
            not isinstance(data, dict)
            or data.get("version") != 1
            or data.get("path") != relpath
            or data.get("oid") != oid
            or not isinstance(data.get("taken"), int)
        ):
            return None
        old = {}
        for prefix, digest, newest in data["folders"]:
            if not (
                isinstance(prefix, str) and isinstance(digest, bytes) and isinstance(newest, int)
            ):
                return None
            old[prefix] = (digest, newest)
    except (OSError, ValueError, EOFError, TypeError, KeyError):
        return None
    return data["taken"], old


def _dump(path: str, data: dict[str, Any]) -> None:
    """Replace `path` with `data` (marshal) whole: a temp file of this process, then rename."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            marshal.dump(data, f)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:  # noqa: SIM105 (contextlib: ~1 ms more on every hook)
        os.unlink(path)
    except OSError:
        pass
