"""The work tree side of artifacts: what bytes each artifact holds now.

`scan` answers "what bytes does this artifact hold right now?" using the stat cache so that an
unchanged file is never read, and hashing the rest in parallel (hashlib releases the GIL).
Putting back what should be is `restore.Restorer`, one layer up.

Memory stays flat however many files a directory holds: `walk` yields its files one at a time
in listing order (folder by folder, no list of them all), and `scan` takes them a chunk at a
time through the stat cache, the hashing and the cache, keeping only the listing it is writing
(~100 bytes a file) and never a stat result, a `Path` or an entry per file.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .cache import Cache, is_executable
from .copying import SMALL_FILE
from .errors import GitModelError, UnsafePath, disk_error
from .hashing import Oid, hash_file
from .listing import Entry, listing_line, listing_oid
from .manifest import Artifact
from .newfiles import is_temp_name
from .parallel import chunked, default_jobs, map_batched
from .paths import check_relpath
from .statecache import Key, Known, StateCache, stat_key
from .termtext import quote_path

__all__ = ["Found", "Progress", "Scanned", "Workspace", "default_jobs"]

Progress = Callable[[int], None]  # called with a number of bytes just processed


class Found(NamedTuple):
    """A file of a tracked directory as `walk` finds it (a plain tuple: small)."""

    rel: str  # relative to the directory
    path: str  # absolute
    key: Key  # (size, mtime_ns, inode, ctime_ns), as the stat cache keys it
    mode: int

    @property
    def size(self) -> int:
        return self.key[0]

    @property
    def executable(self) -> bool:
        return bool(self.mode & stat.S_IXUSR)


@dataclass
class Scanned:
    """An artifact as it is in the work tree now."""

    artifact: Artifact
    listing: bytes | None = None  # for directories


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
        files: Sequence[tuple[str, Key]],
        *,
        store: bool,
        known: Known | None = None,
        listed: Sequence[Oid | None] | None = None,
        listed_cached: bool = False,
    ) -> list[Oid]:
        """The oid of each file (absolute path, stat key), from the stat cache where it can be
        trusted; others hashed in parallel (and stored in the cache when `store`).

        Storing copies a file into the cache as it hashes it. A file whose bytes the cache
        most likely has already is hashed first instead, and copied only if it turns out to
        differ: one the stat cache has a racy record of at this very stat (written or hashed a
        moment ago), or a small one whose oid the directory's listing gives (`listed`, aligned
        with `files`). After a checkout, the first commit then reads what the checkout wrote,
        rather than copying it all into the cache again. `listed_cached`: every oid `listed`
        gives is known to be in the cache (a file the stat cache trusts to hold its listed oid
        is then not looked up there).
        """
        if known is None:
            known = self.state.lookup([p for p, _ in files])
        result: list[Oid | None] = [None] * len(files)
        todo: list[int] = []
        trusted, has = StateCache.trusted_key, self.cache.has
        sure = listed if listed is not None and listed_cached else [None] * len(files)
        for i, (path, key) in enumerate(files):
            oid = trusted(known.get(path), key)
            if oid is not None and (not store or oid == sure[i] or has(oid)):
                result[i] = oid
            else:
                todo.append(i)

        def likely(i: int) -> Oid | None:
            path, key = files[i]
            entry = known.get(path)
            if entry is not None and entry[0] == key and has(entry[1]):
                return entry[1]
            hint = listed[i] if listed is not None else None
            return hint if hint is not None and key[0] <= SMALL_FILE and has(hint) else None

        def work(k: int) -> Oid:
            path = files[todo[k]][0]
            hint = likely(todo[k]) if store else None
            if hint is not None:
                oid, size = hash_file(path)
            if hint is None or oid != hint:
                oid, size = self.cache.store_file(Path(path)) if store else hash_file(path)
            if self.progress:
                self.progress(size)
            return oid

        sizes = [files[i][1][0] for i in todo]
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
            path, key = files[i]
            after = os.stat(path)
            if (after.st_size, after.st_mtime_ns) == key[:2]:
                self.state.record_key(path, key, oid)
        return [oid for oid in result if oid is not None]

    def hash_one(self, path: str | Path, st: os.stat_result, *, store: bool = False) -> Oid:
        """`hash_paths` for one file."""
        (oid,) = self.hash_paths([(str(path), stat_key(st))], store=store)
        return oid

    def stat_file(self, path: str | Path, rel: str) -> os.stat_result:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            target = os.path.realpath(path)
            if not target.startswith(str(self.cache.objects) + os.sep):
                raise UnsafePath(
                    f"{quote_path(rel)} is a symlink; git-model tracks file contents, not links: "
                    "replace it with the file it points to, or leave it out"
                )
            st = os.stat(path)  # a link into our cache (linkType=symlink): its bytes count
        if not stat.S_ISREG(st.st_mode):
            raise GitModelError(
                f"{quote_path(rel)} is not a regular file; git-model tracks files and directories"
            )
        return st

    def walk(self, relpath: str, strays: list[Path] | None = None) -> Iterator[Found]:
        """Every file under a tracked directory, one at a time, in listing order (sorted by
        relative path).

        One `scandir` per folder, made when the walk reaches it, and one `lstat` per file: only
        the names of the folders on the way down are held. Temp files of an interrupted checkout
        are left out (and added to `strays` when given).
        """
        top = str(self.root / relpath)
        # (prefix, folder, its names, whether the prefix's names all passed `_plain`)
        stack = [("", top, iter(self._folder(relpath, "", top)), True)]
        while stack:
            prefix, folder, names, plain = stack[-1]
            for name in names:
                if name.endswith("/"):  # a folder: its files come next, in order
                    sub = prefix + name
                    path = f"{folder}/{name[:-1]}"
                    sub_plain = plain and _plain(name[:-1])
                    stack.append((sub, path, iter(self._folder(relpath, sub, path)), sub_plain))
                    break
                path = f"{folder}/{name}"
                if is_temp_name(name):
                    if strays is not None:
                        strays.append(Path(path))
                    continue
                found = self._found(relpath, prefix, path, name, plain)
                if found is not None:
                    yield found
            else:
                stack.pop()

    def files_in(self, relpath: str, prefix: str) -> Iterator[Found]:
        """The files directly in the folder `prefix` ("" or "a/b/") of the tracked directory
        at `relpath`, in listing order, as `walk` finds them (its checks, its temp files left
        out); none if the folder is gone."""
        folder = f"{self.root / relpath}/{prefix}"
        plain = all(_plain(part) for part in prefix.split("/")[:-1])
        for name in self._folder(relpath, prefix, folder):
            if not name.endswith("/") and not is_temp_name(name):
                found = self._found(relpath, prefix, folder + name, name, plain)
                if found is not None:
                    yield found

    def _found(self, relpath: str, prefix: str, path: str, name: str, plain: bool) -> Found | None:
        """The file `name` at `path` in the folder `prefix` of the tracked directory at
        `relpath`: its name checked (a cheap test when it and its folders are `plain`), a link
        or a special file refused or followed (`stat_file`); None if it is gone since its folder
        was read (a restore replaced the folder)."""
        rel_in_dir = prefix + name
        if not (plain and _plain(name)):
            try:
                check_relpath(rel_in_dir)
            except UnsafePath as e:
                raise UnsafePath(
                    f"cannot track {quote_path(f'{relpath}/{rel_in_dir}')}: {e}"
                ) from None
        try:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                st = self.stat_file(path, f"{relpath}/{rel_in_dir}")
        except (FileNotFoundError, NotADirectoryError):
            return None
        return Found(rel_in_dir, path, stat_key(st), st.st_mode)

    @staticmethod
    def _folder(relpath: str, prefix: str, folder: str) -> list[str]:
        """The names in `folder`, sorted as their paths sort in a listing: a folder's name is
        given with a '/' after it (its files' paths go on with one)."""
        names = []
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        names.append(entry.name + "/")
                        continue
                    if entry.is_symlink() and entry.is_dir():
                        raise UnsafePath(
                            f"{quote_path(f'{relpath}/{prefix}{entry.name}')} is a symlink to a directory; "
                            "git-model will not follow it (copy the data in, or track its "
                            "target instead)"
                        )
                    names.append(entry.name)
        except OSError:
            return []  # unreadable or gone, as os.walk treats it
        names.sort()
        return names

    def scan(
        self,
        relpath: str,
        *,
        store: bool,
        listed: Iterator[Entry] | None = None,
        listed_cached: bool = False,
    ) -> Scanned | None:
        """The artifact at `relpath` as the work tree holds it now; None if it is missing.
        `listed`: the entries of the listing it had, a hint of what its files hold, and
        `listed_cached` whether all their objects are known to be in the cache (see
        `hash_paths`)."""
        path = self.root / relpath
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        if stat.S_ISDIR(st.st_mode):
            return self._scan_dir(relpath, store=store, listed=listed, cached=listed_cached)
        st = self.stat_file(path, relpath)
        oid = self.hash_one(path, st, store=store)
        return Scanned(Artifact(relpath, oid, st.st_size, None, is_executable(st)))

    def _scan_dir(
        self,
        relpath: str,
        *,
        store: bool,
        listed: Iterator[Entry] | None = None,
        cached: bool = False,
    ) -> Scanned:
        """A tracked directory, a chunk of files at a time: one stat-cache query, one parallel
        hashing pass and one flush of the cache each; its listing written as it goes."""
        listing = io.BytesIO()
        files = size = 0
        hints = _Hints(listed) if listed is not None else None
        for chunk in chunked(self.walk(relpath)):
            known = self.state.lookup_range(chunk[0].path, chunk[-1].path)
            oids = self.hash_paths(
                [(f.path, f.key) for f in chunk],
                store=store,
                known=known,
                listed=hints.oids(chunk) if hints is not None else None,
                listed_cached=cached,
            )
            text = "".join(
                listing_line(f.rel, oid, f.size, f.executable) for f, oid in zip(chunk, oids)
            )
            listing.write(text.encode("utf-8"))
            files += len(chunk)
            size += sum(f.size for f in chunk)
            self.state.flush()
        data = listing.getvalue()
        oid = listing_oid(data)
        self.state.mark_listing_checked(oid)  # (made of checked lines: no need to read it again)
        return Scanned(Artifact(relpath, oid, size, files), data)


def _plain(name: str) -> bool:
    """A name `check_relpath` would pass whatever safe path it ends: printable ASCII with no
    backslash, not "." or ".." (scandir gives neither), not .git in any case, no drive colon
    ("c:x"). Other names take the full check (this one is ~10x cheaper; a walk makes it once a
    file)."""
    return (
        name[1:2] != ":"
        and name.isascii()
        and name.isprintable()
        and "\\" not in name
        and (len(name) != 4 or name.lower() != ".git")
    )


class _Hints:
    """The oids a directory's old listing gives the files a walk finds, both in path order."""

    def __init__(self, entries: Iterator[Entry]) -> None:
        self._entries = entries
        self._next = next(entries, None)

    def oids(self, chunk: list[Found]) -> list[Oid | None]:
        out: list[Oid | None] = []
        e = self._next
        for f in chunk:
            while e is not None and e.relpath < f.rel:
                e = next(self._entries, None)
            out.append(e.oid if e is not None and e.relpath == f.rel else None)
        self._next = e
        return out
