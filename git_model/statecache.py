"""The stat cache: never re-hash a file whose stat says it has not changed.

`<git-common-dir>/model/state.db` (sqlite, WAL; table `files_2`, clustered by path: a
directory's entries are one range of one B-tree, and a record is one insert, not two; the
first version's rowid table `files` is dropped) maps an absolute path and its
(size, mtime_ns, inode, ctime_ns) to the oid last computed for it. Git's racy-timestamp rule
applies: an entry whose file was modified too close to the moment its hash was taken is not
trusted, since a second write that close would leave the stat unchanged. "Too close" is the
same second where the file system keeps whole-second timestamps; where it keeps finer ones
(ext4, xfs, btrfs, apfs, ntfs: a tick of 10 ms at most) it is RACY_NS. A racy entry is still
a hint: the commit hook, finding a file's stat exactly as recorded for the oid the manifest
gives, hashes it again rather than copying it into the cache (which needs as much free space).

A file a checkout wrote is the exception (`pinned`): it was dated `newfiles.PIN_NS` into the past
before it got its name, so its mtime lies well before its ctime (the naming). Any write after
the naming moves mtime to the present, so its record is trusted as soon as it is taken; what
is left is a write dated back with utime() to that very nanosecond within the clock tick of
the naming (ctime unchanged too), which no editor or tool does by accident.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from .hashing import Oid
from .stamps import RACY_NS, racy

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files_2 (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    oid TEXT NOT NULL,
    hashed_ns INTEGER NOT NULL
) WITHOUT ROWID;
DROP TABLE IF EXISTS files;
CREATE TABLE IF NOT EXISTS checked_listings_1 (oid TEXT PRIMARY KEY)
"""

Key = tuple[int, int, int, int]
FLUSH_EVERY = 4096  # pending records written out at most this many at a time (flat memory)
__all__ = ["RACY_NS", "Key", "Known", "StateCache", "racy", "stat_key"]
Known = dict[str, tuple[Key, Oid, int]]  # absolute path -> (stat key, oid, hashed_ns)


def stat_key(st: os.stat_result) -> Key:
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


class StateCache:
    def __init__(self, model_dir: Path) -> None:
        model_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(model_dir / "state.db", timeout=30, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            # a corrupt stat cache is only a cache: start it again
            self._db.close()
            for suffix in ("", "-wal", "-shm"):
                (model_dir / f"state.db{suffix}").unlink(missing_ok=True)
            self._db = sqlite3.connect(model_dir / "state.db", timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        self._pending: list[tuple[str, int, int, int, int, str, int]] = []
        self._owner = threading.get_ident()  # sqlite connections stay in their thread

    def lookup_many(self, prefix: str) -> Known:
        """Every entry at or under the absolute path `prefix`, in one query."""
        rows = self._db.execute(
            "SELECT path, size, mtime_ns, ino, ctime_ns, oid, hashed_ns FROM files_2 "
            "WHERE path = ? OR (path >= ? AND path < ?)",
            (prefix, prefix + "/", prefix + "0"),  # '0' sorts right after '/'
        ).fetchall()
        return self._entries(rows)

    def lookup_range(self, first: str, last: str) -> Known:
        """Every entry whose absolute path sorts from `first` to `last`, in one query: a
        chunk of a directory walked in order costs one index range scan."""
        rows = self._db.execute(
            "SELECT path, size, mtime_ns, ino, ctime_ns, oid, hashed_ns FROM files_2 "
            "WHERE path >= ? AND path <= ?",
            (first, last),
        ).fetchall()
        return self._entries(rows)

    def lookup(self, paths: list[str]) -> Known:
        """The entries of exactly these absolute paths (a few queries, whatever is around)."""
        out = {}
        for start in range(0, len(paths), 500):
            chunk = paths[start : start + 500]
            rows = self._db.execute(
                "SELECT path, size, mtime_ns, ino, ctime_ns, oid, hashed_ns FROM files_2 "
                f"WHERE path IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            out.update(self._entries(rows))
        return out

    @staticmethod
    def _entries(rows: list[tuple[str, int, int, int, int, str, int]]) -> Known:
        out = {}
        for path, size, mtime, ino, ctime, oid, hashed in rows:
            try:
                out[path] = ((size, mtime, ino, ctime), Oid(oid), hashed)
            except ValueError:
                continue
        return out

    @staticmethod
    def trusted(entry: tuple[Key, Oid, int] | None, st: os.stat_result) -> Oid | None:
        """The cached oid if the entry matches `st` and is not racy."""
        return StateCache.trusted_key(entry, stat_key(st))

    @staticmethod
    def trusted_key(entry: tuple[Key, Oid, int] | None, key: Key) -> Oid | None:
        """`trusted` for a file whose stat key (size, mtime_ns, inode, ctime_ns) is `key`."""
        if entry is None:
            return None
        known, oid, hashed_ns = entry
        if known != key:
            return None
        # the later of mtime and ctime: a write that `touch -d` or utime() dated back still
        # moved ctime, and ctime cannot be set
        return None if racy(max(key[1], key[3]), hashed_ns) else oid

    @staticmethod
    def pinned(st: os.stat_result) -> int | None:
        """The time to record for a file `newfiles.pin_times` dated back before naming it (its
        mtime at least RACY_NS before its ctime, on a file system with sub-second times): one
        past the racy window of its ctime, so the record is trusted at once. None otherwise."""
        mtime, ctime = st.st_mtime_ns, st.st_ctime_ns
        if mtime % 1_000_000_000 == 0 or mtime + RACY_NS >= ctime:
            return None
        return ctime + RACY_NS + 1

    def get(self, path: Path, st: os.stat_result) -> Oid | None:
        return self.trusted(self.lookup([str(path)]).get(str(path)), st)

    def record(
        self, path: Path, st: os.stat_result, oid: Oid, hashed_ns: int | None = None
    ) -> None:
        self.record_key(str(path), stat_key(st), oid, hashed_ns)

    def record_key(self, path: str, key: Key, oid: Oid, hashed_ns: int | None = None) -> None:
        """Remember that the file at `path` with stat key `key` holds `oid`. Written out in
        batches (any thread may record; the owning thread writes)."""
        self._pending.append((path, *key, str(oid), hashed_ns or time.time_ns()))
        if len(self._pending) >= FLUSH_EVERY and threading.get_ident() == self._owner:
            self.flush()

    def listing_checked(self, oid: Oid) -> bool:
        """Whether the listing with this oid passed `iter_listing`'s checks before: the same
        oid is the same bytes, so a checkout need not check its 10,000 lines again. (The
        table's number is that of the checks: stricter checks start a new table.)"""
        row = self._db.execute("SELECT 1 FROM checked_listings_1 WHERE oid = ?", (oid,))
        return row.fetchone() is not None

    def mark_listing_checked(self, oid: Oid) -> None:
        with contextlib.suppress(sqlite3.Error):  # only costs a second check
            self._db.execute("INSERT OR IGNORE INTO checked_listings_1 VALUES (?)", (oid,))

    def forget(self, paths: Iterable[Path]) -> None:
        self.flush()
        self._db.executemany("DELETE FROM files_2 WHERE path = ?", [(str(p),) for p in paths])

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO files_2 VALUES (?, ?, ?, ?, ?, ?, ?)", pending
            )

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # losing entries only costs a re-hash
            self.flush()
        self._db.close()
