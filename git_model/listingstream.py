"""A directory's listing read a block at a time, never held whole.

`verified_listing` + `iter_listing` hold a listing's bytes while its entries are used: ~95 MiB
at a million files. A walk that only collects the entries (which objects a push, fetch or gc
needs, reachable.py) takes them from the bytes as they stream in instead (`git cat-file`
through `CatFile.stream`, or a work-tree file), hashing and counting as it goes. The checks
are the same ones, with the same messages, but the hash and the line count are known only at
the end: an error can come after entries, so a caller collects them and acts on them only
once the iterator has ended without one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .errors import ManifestError
from .hashing import Oid, hash_file
from .manifest import Artifact, Entry, LineCheck, iter_listing, listing_path
from .paths import GITMODEL_DIR

BLOCK = 1 << 20
Blocks = Callable[[str, Oid], "Iterator[bytes] | None"]  # path, oid -> its bytes, or None


def stream_listing(blocks: Iterable[bytes], art: Artifact) -> Iterator[Entry]:
    """The entries of `art`'s listing from its bytes in `blocks` (read to the end)."""
    path = listing_path(art.path)
    digest = hashlib.sha256()
    check = LineCheck(path)
    lines, tail, last = 0, b"", b"\n"
    error: ManifestError | None = None
    for block in blocks:
        digest.update(block)
        lines += block.count(b"\n")
        last = block[-1:] or last
        if error is not None:
            continue
        data = tail + block if tail else block
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        if cut:
            try:
                yield from check.lines(data[: cut - 1])
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
