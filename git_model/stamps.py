"""Stamps: is an artifact exactly as the commit hook last recorded it? One pass of `lstat`s.

The stat cache answers per file and needs sqlite; a commit hook asks a coarser question on every
commit: did anything under this artifact change at all? A stamp is one SHA-1 over the stat data
(name, size, mtime, inode, ctime, executable bit) of every file of an artifact, kept with the oid it was
recorded as and the time the stamp was taken. When the work tree still gives the same
fingerprint, the artifact is unchanged and nothing is read, hashed or looked up: for a tracked
directory of 10,000 files that is 10,000 `lstat`s, not a walk through the stat cache.

The fingerprint is taken before the artifact is hashed, so a change made while it is being
recorded shows up next time. Git's racy-timestamp rule applies as in the stat cache: a stamp
whose files were modified in the same second it was taken is not trusted. Anything unusual (a
symlink, a special file, a path that vanished) simply has no fingerprint and takes the full
path.

The same per-worktree file (`<git dir>/model/stamps.json`) keeps the seal of the fast path (see
fastpath.py). Losing the file costs one slower commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import os
import stat
import time
from pathlib import Path
from typing import Any

FILE = "stamps.json"
Row = tuple[str, int, int, int, int, int]  # relpath, size, mtime_ns, inode, ctime_ns, x bits


def fingerprint(root: Path, relpath: str) -> str | None:
    """SHA-1 of the stat data of every file under `relpath` and the newest mtime (in ns) after
    a colon; None for anything but a regular file or a directory of regular files. A directory
    is hashed a folder at a time: memory does not grow with its number of files."""
    top = os.path.join(root, relpath)
    try:
        st = os.lstat(top)
    except OSError:
        return None
    digest = hashlib.sha1(usedforsecurity=False)
    if stat.S_ISREG(st.st_mode):
        digest.update(marshal.dumps([_row("", st)]))
        newest: int | None = st.st_mtime_ns
    elif stat.S_ISDIR(st.st_mode):
        newest = _walk(top, digest)
    else:
        return None
    if newest is None:
        return None
    return f"{digest.hexdigest()}:{newest}"


def _row(rel: str, st: os.stat_result) -> Row:
    return (rel, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_mode & 0o111)


def _walk(top: str, digest: Any) -> int | None:
    """Feed each folder's rows to `digest`; the newest mtime, or None if a file is not a
    regular file (or a folder cannot be read)."""
    newest = 0
    lstat = os.lstat
    stack = [""]
    while stack:
        prefix = stack.pop()
        directory = os.path.join(top, prefix) if prefix else top
        rows = []
        try:
            with os.scandir(directory) as it:
                entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
            base = directory + os.sep
            for name, is_dir in entries:
                if is_dir:
                    stack.append(f"{prefix}{name}/")
                elif not (name.startswith(".") and name.endswith(".gitmodel")):
                    # (checkout's own temp files are skipped, as Workspace.walk skips them)
                    st = lstat(base + name)
                    if not stat.S_ISREG(st.st_mode):
                        return None
                    rows.append(_row(prefix + name, st))
                    newest = max(newest, st.st_mtime_ns)
        except OSError:
            return None
        if rows:
            digest.update(marshal.dumps(rows))
    return newest


def trusted(stamp: Any, current: str | None) -> bool:
    """Does a stamp `[fingerprint, oid, taken_ns]` still hold for the `current` fingerprint?"""
    if current is None or not isinstance(stamp, list) or len(stamp) != 3:
        return False
    fp, _oid, taken_ns = stamp
    newest = int(current.rsplit(":", 1)[1])
    return fp == current and isinstance(taken_ns, int) and newest // 10**9 < taken_ns // 10**9


class Stamps:
    def __init__(self, git_dir: Path, root: Path) -> None:
        self.path = git_dir / "model" / FILE
        self.root = root
        self.artifacts: dict[str, Any] = {}
        self.seal: dict[str, Any] | None = None
        self.pending: dict[str, tuple[str, int]] = {}  # fingerprint and when it was taken
        self.changed = False
        with contextlib.suppress(FileNotFoundError, ValueError):
            data = json.loads(self.path.read_text("utf-8"))
            if isinstance(data, dict) and isinstance(data.get("artifacts"), dict):
                self.artifacts = data["artifacts"]
                seal = data.get("seal")
                self.seal = seal if isinstance(seal, dict) else None

    def unchanged(self, relpath: str, oid: str) -> bool:
        """True when `relpath` is exactly as it was when stamped as `oid`."""
        now = time.time_ns()
        current = fingerprint(self.root, relpath)
        if current is None:
            return False
        self.pending[relpath] = (current, now)
        stamp = self.artifacts.get(relpath)
        return isinstance(stamp, list) and trusted(stamp, current) and stamp[1] == oid

    def stamp(self, relpath: str, oid: str) -> None:
        """Remember the fingerprint taken by `unchanged` (before recording) as `oid`."""
        taken = self.pending.get(relpath)
        if taken is not None:
            self.artifacts[relpath] = [taken[0], str(oid), taken[1]]
            self.changed = True

    def save(self, keep: set[str], seal: dict[str, Any] | None) -> None:
        for relpath in set(self.artifacts) - keep:
            del self.artifacts[relpath]
            self.changed = True
        if seal != self.seal:
            self.seal = seal
            self.changed = True
        if not self.changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(FILE + ".tmp")
        data = {"artifacts": self.artifacts, "seal": self.seal}
        tmp.write_text(json.dumps(data, sort_keys=True), "utf-8")
        os.replace(tmp, self.path)
