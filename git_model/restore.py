"""Putting back what should be: make the work tree's artifacts match a manifest.

`Restorer` writes only what differs, verifies every byte it writes (a corrupt cache object
never reaches the work tree), and stores any work-tree bytes it is about to replace or remove
in the cache first, reporting them so the message can say how to get them back. A tracked
directory is restored in bulk and in order: its listing and a walk of what is there are merged
(both sorted by path) and taken a chunk at a time: the current oids from the stat cache (the
rest hashed in parallel), then every file to write copied in parallel. Only the chunk in hand
and the listing's bytes are held (a large listing's not even those: it is read back from a
verified temp file, needs.checked_source), whatever the number of files.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CorruptObject, GitModelError, MissingObject, UnsafePath, disk_error
from .hashing import Oid
from .listing import listing_path
from .manifest import Artifact, Reader
from .needs import checked_source, listing_entries
from .newfiles import is_temp_name
from .parallel import chunked, iter_split, map_batched
from .partstore import holds, rebuild
from .paths import check_relpath, safe_target
from .smallfiles import (
    CORRUPT,
    SLOW,
    SMALL_FILE,
    WRITTEN,
    Item,
    Outcome,
    can_write_small,
    write_small,
)
from .statecache import StateCache, racy
from .tensors import TensorListing, read_tensors
from .treemerge import Pair, absent, folders_of, merge, prune_empty_dirs
from .workspace import Workspace

__all__ = ["RestoreReport", "Restorer", "is_temp_name"]

Write = tuple[str, Oid, bool, int]  # a file to write: repo-relative path, oid, executable, size


@dataclass
class RestoreReport:
    written: list[str] = field(default_factory=list)  # paths (files) written, if `keep_paths`
    files_written: int = 0  # how many, kept or not
    keep_paths: bool = True  # False: count only (a million-file restore printing one line)
    removed: list[str] = field(default_factory=list)
    saved: list[tuple[str, Oid]] = field(default_factory=list)  # work-tree bytes kept in cache
    missing: list[tuple[str, Oid]] = field(default_factory=list)  # objects not in the cache
    corrupt: list[tuple[str, Oid]] = field(default_factory=list)
    unchanged: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt


class Restorer:
    """Make the work tree's artifacts match a manifest."""

    def __init__(self, ws: Workspace, link_type: str = "copy", *, keep_paths: bool = True) -> None:
        self.ws = ws
        self.link_type = link_type
        self.report = RestoreReport(keep_paths=keep_paths)
        self._safe_parents: set[str] = set()
        self._root = os.fspath(ws.root)
        self._swept: set[Path] = set()

    @property
    def root(self) -> Path:
        return self.ws.root

    def _save(self, rel: str, path: str | Path, oid: Oid | None = None) -> None:
        """Keep the bytes of a work-tree file we are about to replace or remove.

        Bytes already in the cache are safe; others are stored and reported, so the message can
        say how to get them back. `oid`: the file's oid when the caller just computed it.
        """
        try:
            if oid is None:
                oid = self.ws.hash_one(path, os.stat(path))
            if holds(self.ws.cache, oid):
                return
            oid, _ = self.ws.cache.store_file(Path(path))
        except OSError as e:
            raise disk_error(e, f"saving {rel} before replacing it") from e
        self.report.saved.append((rel, oid))

    def _target(self, rel: str, *, checked: bool = False) -> str:
        """`safe_target`, checking each folder on the way once per restore, not once per file.
        `checked`: `rel` is already known to be a safe relative path (from a verified listing)."""
        parent = rel.rpartition("/")[0]
        if parent in self._safe_parents:
            if not checked:
                check_relpath(rel)
            return f"{self._root}/{rel}"
        path = safe_target(self.root, rel)
        self._safe_parents.add(parent)
        return os.fspath(path)

    def _write(
        self,
        rel: str,
        oid: Oid,
        executable: bool,
        checked: bool = False,
        parts: TensorListing | None = None,
    ) -> str:
        """Write one file from the cache (from its `parts` when it is stored by parts);
        "written", "missing" or "corrupt"."""
        dest = Path(self._target(rel, checked=checked))
        try:
            if parts is not None:
                rebuild(self.ws.cache, parts, oid, os.fspath(dest), executable)
            else:
                self.ws.cache.materialize(
                    oid, dest, executable=executable, link_type=self.link_type
                )
        except MissingObject:
            return "missing"
        except CorruptObject:
            return "corrupt"
        except OSError as e:
            raise disk_error(e, f"writing {rel}") from e
        with contextlib.suppress(OSError):
            st = os.stat(dest)  # (copies and rebuilds were dated back before being named)
            self.ws.state.record(dest, st, oid, StateCache.pinned(st))
        return "written"

    def _report(self, rel: str, oid: Oid, outcome: str) -> None:
        if outcome == "written":
            self.report.files_written += 1
            if self.report.keep_paths:
                self.report.written.append(rel)
        else:
            getattr(self.report, outcome).append((rel, oid))

    def _put(
        self, rel: str, oid: Oid, executable: bool, parts: TensorListing | None = None
    ) -> None:
        self._report(rel, oid, self._write(rel, oid, executable, parts=parts))

    def _put_many(self, items: list[Write]) -> None:
        """Write many files (rel, oid, executable, size) from the cache: the small ones in a
        tight loop split across processes (see smallfiles.py), the rest on threads."""
        outcomes: list[str | None] = [None] * len(items)
        if len(items) > 1 and can_write_small(self.link_type):
            self._put_small(items, outcomes)
        rest = [i for i, outcome in enumerate(outcomes) if outcome is None]
        done = map_batched(
            lambda k: self._write(*items[rest[k]][:3], checked=True),
            [items[i][3] for i in rest],
            self.ws.jobs,
        )
        for i, outcome in zip(rest, done):
            outcomes[i] = outcome
        r = self.report
        written = r.written if r.keep_paths else None
        for (rel, oid, _, _), got in zip(items, outcomes):
            if got == "written":
                r.files_written += 1
                if written is not None:
                    written.append(rel)
            else:
                self._report(rel, oid, got or "written")

    def _put_small(self, items: list[Write], outcomes: list[str | None]) -> None:
        """`_put_many` for the files up to SMALL_FILE: their outcomes filled in, except those
        that need the general path (left None). Each process of the split also works out its
        own files' paths and folders (`_write_small_share`), so that is done in parallel too."""
        small = [i for i, item in enumerate(items) if item[3] <= SMALL_FILE]
        cache = self.ws.cache
        write = functools.partial(
            self._write_small_share, os.fspath(cache.objects), frozenset(cache.verified)
        )
        state = self.ws.state
        record, codes = state.record_key, ("written", "missing", "corrupt", None)
        processes = min(self.ws.jobs, os.cpu_count() or 1)
        corrupt: list[Oid] = []  # moved aside once no process reads the cache any more
        # each share's outcomes as it is done: this process records its own while the others
        # finish theirs
        for start, results in iter_split(write, [items[i] for i in small], processes):
            for i, result in zip(small[start:], results):
                outcomes[i] = codes[result[0]]
                if result[0] == WRITTEN and len(result) > 1:
                    record(f"{self._root}/{items[i][0]}", result[1:5], items[i][1], result[5])
                elif result[0] == CORRUPT:
                    corrupt.append(items[i][1])
            state.flush()
        for oid in corrupt:
            cache.quarantine(oid)

    def _write_small_share(
        self, objects: str, verified: frozenset[str], share: list[Write]
    ) -> list[Outcome]:
        """`write_small` for one process's share of `_put_small`: each file's path checked and
        its folder made first; SLOW for a file whose folder cannot be made (the general path
        says what is wrong there). A file written too recently for the stat cache to trust
        (see statecache.racy) comes back as (WRITTEN,); others with their stat key and the time
        it was taken."""
        work: list[Item] = []
        where: list[int] = []
        folders: dict[str, bool] = {}
        for k, (rel, oid, executable, size) in enumerate(share):
            dest = self._target(rel, checked=True)
            folder = dest.rpartition("/")[0]
            made = folders.get(folder)
            if made is None:
                try:
                    os.makedirs(folder, exist_ok=True)
                    made = True
                except OSError:
                    made = False
                folders[folder] = made
            if made:
                work.append((oid, dest, executable, size))
                where.append(k)
        out: list[Outcome] = [(SLOW,)] * len(share)
        results = write_small(objects, work, verified)
        now = time.time_ns()
        for k, result in zip(where, results):
            if result[0] == WRITTEN:
                result = (WRITTEN,) if racy(result[2], now) else (*result, now)
            out[k] = result
        return out

    def _clear_non_file(self, rel: str, path: Path) -> None:
        """Make room for a file where a directory or link now stands."""
        if path.is_symlink():
            if not os.path.realpath(path).startswith(str(self.ws.cache.objects) + os.sep):
                path.unlink()
        elif path.is_dir():
            for found in self.ws.walk(rel):
                self._save(f"{rel}/{found.rel}", found.path)
            shutil.rmtree(path)

    def restore_file(
        self, rel: str, oid: Oid, executable: bool, parts: TensorListing | None = None
    ) -> None:
        path = safe_target(self.root, rel)
        if path.is_dir() or (path.is_symlink() and self.link_type != "symlink"):
            self._clear_non_file(rel, path)
        try:
            st = self.ws.stat_file(path, rel)
        except FileNotFoundError:
            self._put(rel, oid, executable, parts)
            return
        except (UnsafePath, GitModelError):
            self._clear_non_file(rel, path)
            self._put(rel, oid, executable, parts)
            return
        current = self.ws.hash_one(path, st)
        if not self._settle(rel, path, st.st_mode, current, oid, executable):
            self._put(rel, oid, executable, parts)

    def _settle(
        self, rel: str, path: str | Path, st_mode: int, current: Oid, oid: Oid, executable: bool
    ) -> bool:
        """For a file that holds `current`: fix its mode if it already holds `oid` (True), or
        keep its bytes and write `oid` (False: the caller writes)."""
        if current == oid:
            if bool(st_mode & stat.S_IXUSR) != executable and not os.path.islink(path):
                mode = st_mode | 0o111 if executable else st_mode & ~0o111
                os.chmod(path, stat.S_IMODE(mode) & ~(0o022 if not executable else 0))
            self.report.unchanged += 1
            return True
        self._save(rel, path, current)
        return False

    def restore(self, art: Artifact, read: Reader) -> None:
        """Make one artifact match the manifest. Runs under the repository lock, so a temp
        file of ours found on the way is litter from a killed checkout, and goes."""
        if not art.is_dir:
            # (a tensor listing that does not match its manifest entry is refused here)
            parts = read_tensors(read, art) if art.layout is not None else None
            self._sweep(safe_target(self.root, art.path).parent)
            self.restore_file(art.path, art.oid, art.executable, parts)
            return
        data = checked_source(read, art, self.ws.state)
        what = listing_path(art.path)
        path = safe_target(self.root, art.path)
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            self._clear_non_file_or_link(art.path, path)
        was_dir = path.is_dir()
        folders = folders_of(listing_entries(data, what)) if was_dir else set()
        strays: list[Path] = []
        present = self.ws.walk(art.path, strays) if was_dir else iter(())
        wanted = listing_entries(data, what)
        r = self.report
        marks = [len(r.written), len(r.missing), len(r.corrupt)]
        for chunk in chunked(merge(wanted, present)):
            self._put_many(self._restore_chunk(art.path, path, chunk, folders, was_dir))
        # listing order, as writing one file at a time would give
        r.written[marks[0] :] = sorted(r.written[marks[0] :])
        r.missing[marks[1] :] = sorted(r.missing[marks[1] :])
        r.corrupt[marks[2] :] = sorted(r.corrupt[marks[2] :])
        self.ws.state.flush()
        for stray in strays:
            with contextlib.suppress(OSError):
                stray.unlink()
        if was_dir:  # (a folder this restore made holds the file it was made for)
            prune_empty_dirs(path)

    def _restore_chunk(
        self, top: str, path: Path, chunk: list[Pair], folders: set[str], was_dir: bool
    ) -> list[Write]:
        """Files of one tracked directory, in path order: those it should not have go (their
        bytes kept first); those that differ are returned, for the caller to write."""
        for e, found in chunk:
            if e is None and found is not None and found.rel not in folders:
                if absent(found.path):
                    continue  # under a folder that a file of the listing replaced
                self._save(f"{top}/{found.rel}", found.path)
                os.unlink(found.path)
                self.report.removed.append(f"{top}/{found.rel}")
        # what the files there hold now: from the stat cache, the rest hashed in parallel
        here = [f for e, f in chunk if e is not None and f is not None]
        known = self.ws.state.lookup_range(here[0].path, here[-1].path) if here else {}
        current = iter(
            self.ws.hash_paths([(f.path, f.key) for f in here], store=False, known=known)
        )
        writes: list[Write] = []
        for e, found in chunk:
            if e is None:
                continue
            rel = f"{top}/{e.relpath}"
            if found is not None:
                now = next(current)
                if self._settle(rel, found.path, found.mode, now, e.oid, e.executable):
                    continue
            elif was_dir and not absent(path / e.relpath):
                self.restore_file(rel, e.oid, e.executable)  # a folder or link stands there
                continue
            writes.append((rel, e.oid, e.executable, e.size))
        self.ws.state.flush()
        return writes

    def _sweep(self, folder: Path) -> None:
        """Remove our temp files from `folder` (once per restore)."""
        if folder in self._swept:
            return
        self._swept.add(folder)
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                if is_temp_name(entry.name) and not entry.is_dir(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)

    def _clear_non_file_or_link(self, rel: str, path: Path) -> None:
        if path.is_symlink():
            path.unlink()
        else:
            self._save(rel, path)
            path.unlink()

    def remove(self, art: Artifact) -> None:
        """Take an artifact that the target manifest no longer has out of the work tree."""
        path = safe_target(self.root, art.path)
        if path.is_symlink():
            path.unlink()
            self.report.removed.append(art.path)
            return
        if path.is_dir():
            for found in self.ws.walk(art.path):
                self._save(f"{art.path}/{found.rel}", found.path)
            shutil.rmtree(path)
        elif path.exists():
            self._save(art.path, path)
            path.unlink()
        else:
            return
        self.report.removed.append(art.path)
