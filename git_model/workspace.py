"""The work tree side of artifacts: what is there now, and putting back what should be.

`scan` answers "what bytes does this artifact hold right now?" using the stat cache so that an
unchanged file is never read, and hashing the rest in parallel (hashlib releases the GIL).
`Restorer` makes the work tree match a manifest, writing only what differs, verifying every
byte it writes, and storing any work-tree bytes it is about to replace in the cache first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .cache import Cache, disk_error, is_executable
from .errors import CorruptObject, GitModelError, MissingObject, UnsafePath
from .hashing import Oid, hash_file
from .manifest import Artifact, Entry, Manifest, Reader, format_listing, listing_oid, read_listing
from .paths import check_relpath, safe_target
from .statecache import StateCache

Progress = Callable[[int], None]  # called with a number of bytes just processed


def default_jobs() -> int:
    return max(2, min(16, (os.cpu_count() or 2) * 2))


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
            known = {}
            for prefix in {str(p.parent) for p, _ in files}:
                known.update(self.state.lookup_many(prefix))
        result: list[Oid | None] = [None] * len(files)
        todo: list[int] = []
        for i, (path, st) in enumerate(files):
            oid = StateCache.trusted(known.get(str(path)), st)
            if oid is not None and (not store or self.cache.has(oid)):
                result[i] = oid
            else:
                todo.append(i)

        def work(i: int) -> Oid:
            path = files[i][0]
            if store:
                oid, size = self.cache.store_file(path)
            else:
                oid, size = hash_file(path)
            if self.progress:
                self.progress(size)
            return oid

        if len(todo) == 1:
            result[todo[0]] = work(todo[0])
        elif todo:
            with ThreadPoolExecutor(self.jobs) as pool:
                for i, oid in zip(todo, pool.map(work, todo)):
                    result[i] = oid
        for i in todo:
            path, st = files[i]
            oid = result[i]
            assert oid is not None
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

    def walk(self, relpath: str) -> list[tuple[str, Path, os.stat_result]]:
        """Every file under a tracked directory: (path relative to it, absolute path, stat)."""
        base = self.root / relpath
        out: list[tuple[str, Path, os.stat_result]] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            here = Path(dirpath)
            for d in list(dirnames):
                if (here / d).is_symlink():
                    rel = (here / d).relative_to(self.root).as_posix()
                    raise UnsafePath(
                        f"{rel} is a symlink to a directory; git-model will not follow it "
                        "(copy the data in, or track its target instead)"
                    )
            for name in filenames:
                path = here / name
                rel_in_dir = path.relative_to(base).as_posix()
                rel = f"{relpath}/{rel_in_dir}"
                if name.endswith(".gitmodel") and name.startswith("."):
                    continue  # our own temp files from an interrupted checkout
                try:
                    check_relpath(rel_in_dir)
                except UnsafePath as e:
                    raise UnsafePath(f"cannot track {rel}: {e}") from None
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


@dataclass
class RestoreReport:
    written: list[str] = field(default_factory=list)  # paths (files) written
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

    def __init__(self, ws: Workspace, link_type: str = "copy") -> None:
        self.ws = ws
        self.link_type = link_type
        self.report = RestoreReport()

    @property
    def root(self) -> Path:
        return self.ws.root

    def _save(self, rel: str, path: Path) -> None:
        """Keep the bytes of a work-tree file we are about to replace or remove.

        Bytes already in the cache are safe; others are stored and reported, so the message can
        say how to get them back.
        """
        try:
            (oid,) = self.ws.hash_paths([(path, os.stat(path))], store=False)
            if self.ws.cache.has(oid):
                return
            oid, _ = self.ws.cache.store_file(path)
        except OSError as e:
            raise disk_error(e, f"saving {rel} before replacing it") from e
        self.report.saved.append((rel, oid))

    def _put(self, rel: str, oid: Oid, executable: bool) -> None:
        dest = safe_target(self.root, rel)
        try:
            self.ws.cache.materialize(oid, dest, executable=executable, link_type=self.link_type)
        except MissingObject:
            self.report.missing.append((rel, oid))
            return
        except CorruptObject:
            self.report.corrupt.append((rel, oid))
            return
        except OSError as e:
            raise disk_error(e, f"writing {rel}") from e
        with contextlib.suppress(OSError):
            self.ws.state.record(dest, os.stat(dest), oid)
        self.report.written.append(rel)

    def _clear_non_file(self, rel: str, path: Path) -> None:
        """Make room for a file where a directory or link now stands."""
        if path.is_symlink():
            if not os.path.realpath(path).startswith(str(self.ws.cache.objects) + os.sep):
                path.unlink()
        elif path.is_dir():
            for sub_rel, sub, _ in self.ws.walk(rel):
                self._save(f"{rel}/{sub_rel}", sub)
            shutil.rmtree(path)

    def restore_file(self, rel: str, oid: Oid, executable: bool) -> None:
        path = safe_target(self.root, rel)
        if path.is_dir() or (path.is_symlink() and self.link_type != "symlink"):
            self._clear_non_file(rel, path)
        try:
            st = self.ws._stat_file(path, rel)
        except FileNotFoundError:
            self._put(rel, oid, executable)
            return
        except (UnsafePath, GitModelError):
            self._clear_non_file(rel, path)
            self._put(rel, oid, executable)
            return
        (current,) = self.ws.hash_paths([(path, st)], store=False)
        if current == oid:
            if is_executable(st) != executable and not path.is_symlink():
                mode = st.st_mode | 0o111 if executable else st.st_mode & ~0o111
                os.chmod(path, stat.S_IMODE(mode) & ~(0o022 if not executable else 0))
            self.report.unchanged += 1
            return
        self._save(rel, path)
        self._put(rel, oid, executable)

    def restore(self, art: Artifact, read: Reader) -> None:
        if not art.is_dir:
            self.restore_file(art.path, art.oid, art.executable)
            return
        entries = read_listing(read, art)
        path = safe_target(self.root, art.path)
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            self._clear_non_file_or_link(art.path, path)
        wanted = {e.relpath: e for e in entries}
        present = self.ws.walk(art.path) if path.is_dir() else []
        for sub_rel, sub, _ in present:
            if sub_rel not in wanted and not _is_prefix_of_wanted(sub_rel, wanted):
                self._save(f"{art.path}/{sub_rel}", sub)
                sub.unlink()
                self.report.removed.append(f"{art.path}/{sub_rel}")
        for e in entries:
            self.restore_file(f"{art.path}/{e.relpath}", e.oid, e.executable)
        _prune_empty_dirs(path)

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
            for sub_rel, sub, _ in self.ws.walk(art.path):
                self._save(f"{art.path}/{sub_rel}", sub)
            shutil.rmtree(path)
        elif path.exists():
            self._save(art.path, path)
            path.unlink()
        else:
            return
        self.report.removed.append(art.path)


def _is_prefix_of_wanted(rel: str, wanted: dict[str, Entry]) -> bool:
    return any(w.startswith(rel + "/") for w in wanted)


def _prune_empty_dirs(top: Path) -> None:
    for dirpath, _dirnames, _filenames in os.walk(top, topdown=False):
        if Path(dirpath) != top:
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


def needed_objects(
    manifest: Manifest, read: Reader, paths: Iterable[str] | None = None
) -> dict[Oid, str]:
    """Every object the work tree needs for `manifest` (oid -> one path that uses it)."""
    selected = (
        manifest.artifacts.values()
        if paths is None
        else [manifest.artifacts[p] for p in paths if p in manifest.artifacts]
    )
    out: dict[Oid, str] = {}
    for art in selected:
        if art.is_dir:
            for e in read_listing(read, art):
                out.setdefault(e.oid, f"{art.path}/{e.relpath}")
        else:
            out.setdefault(art.oid, art.path)
    return out
