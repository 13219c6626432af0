"""Putting back what should be: make the work tree's artifacts match a manifest.

`Restorer` writes only what differs, verifies every byte it writes (a corrupt cache object
never reaches the work tree), and stores any work-tree bytes it is about to replace or remove
in the cache first, reporting them so the message can say how to get them back. A tracked
directory is restored in bulk: one walk, the current oids from the stat cache (the rest hashed
in parallel), then every file to write copied in parallel.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .cache import disk_error, is_executable
from .errors import CorruptObject, GitModelError, MissingObject, UnsafePath
from .hashing import Oid
from .manifest import Artifact, Entry, Manifest, Reader, read_listing
from .parallel import map_batched
from .paths import check_relpath, safe_target

if TYPE_CHECKING:
    from .workspace import Workspace


def is_temp_name(name: str) -> bool:
    """A temp file a checkout writes beside its target before renaming it into place
    (`.NAME.XXXXXXXX.gitmodel`; `.NAME.gitmodel-PID` for links). One still there after the
    checkout was killed is litter: git-model never reads it, the next checkout removes it."""
    if not name.startswith("."):
        return False
    return name.endswith(".gitmodel") or name.rpartition(".gitmodel-")[2].isdigit()


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
        self._safe_parents: set[str] = set()
        self._swept: set[Path] = set()

    @property
    def root(self) -> Path:
        return self.ws.root

    def _save(self, rel: str, path: Path, oid: Oid | None = None) -> None:
        """Keep the bytes of a work-tree file we are about to replace or remove.

        Bytes already in the cache are safe; others are stored and reported, so the message can
        say how to get them back. `oid`: the file's oid when the caller just computed it.
        """
        try:
            if oid is None:
                (oid,) = self.ws.hash_paths([(path, os.stat(path))], store=False)
            if self.ws.cache.has(oid):
                return
            oid, _ = self.ws.cache.store_file(path)
        except OSError as e:
            raise disk_error(e, f"saving {rel} before replacing it") from e
        self.report.saved.append((rel, oid))

    def _target(self, rel: str, *, checked: bool = False) -> Path:
        """`safe_target`, checking each folder on the way once per restore, not once per file.
        `checked`: `rel` is already known to be a safe relative path (from a verified listing)."""
        parent = rel.rpartition("/")[0]
        if parent in self._safe_parents:
            if not checked:
                check_relpath(rel)
            return self.root / rel
        path = safe_target(self.root, rel)
        self._safe_parents.add(parent)
        return path

    def _write(self, rel: str, oid: Oid, executable: bool, checked: bool = False) -> str:
        """Write one file from the cache; "written", "missing" or "corrupt"."""
        dest = self._target(rel, checked=checked)
        try:
            self.ws.cache.materialize(oid, dest, executable=executable, link_type=self.link_type)
        except MissingObject:
            return "missing"
        except CorruptObject:
            return "corrupt"
        except OSError as e:
            raise disk_error(e, f"writing {rel}") from e
        with contextlib.suppress(OSError):
            self.ws.state.record(dest, os.stat(dest), oid)
        return "written"

    def _report(self, rel: str, oid: Oid, outcome: str) -> None:
        if outcome == "written":
            self.report.written.append(rel)
        else:
            getattr(self.report, outcome).append((rel, oid))

    def _put(self, rel: str, oid: Oid, executable: bool) -> None:
        self._report(rel, oid, self._write(rel, oid, executable))

    def _put_many(self, items: list[tuple[str, Oid, bool, int]]) -> None:
        """Write many files (rel, oid, executable, size) from the cache, in parallel."""
        outcomes = map_batched(
            lambda i: self._write(*items[i][:3], checked=True),
            [item[3] for item in items],
            self.ws.jobs,
        )
        for (rel, oid, _, _), outcome in zip(items, outcomes):
            self._report(rel, oid, outcome)

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
        if not self._settle(rel, path, st, current, oid, executable):
            self._put(rel, oid, executable)

    def _settle(
        self, rel: str, path: Path, st: os.stat_result, current: Oid, oid: Oid, executable: bool
    ) -> bool:
        """For a file that holds `current`: fix its mode if it already holds `oid` (True), or
        keep its bytes and write `oid` (False: the caller writes)."""
        if current == oid:
            if is_executable(st) != executable and not path.is_symlink():
                mode = st.st_mode | 0o111 if executable else st.st_mode & ~0o111
                os.chmod(path, stat.S_IMODE(mode) & ~(0o022 if not executable else 0))
            self.report.unchanged += 1
            return True
        self._save(rel, path, current)
        return False

    def restore(self, art: Artifact, read: Reader) -> None:
        """Make one artifact match the manifest. Runs under the repository lock, so a temp
        file of ours found on the way is litter from a killed checkout, and goes."""
        if not art.is_dir:
            self._sweep(safe_target(self.root, art.path).parent)
            self.restore_file(art.path, art.oid, art.executable)
            return
        entries = listing(read, art)
        path = safe_target(self.root, art.path)
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            self._clear_non_file_or_link(art.path, path)
        wanted = {e.relpath: e for e in entries}
        folders = {rel[:i] for rel in wanted for i, c in enumerate(rel) if c == "/"}
        was_dir = path.is_dir()
        strays: list[Path] = []
        present = self.ws.walk(art.path, strays) if was_dir else []
        for stray in strays:
            with contextlib.suppress(OSError):
                stray.unlink()
        here: dict[str, tuple[Path, os.stat_result]] = {}
        for sub_rel, sub, st in present:
            if sub_rel in wanted:
                here[sub_rel] = (sub, st)
            elif sub_rel not in folders:
                self._save(f"{art.path}/{sub_rel}", sub)
                sub.unlink()
                self.report.removed.append(f"{art.path}/{sub_rel}")
        # what the files there hold now: from the stat cache, the rest hashed in parallel
        names = [e.relpath for e in entries if e.relpath in here]
        known = self.ws.state.lookup_many(str(path))
        current = self.ws.hash_paths([here[n] for n in names], store=False, known=known)
        now = dict(zip(names, current))
        writes: list[tuple[str, Oid, bool, int]] = []
        marks = [len(self.report.written), len(self.report.missing), len(self.report.corrupt)]
        for e in entries:
            rel = f"{art.path}/{e.relpath}"
            if e.relpath in now:
                sub, st = here[e.relpath]
                if self._settle(rel, sub, st, now[e.relpath], e.oid, e.executable):
                    continue
            elif was_dir and not _absent(path / e.relpath):
                self.restore_file(rel, e.oid, e.executable)  # a folder or link stands there
                continue
            writes.append((rel, e.oid, e.executable, e.size))
        self._put_many(writes)
        # listing order, as writing one file at a time would give
        r = self.report
        r.written[marks[0] :] = sorted(r.written[marks[0] :])
        r.missing[marks[1] :] = sorted(r.missing[marks[1] :])
        r.corrupt[marks[2] :] = sorted(r.corrupt[marks[2] :])
        _prune_empty_dirs(path)

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
            for sub_rel, sub, _ in self.ws.walk(art.path):
                self._save(f"{art.path}/{sub_rel}", sub)
            shutil.rmtree(path)
        elif path.exists():
            self._save(art.path, path)
            path.unlink()
        else:
            return
        self.report.removed.append(art.path)


_LISTINGS: dict[Oid, list[Entry]] = {}


def listing(read: Reader, art: Artifact) -> list[Entry]:
    """`read_listing`, parsed once per process: a listing's bytes are named by the directory's
    oid, so the same oid always parses to the same entries (10,000 lines take ~50 ms)."""
    entries = _LISTINGS.get(art.oid)
    if entries is None or len(entries) != art.files:
        entries = read_listing(read, art)
        if len(_LISTINGS) >= 8:
            _LISTINGS.pop(next(iter(_LISTINGS)))
        _LISTINGS[art.oid] = entries
    return entries


def _absent(path: Path) -> bool:
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


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
            for e in listing(read, art):
                out.setdefault(e.oid, f"{art.path}/{e.relpath}")
        else:
            out.setdefault(art.oid, art.path)
    return out
