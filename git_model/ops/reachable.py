"""Which cache objects a set of commits (or a work tree, an index) needs.

Push, fetch, the pre-push hook and gc all ask this. Walking every commit would be slow on a
long history, and wasteful: a commit needs the objects its `.gitmodel/` lists, and that only
changes where `.gitmodel/` changes. So the walk asks git for the commits that touch
`.gitmodel/` (`rev-list --full-history -- .gitmodel`: every side of every merge, no history
simplification that could skip a branch's own manifests), plus the tips themselves, and reads
each distinct manifest once through the long-lived `cat-file --batch`. A directory's listing is
named by its oid, so each listing is read once however many commits share it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..git import Repo
from ..hashing import Oid, hash_bytes
from ..manifest import (
    MANIFEST_PATH,
    FallbackReader,
    Manifest,
    Reader,
    iter_listing,
    listing_path,
    parse_manifest,
    verified_listing,
    worktree_reader,
)
from ..paths import GITMODEL_DIR
from ..tensors import read_tensors


class ObjectRef:
    """One file that uses an object (its path, for messages) and the object's size; `part`
    when the object is one part of that file (see partstore.py), not all of it.

    A file of a tracked directory keeps the directory and its path in it apart, joined only
    when a message needs it: a walk of 100,000 files holds no joined copy of each path."""

    __slots__ = ("_rel", "_top", "part", "size")

    def __init__(self, path: str, size: int, top: str = "", *, part: bool = False) -> None:
        self._rel, self.size, self._top, self.part = path, size, top, part

    @property
    def path(self) -> str:
        return f"{self._top}/{self._rel}" if self._top else self._rel

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectRef):
            return NotImplemented
        return (self.path, self.size) == (other.path, other.size)

    def __hash__(self) -> int:
        return hash((self.path, self.size))

    def __repr__(self) -> str:
        return f"ObjectRef({self.path!r}, {self.size})"


class ObjectWalk:
    """Collects the objects that manifests need: `objects` maps oid -> ObjectRef; with
    `refs=False` (gc: only the oids) `oids` is the set of them instead, and `objects` stays
    empty (a dict beside a set of a million oids was ~100 MiB more)."""

    def __init__(self, repo: Repo, *, refs: bool = True) -> None:
        self.repo = repo
        self.refs = refs
        self.objects: dict[Oid, ObjectRef] = {}
        self.oids: set[Oid] = set()
        self._manifests: set[Oid] = set()
        self._dirs: set[Oid] = set()

    def add_manifest(self, read: Reader, what: str) -> None:
        data = read(MANIFEST_PATH)
        if data is None:
            return
        key = hash_bytes(data)
        if key in self._manifests:
            return
        self._manifests.add(key)
        manifest = parse_manifest(data, what)
        if not self.refs:
            self._add_oids(manifest, read)
            return
        objects = self.objects
        for art in manifest.artifacts.values():
            if art.layout is not None and art.parts is not None:
                if art.parts in self._dirs:  # (named by its SHA-256: the same lines)
                    continue
                self._dirs.add(art.parts)
                for p in read_tensors(read, art).parts:
                    if p.oid not in objects:
                        objects[p.oid] = ObjectRef(art.path, p.length, part=True)
            elif not art.is_dir:
                objects.setdefault(art.oid, ObjectRef(art.path, art.size))
            elif art.oid not in self._dirs:
                data = verified_listing(read, art)
                for e in iter_listing(data, listing_path(art.path)):  # one at a time
                    if e.oid not in objects:
                        objects[e.oid] = ObjectRef(e.relpath, e.size, art.path)
                self._dirs.add(art.oid)

    def _add_oids(self, manifest: Manifest, read: Reader) -> None:
        """`add_manifest` for the oids alone."""
        oids = self.oids
        for art in manifest.artifacts.values():
            if art.layout is not None and art.parts is not None:
                if art.parts not in self._dirs:
                    self._dirs.add(art.parts)
                    oids.update(p.oid for p in read_tensors(read, art).parts)
            elif not art.is_dir:
                oids.add(art.oid)
            elif art.oid not in self._dirs:
                data = verified_listing(read, art)
                oids.update(e.oid for e in iter_listing(data, listing_path(art.path)))
                self._dirs.add(art.oid)

    def add_commit(self, commit: str) -> None:
        cat = self.repo.cat_file()
        self.add_manifest(lambda p: cat.read(f"{commit}:{p}"), f"{MANIFEST_PATH} at {commit[:12]}")

    def add_history(self, rev_args: Iterable[str]) -> None:
        """Every commit reachable from `rev_args` (git rev-list syntax) whose .gitmodel/ changed."""
        args = list(rev_args)
        if not args:
            return
        out = self.repo.git("rev-list", "--full-history", *args, "--", GITMODEL_DIR).decode()
        for commit in out.split():
            self.add_commit(commit)

    def add_worktree(self, root: Path) -> None:
        """A work tree's own manifest and its index's (uncommitted `git model add`s)."""
        repo = Repo.discover(root)
        try:
            cat = repo.cat_file()

            def index(p: str) -> bytes | None:
                return cat.read(f":{p}")

            def head(p: str) -> bytes | None:
                return cat.read(f"HEAD:{p}")

            worktree = FallbackReader(worktree_reader(root), lambda: (index, head))
            self.add_manifest(worktree, f"{root / MANIFEST_PATH}")
            self.add_manifest(index, f"{MANIFEST_PATH} in {root}'s index")
        finally:
            repo.close()


def worktrees(repo: Repo) -> list[tuple[Path, str | None]]:
    """Every work tree of the repository: (root, HEAD commit or None)."""
    out = repo.git("worktree", "list", "--porcelain", "-z").decode()
    found: list[tuple[Path, str | None]] = []
    root: Path | None = None
    head: str | None = None
    for item in [*out.split("\0"), ""]:
        if item.startswith("worktree "):
            root = Path(item[len("worktree ") :])
        elif item.startswith("HEAD "):
            head = item[len("HEAD ") :]
        elif item == "bare":
            root = None
        elif item == "" and root is not None:
            if root.is_dir():  # a pruned work tree's folder may be gone
                found.append((root, head))
            root, head = None, None
    return found
