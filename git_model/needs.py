"""What a manifest's work tree is made of: the objects each artifact needs, listings checked.

A file artifact needs its object, or, stored by parts (see partstore.py), the object of each
part its tensor listing names; a tracked directory needs the object of each file its listing
names. A directory's listing is read and checked once per process (and once per clone, through
the stat cache), since the checkout lists what it needs and then restores.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from .hashing import Oid
from .listing import Entry, iter_listing, listing_path, verified_listing
from .listingstream import Blocks, SpooledListing, spool_listing
from .manifest import Artifact, Manifest, Reader
from .tensors import read_tensors

if TYPE_CHECKING:
    from .statecache import StateCache


class Needed(NamedTuple):
    """One file's need of one object: `path` is inside the tracked directory `top` ("" for a
    file artifact); `part` when the object is one part of the file, not the file itself."""

    oid: Oid
    top: str
    path: str
    size: int
    part: bool = False


_CHECKED: dict[Oid, bytes] = {}  # listings read and validated in this process, by oid
_CHECKED_BYTES = 64 << 20  # most bytes of listings kept for a second pass
SPOOL_FILES = 50_000  # a listing of more files than this goes to a temp file, not memory
SPOOL_ENV = "GIT_MODEL_TEST_SPOOL_FILES"  # (tests: spool a listing of a few files)
_SPOOLED: dict[Oid, SpooledListing] = {}  # (their temp files: disk, not memory)


def checked_listing(read: Reader, art: Artifact, state: StateCache | None = None) -> bytes:
    """`verified_listing` with every line checked, once per process (and once per clone, given
    the stat cache `state`): a listing's bytes are named by the directory's oid, so the same oid
    is the same checked bytes (the checkout lists what it needs, then restores). Iterate with
    `iter_listing(..., checked=True)`."""
    data = _CHECKED.get(art.oid)
    if data is None or data.count(b"\n") != art.files:
        data = verified_listing(read, art)
        if state is None or not state.listing_checked(art.oid):
            for _ in iter_listing(data, listing_path(art.path)):
                pass  # a bad line is refused before anything is written
            if state is not None:
                state.mark_listing_checked(art.oid)
        while _CHECKED and sum(map(len, _CHECKED.values())) + len(data) > _CHECKED_BYTES:
            _CHECKED.pop(next(iter(_CHECKED)))
        _CHECKED[art.oid] = data
    return data


def checked_source(
    read: Reader, art: Artifact, state: StateCache | None = None
) -> bytes | SpooledListing:
    """`checked_listing`, but a listing of more than SPOOL_FILES files that `read` can stream
    (listingstream.py) is verified into a temp file instead of held (~95 MiB at a million
    files), once per process; iterate with `listing_entries`."""
    blocks: Blocks | None = getattr(read, "blocks", None)
    limit = os.environ.get(SPOOL_ENV, "")
    if blocks is None or (art.files or 0) <= (int(limit) if limit.isdigit() else SPOOL_FILES):
        return checked_listing(read, art, state)
    spooled = _SPOOLED.get(art.oid)
    if spooled is None:
        stream = blocks(listing_path(art.path), art.oid)
        if stream is None:  # (missing, or in the index or HEAD only: the held way says)
            return checked_listing(read, art, state)
        check = state is None or not state.listing_checked(art.oid)
        tmp = getattr(read, "tmp", None)  # (the repository's: see spool_listing)
        spooled = _SPOOLED[art.oid] = spool_listing(stream, art, check=check, tmp=tmp)
        if state is not None and check:
            state.mark_listing_checked(art.oid)
    return spooled


def listing_entries(data: bytes | SpooledListing, what: str) -> Iterator[Entry]:
    """The entries of what `checked_source` gave, one at a time."""
    if isinstance(data, SpooledListing):
        return data.entries()
    return iter_listing(data, what, checked=True)


def listing(read: Reader, art: Artifact, state: StateCache | None = None) -> Iterator[Entry]:
    """The entries of a tracked directory's listing, checked (see `checked_listing`), one at
    a time."""
    return listing_entries(checked_source(read, art, state), listing_path(art.path))


def needed_objects(
    manifest: Manifest, read: Reader, paths: Iterable[str] | None = None
) -> dict[Oid, str]:
    """Every object the work tree needs for `manifest` (oid -> one path that uses it)."""
    out: dict[Oid, str] = {}
    for need in iter_needed(manifest, read, paths):
        if need.oid not in out:
            out[need.oid] = f"{need.top}/{need.path}" if need.top else need.path
    return out


def iter_needed(
    manifest: Manifest, read: Reader, paths: Iterable[str] | None = None
) -> Iterator[Needed]:
    """Every object the work tree needs for `manifest` (for the artifacts at `paths` when
    given), one at a time: an oid comes once for each file (or part of a file) that holds it."""
    selected = (
        manifest.artifacts.values()
        if paths is None
        else [manifest.artifacts[p] for p in paths if p in manifest.artifacts]
    )
    for art in selected:
        if art.is_dir:
            for e in listing(read, art):
                yield Needed(e.oid, art.path, e.relpath, e.size)
        elif art.layout is not None:
            for p in read_tensors(read, art).parts:
                yield Needed(p.oid, "", art.path, p.length, True)
        else:
            yield Needed(art.oid, "", art.path, art.size)
