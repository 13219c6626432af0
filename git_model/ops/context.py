"""One open repository with everything git-model keeps for it."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..cache import Cache
from ..config import Settings
from ..errors import NotInitialized
from ..git import Repo
from ..hashing import Oid, hash_file
from ..listingstream import GitReader, WorktreeReader
from ..lock import repo_lock
from ..manifest import (
    MANIFEST_PATH,
    Manifest,
    Reader,
    format_manifest,
    parse_manifest,
)
from ..statecache import StateCache
from ..workspace import Progress, Workspace


@dataclass
class Context:
    repo: Repo
    settings: Settings
    cache: Cache
    _state: StateCache | None = field(default=None, repr=False)
    _locked: int = field(default=0, repr=False)  # (lock() held: no other writer runs)

    @classmethod
    def open(
        cls, start: str | os.PathLike[str] | None = None, *, require_init: bool = True
    ) -> Context:
        repo = Repo.discover(start)
        if require_init and not (repo.root / MANIFEST_PATH).is_file():
            raise NotInitialized(
                f"git-model is not set up in {repo.root}; run 'git model init' first"
            )
        return cls(repo, Settings(repo.root), Cache(repo.model_dir))

    @property
    def root(self) -> Path:
        return self.repo.root

    @property
    def state(self) -> StateCache:
        if self._state is None:
            self._state = StateCache(self.repo.model_dir)
        return self._state

    def workspace(self, progress: Progress | None = None) -> Workspace:
        return Workspace(
            self.root, self.cache, self.state, int(self.settings.get("jobs")), progress
        )

    @contextlib.contextmanager
    def lock(self, what: str) -> Iterator[None]:
        with repo_lock(self.repo.model_dir, float(self.settings.get("lockTimeout")), what):
            self._locked += 1
            try:
                yield
            finally:
                self._locked -= 1

    # -- manifests at revisions ----------------------------------------------------------------

    def reader(self, rev: str | None) -> Reader:
        """Read repo files from the work tree (rev None), the index (""), or a revision.

        The work tree's reader finds a directory listing that a `git model add` or a commit
        hook was stopped from pairing with its manifest in the index or HEAD instead. Both
        kinds can also stream a listing (listingstream.py).
        """
        if rev is None:

            def fallbacks() -> tuple[Reader, Reader]:
                return self.reader(""), self.reader("HEAD")

            return WorktreeReader(self.root, fallbacks, self.cache.tmp)
        return GitReader(self.repo.cat_file(), f"{rev}:" if rev else ":", self.cache.tmp)

    def manifest(self, rev: str | None = None) -> Manifest:
        data = self.reader(rev)(MANIFEST_PATH)
        what = MANIFEST_PATH if rev is None else f"{MANIFEST_PATH} at {rev or 'the index'}"
        return Manifest() if data is None else parse_manifest(data, what)

    # -- writing tracked files -----------------------------------------------------------------

    def holds(self, relpath: str, data: bytes) -> bool:
        """Whether the work tree's file `relpath` holds exactly `data`, read 1 MiB at a time
        (a listing of a million files is ~95 MiB: never a second copy of it in memory)."""
        try:
            with open(self.root / relpath, "rb") as f:
                if os.fstat(f.fileno()).st_size != len(data):
                    return False
                view, at = memoryview(data), 0
                while chunk := f.read(1 << 20):
                    if view[at : at + len(chunk)] != chunk:
                        return False
                    at += len(chunk)
                return at == len(data)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return False

    def write_file(self, relpath: str, data: bytes) -> bool:
        """Atomically write a tracked git-model file; False if it already held `data`."""
        self._tidy(relpath)
        if self.holds(relpath, data):
            return False
        with self._beside(relpath) as (f, tmp):
            f.write(data)
            f.close()
            os.replace(tmp, self.root / relpath)
        return True

    def write_stream(
        self, relpath: str, fill: Callable[[BinaryIO], Oid | None]
    ) -> tuple[Oid, bool] | None:
        """Atomically write a tracked git-model file too large to hold (a listing of a million
        files) from `fill`, which writes it and gives its SHA-256, or None to give up (nothing
        is written then). (that oid, False if the file already held those bytes)."""
        path = self.root / relpath
        self._tidy(relpath)
        with self._beside(relpath) as (f, tmp):
            oid = fill(f)
            f.close()
            if oid is None:
                return None
            try:
                same = hash_file(path)[0] == oid
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                same = False
            if not same:
                os.replace(tmp, path)
        return oid, not same

    def _tidy(self, relpath: str) -> None:
        """Under lock() no other writer runs: a temp file beside `relpath` is one a writer
        killed part way left, and would show in `git status` as an untracked file."""
        if self._locked:
            _sweep_temps(self.root / relpath)

    @contextlib.contextmanager
    def _beside(self, relpath: str) -> Iterator[tuple[BinaryIO, str]]:
        """A temp file beside `relpath` (same folder: a rename puts it in place), gone on the
        way out unless the caller renamed it."""
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _new_temp(path)
        try:
            with os.fdopen(fd, "wb") as f:
                yield f, tmp
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def write_manifest(self, manifest: Manifest) -> bool:
        return self.write_file(MANIFEST_PATH, format_manifest(manifest))

    def close(self) -> None:
        if self._state is not None:
            self._state.close()
            self._state = None
        self.repo.close()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _new_temp(path: Path) -> tuple[int, str]:
    """A new file beside `path`, named as `_sweep_temps` knows, with the mode the user's umask
    gives (0o666 less it, as git gives the files it checks out; mkstemp's 0o600 would leave
    the manifest and listings unreadable to the rest of a group sharing the work tree)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    for _ in range(100):  # (as newfiles and the cache draw their temp names)
        tmp = str(path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temp name", str(path.parent))


def _sweep_temps(path: Path) -> None:
    """Remove the temp files a writer of `path` killed part way left beside it (`_beside`'s
    names): they would show in `git status` as untracked files of .gitmodel/."""
    prefix = f".{path.name}."
    with contextlib.suppress(OSError), os.scandir(path.parent) as entries:
        for e in entries:
            if e.name.startswith(prefix) and e.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    os.unlink(e.path)
