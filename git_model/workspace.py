"""The work tree side of artifacts: what bytes each artifact holds now.

`scan` answers "what bytes does this artifact hold right now?" using the stat cache so that an
unchanged file is never read, and hashing the rest in parallel (hashlib releases the GIL).
Putting back what should be is `restore.Restorer` (re-exported here).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .cache import Cache, disk_error, is_executable
from .errors import GitModelError, UnsafePath
from .hashing import Oid, hash_file
from .manifest import Artifact, Entry, format_listing, listing_oid
from .parallel import default_jobs, map_batched
from .paths import check_relpath
from .restore import Restorer, RestoreReport, is_temp_name, needed_objects
from .statecache import StateCache

__all__ = [
    "Progress",
    "RestoreReport",
    "Restorer",
    "Scanned",
    "Workspace",
    "default_jobs",
    "needed_objects",
]

Progress = Callable[[int], None]  # called with a number of bytes just processed


@dataclass
class Scanned:
    """An artifact as it is in the work tree now."""

    artifact: Artifact
    entries: list[Entry] | None = None  # for directories
    listing: bytes | None = None


class Workspace:
    def __init__(
        self,
        root: Path,
        cache: Cache,
        state: StateCache,
        jobs: int = 0,
        progress: Progress | None = None,
    ) -> None:
        self.root = root
        self.cache = cache
        self.state = state
        self.jobs = jobs or default_jobs()
        self.progress = progress

    # -- hashing -------------------------------------------------------------------------------

    def hash_paths(
        self,
        files: list[tuple[Path, os.stat_result]],
        *,
        store: bool,
        known: dict[str, tuple[tuple[int, int, int, int], Oid, int]] | None = None,
    ) -> list[Oid]:
        """The oid of each file, from the stat cache where it can be trusted; others hashed
        in parallel (and stored in the cache when `store`)."""
        if known is None:
            known = self.state.lookup([str(p) for p, _ in files])
        result: list[Oid | None] = [None] * len(files)
        todo: list[int] = []
        trusted, has = StateCache.trusted, self.cache.has
        for i, (path, st) in enumerate(files):
            oid = trusted(known.get(str(path)), st)
            if oid is not None and (not store or has(oid)):
                result[i] = oid
            else:
                todo.append(i)

        def work(k: int) -> Oid:
            path = files[todo[k]][0]
            oid, size = self.cache.store_file(path) if store else hash_file(path)
            if self.progress:
                self.progress(size)
            return oid

        sizes = [files[i][1].st_size for i in todo]
        if store and len(todo) > 1:
            try:
                with self.cache.batch():  # one flush to disk for all the small files
                    hashed = map_batched(work, sizes, self.jobs)
            except OSError as e:
                raise disk_error(e, "storing files in the cache") from e
        else:
            hashed = map_batched(work, sizes, self.jobs)
        for i, oid in zip(todo, hashed):
            result[i] = oid
            path, st = files[i]
            after = os.stat(path)
            if (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns):
                self.state.record(path, st, oid)
        return [oid for oid in result if oid is not None]

    def _stat_file(self, path: Path, rel: str) -> os.stat_result:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            target = os.path.realpath(path)
            if not target.startswith(str(self.cache.objects) + os.sep):
                raise UnsafePath(
                    f"{rel} is a symlink; git-model tracks file contents, not links: "
                    "replace it with the file it points to, or leave it out"
                )
            st = os.stat(path)  # a link into our cache (linkType=symlink): its bytes count
        if not stat.S_ISREG(st.st_mode):
            raise GitModelError(
                f"{rel} is not a regular file; git-model tracks files and directories"
            )
        return st

    def walk(
        self, relpath: str, strays: list[Path] | None = None
    ) -> list[tuple[str, Path, os.stat_result]]:
        """Every file under a tracked directory: (path relative to it, absolute path, stat).

        One `scandir` per folder and one `lstat` per file; sorted by relative path. Temp files
        of an interrupted checkout are left out (and added to `strays` when given).
        """
        base = self.root / relpath
        out: list[tuple[str, Path, os.stat_result]] = []
        stack = [("", str(base))]
        while stack:
            prefix, folder = stack.pop()
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                continue  # unreadable or gone, as os.walk treats it
            for entry in entries:
                name = entry.name
                rel_in_dir = prefix + name
                if entry.is_dir(follow_symlinks=False):
                    stack.append((rel_in_dir + "/", entry.path))
                    continue
                if entry.is_symlink() and entry.is_dir():
                    raise UnsafePath(
                        f"{relpath}/{rel_in_dir} is a symlink to a directory; git-model will not "
                        "follow it (copy the data in, or track its target instead)"
                    )
                if is_temp_name(name):
                    if strays is not None:
                        strays.append(Path(entry.path))
                    continue
                rel = f"{relpath}/{rel_in_dir}"
                try:
                    check_relpath(rel_in_dir)
                except UnsafePath as e:
                    raise UnsafePath(f"cannot track {rel}: {e}") from None
                path = Path(entry.path)
                out.append((rel_in_dir, path, self._stat_file(path, rel)))
        out.sort(key=lambda t: t[0])
        return out

    def scan(self, relpath: str, *, store: bool) -> Scanned | None:
        """The artifact at `relpath` as the work tree holds it now; None if it is missing."""
        path = self.root / relpath
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        if stat.S_ISDIR(st.st_mode):
            files = self.walk(relpath)
            known = self.state.lookup_many(str(path))
            oids = self.hash_paths([(p, s) for _, p, s in files], store=store, known=known)
            entries = [
                Entry(rel, oid, s.st_size, is_executable(s))
                for (rel, _, s), oid in zip(files, oids)
            ]
            listing = format_listing(entries)
            art = Artifact(
                relpath, listing_oid(listing), sum(e.size for e in entries), len(entries)
            )
            return Scanned(art, entries, listing)
        st = self._stat_file(path, relpath)
        (oid,) = self.hash_paths([(path, st)], store=store)
        return Scanned(Artifact(relpath, oid, st.st_size, None, is_executable(st)))
