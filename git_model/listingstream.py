"""A directory's listing read a block at a time, never held whole.

`verified_listing` + `iter_listing` hold a listing's bytes while its entries are used: ~95 MiB
at a million files. A walk that only collects the entries (which objects a push, fetch or gc
needs, reachable.py) takes them from the bytes as they stream in instead (`git cat-file`
through `CatFile.stream`, or a work-tree file), hashing and counting as it goes. The checks
are the same ones, with the same messages, but the hash and the line count are known only at
the end: an error can come after entries, so a caller collects them and acts on them only
once the iterator has ended without one.

A checkout acts on entries as it reads them, so it needs them verified first: a large
listing is copied into an unnamed temp file while it is verified (`spool_listing`), and read
back from there a block at a time (`SpooledListing.entries`), as often as needed. The
readers that can stream (`GitReader`, `WorktreeReader`: what `Context.reader` gives) have a
`blocks(path, oid)` for it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from .errors import ManifestError
from .git import CatFile
from .hashing import Oid, hash_file
from .listing import Entry, FallbackReader, LineCheck, iter_listing, listing_path
from .manifest import Artifact, Reader, worktree_reader
from .paths import GITMODEL_DIR

BLOCK = 1 << 20
Blocks = Callable[[str, Oid], "Iterator[bytes] | None"]  # path, oid -> its bytes, or None


def stream_listing(
    blocks: Iterable[bytes], art: Artifact, *, check: bool = True
) -> Iterator[Entry]:
    """The entries of `art`'s listing from its bytes in `blocks` (read to the end).
    `check=False`: these bytes passed the line checks before (the stat cache says so): only
    their hash and line count are checked, and no entries come."""
    path = listing_path(art.path)
    digest = hashlib.sha256()
    lines_of = LineCheck(path)
    lines, tail, last = 0, b"", b"\n"
    error: ManifestError | None = None
    for block in blocks:
        digest.update(block)
        lines += block.count(b"\n")
        last = block[-1:] or last
        if error is not None or not check:
            continue
        data = tail + block if tail else block
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        if cut:
            try:
                yield from lines_of.lines(data[: cut - 1])
            except ManifestError as e:
                error = e  # (unless the bytes are not the listing at all: that first)
    if digest.hexdigest() != art.oid:
        raise ManifestError(
            f"{path} does not match the oid the manifest gives {art.path}; "
            f"restore both with 'git checkout -- {GITMODEL_DIR}'"
        )
    if last != b"\n":
        list(iter_listing(last, path))  # (its own error: no newline at the end)
    if error is not None:
        raise error
    if lines != art.files:
        raise ManifestError(f"{path} lists {lines} files but the manifest says {art.files}")


def file_blocks(path: Path) -> Iterator[bytes] | None:
    """A file's bytes a block at a time; None if there is no file."""
    try:
        f = path.open("rb")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None

    def blocks() -> Iterator[bytes]:
        with f:
            while block := f.read(BLOCK):
                yield block

    return blocks()


def worktree_blocks(root: Path) -> Blocks:
    """A work tree's listings as blocks, where the file there hashes to the oid its manifest
    gives (hashed once ahead; `stream_listing` hashes it again as it reads). Otherwise None:
    the caller's `verified_listing` then finds it in the index or HEAD (see FallbackReader),
    or says what is wrong."""

    def blocks(path: str, oid: Oid) -> Iterator[bytes] | None:
        try:
            if hash_file(root / path)[0] != oid:
                return None
        except OSError:
            return None
        return file_blocks(root / path)

    return blocks


class SpooledListing:
    """A verified listing's bytes in an unnamed temp file (see `spool_listing`)."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file  # (kept open: the file goes with it)

    def entries(self) -> Iterator[Entry]:
        """Its entries, a block at a time (each call reads from the start, on its own)."""
        fd, pos, tail = self._file.fileno(), 0, b""
        while block := os.pread(fd, BLOCK, pos):
            pos += len(block)
            data = tail + block if tail else block
            cut = data.rfind(b"\n") + 1
            tail = data[cut:]
            if cut:
                yield from iter_listing(data[:cut], "", checked=True)


def spool_listing(
    blocks: Iterable[bytes], art: Artifact, *, check: bool = True, tmp: Path | None = None
) -> SpooledListing:
    """`art`'s listing from `blocks`, verified as `stream_listing` does (`check`: its lines
    too) while it is copied into an unnamed temp file in `tmp` (the repository's, on its own
    disk: a /tmp on tmpfs would hold it in memory after all); ManifestError, and no file, if
    not."""
    if tmp is not None:
        tmp.mkdir(parents=True, exist_ok=True)
    file = tempfile.TemporaryFile(prefix="listing-", dir=tmp)  # noqa: SIM115 (SpooledListing's)

    def copied() -> Iterator[bytes]:
        for block in blocks:
            file.write(block)
            yield block

    try:
        for _ in stream_listing(copied(), art, check=check):
            pass
        file.flush()
    except BaseException:
        file.close()
        raise
    return SpooledListing(file)


class GitReader:
    """`Reader` of a revision (`REV:`) or the index (`:`) through `git cat-file`, which can
    also stream a file (`blocks`)."""

    def __init__(self, cat: CatFile, prefix: str, tmp: Path | None = None) -> None:
        self.cat, self.prefix, self.tmp = cat, prefix, tmp  # tmp: where to spool a listing

    def __call__(self, path: str) -> bytes | None:
        return self.cat.read(self.prefix + path)

    def blocks(self, path: str, oid: Oid) -> Iterator[bytes] | None:
        return self.cat.stream(self.prefix + path)


class WorktreeReader(FallbackReader):
    """The work tree's `FallbackReader`, which can also stream a listing that holds the oid
    its manifest gives (`blocks`; None sends the caller to the fallbacks)."""

    def __init__(
        self, root: Path, fallbacks: Callable[[], Iterable[Reader]], tmp: Path | None = None
    ) -> None:
        super().__init__(worktree_reader(root), fallbacks)
        self.blocks = worktree_blocks(root)
        self.tmp = tmp  # where to spool a listing
