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

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import GitModelError
from ..git import Repo
from ..hashing import Oid, hash_bytes
from ..listing import Entry, FallbackReader, iter_listing, listing_path, verified_listing
from ..listingstream import Blocks, stream_listing, worktree_blocks
from ..manifest import MANIFEST_PATH, Artifact, Reader, parse_manifest, worktree_reader
from ..paths import GITMODEL_DIR
from ..tensors import read_tensors
from .wanted import ObjectRef, Wanted

__all__ = ["ObjectRef", "ObjectWalk", "worktrees"]


class ObjectWalk:
    """Collects the objects that manifests need in `wanted` (see wanted.py: each once, in
    groups by prefix, one group in memory); with `refs=False` (gc) only their oids."""

    def __init__(self, repo: Repo, *, refs: bool = True) -> None:
        self.repo = repo
        self.wanted = Wanted(repo.model_dir / "tmp", refs=refs)
        self._manifests: set[Oid] = set()
        self._dirs: set[Oid] = set()

    def add_manifest(self, read: Reader, what: str, blocks: Blocks | None = None) -> None:
        """The objects the manifest that `read` gives needs. `blocks`: the same source a block
        at a time, for directories' listings (listingstream.py: never held whole)."""
        data = read(MANIFEST_PATH)
        if data is None:
            return
        key = hash_bytes(data)
        if key in self._manifests:
            return
        self._manifests.add(key)
        add = self.wanted.add
        for art in parse_manifest(data, what).artifacts.values():
            if art.layout is not None and art.parts is not None:
                if art.parts in self._dirs:  # (named by its SHA-256: the same lines)
                    continue
                self._dirs.add(art.parts)
                for p in read_tensors(read, art).parts:
                    add(p.oid, p.length, art.path, "", True)
            elif not art.is_dir:
                add(art.oid, art.size, art.path)
            elif art.oid not in self._dirs:
                for e in _listing(read, blocks, art):  # one at a time
                    add(e.oid, e.size, e.relpath, art.path)
                self._dirs.add(art.oid)

    def add_record(self, folder: Path) -> None:
        """The objects a folder laid out like a work tree names (a run's record: local_runs.py);
        one that cannot be read names none."""
        # (a damaged record restores nothing either: restore verifies every byte)
        with contextlib.suppress(GitModelError):
            what = f"the record of a run in {folder}"
            self.add_manifest(worktree_reader(folder), what, worktree_blocks(folder))

    def add_commit(self, commit: str) -> None:
        cat = self.repo.cat_file()
        self.add_manifest(
            lambda p: cat.read(f"{commit}:{p}"),
            f"{MANIFEST_PATH} at {commit[:12]}",
            lambda p, _: cat.stream(f"{commit}:{p}"),
        )

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
            self.add_manifest(worktree, f"{root / MANIFEST_PATH}", worktree_blocks(root))
            self.add_manifest(
                index,
                f"{MANIFEST_PATH} in {root}'s index",
                lambda p, _: cat.stream(f":{p}"),
            )
        finally:
            repo.close()


def _listing(read: Reader, blocks: Blocks | None, art: Artifact) -> Iterator[Entry]:
    """A directory's entries: streamed where `blocks` has the listing, else held (checked the
    same way; an error can come after entries: the walk only collects them)."""
    stream = blocks(listing_path(art.path), art.oid) if blocks is not None else None
    if stream is not None:
        return stream_listing(stream, art)
    return iter_listing(verified_listing(read, art), listing_path(art.path))


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
