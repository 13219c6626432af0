"""A tracked directory scanned again where it changed, and only there.

The stamps keep, for each directory, a digest of the stat data of every folder's files as they
were when its listing was made (`Stamps.reusable`). When one file of a million changes, the
folders whose files still digest the same keep their lines of the old listing as they are, and
only the folders that differ are read again: one `scandir` and one `lstat` a file, their files
through the stat cache and the hashing as `Workspace.scan` takes them. The old lines and the new
are then merged in path order into the new listing, byte for byte what a full scan would
write (the tests compare the two).

Nothing is parsed on the kept lines but their path: the old listing has passed its checks
(`needs.checked_listing`) and hashes to the oid the stamp was made for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from hashlib import sha256
from typing import BinaryIO

from .errors import GitModelError
from .hashing import Oid
from .listing import listing_line
from .manifest import Artifact, Reader
from .needs import checked_listing
from .stamps import Stamps
from .workspace import Workspace


@dataclass
class Rescanned:
    """A directory scanned again: its artifact as it is now, and the paths (relative to it, in
    listing order) that differ from the old listing."""

    artifact: Artifact
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)


def scan_again(
    ws: Workspace,
    stamps: Stamps,
    read: Reader,
    relpath: str,
    old: Artifact,
    *,
    store: bool,
    out: BinaryIO | None = None,
) -> Rescanned | None:
    """`rescan` the tracked directory `old` if the stamps allow it (`stamps.take` fingerprinted
    it in this run, a stamp was made for `old.oid`, and at most half its folders changed);
    None when they do not (scan it whole: `Workspace.scan`). With `store`, the caller makes sure
    every object `old` names is in the cache (the stamps' `cached` fact)."""
    split = stamps.reusable(relpath, str(old.oid))
    if split is None or len(split[1]) > len(split[0]):
        return None
    try:
        listing = checked_listing(read, old, ws.state)
    except GitModelError:
        return None
    return rescan(ws, relpath, listing, *split, store=store, out=out)


def rescan(
    ws: Workspace,
    relpath: str,
    listing: bytes,
    unchanged: set[str],
    changed: set[str],
    *,
    store: bool,
    out: BinaryIO | None = None,
) -> Rescanned | None:
    """The directory at `relpath` as the work tree holds it now, given `listing`, the one it
    had, and the prefixes ("" or "a/b/") of its folders with files whose lines of it still hold
    (`unchanged`) and of the others (`changed`); see `Stamps.reusable`. The new listing is
    written to `out` as it is made (never held whole) and hashed. None if it is gone."""
    if not os.path.isdir(ws.root / relpath):
        return None
    kept = {p.encode("utf-8", "surrogateescape") for p in unchanged}
    again = {p.encode("utf-8", "surrogateescape") for p in changed}
    found = sorted(f for prefix in changed for f in ws.files_in(relpath, prefix))  # (few)
    before = _in_folders(listing, again)
    oids: list[Oid] = []
    for start in range(0, len(found), 4096):
        chunk = found[start : start + 4096]
        listed = [before.get(f.rel.encode("utf-8"), (None, b""))[0] for f in chunk]
        oids += ws.hash_paths([(f.path, f.key) for f in chunk], store=store, listed=listed)
        ws.state.flush()
    added: list[str] = []
    modified: list[str] = []
    new = []
    for f, oid in zip(found, oids):
        rel = f.rel.encode("utf-8")
        line = listing_line(f.rel, oid, f.size, f.executable).encode("utf-8")
        was = before.pop(rel, None)
        if was is None:
            added.append(f.rel)
        elif was[1] != line:
            modified.append(f.rel)
        new.append((rel, line))
    gone = list(before)  # files of a changed folder that are no longer there
    writer = _Writer(out)
    files, size = _merge(listing, kept, again, new, gone, writer)
    removed = sorted(rel.decode("utf-8") for rel in gone)
    art = Artifact(relpath, Oid(writer.digest.hexdigest()), size, files)
    # its lines are the old listing's, checked, and lines made here: the next command that
    # reads it back by this oid need not check them again (at a million files, ~2 s)
    ws.state.mark_listing_checked(art.oid)
    return Rescanned(art, added, removed, modified)


class _Writer:
    """The new listing's bytes, hashed and written to `out` (if any) in pieces of the old
    listing's buffer and new lines, never joined whole."""

    def __init__(self, out: BinaryIO | None) -> None:
        self.out = out
        self.digest = sha256()

    def write(self, data: bytes | memoryview) -> None:
        if data:
            self.digest.update(data)
            if self.out is not None:
                self.out.write(data)


def _in_folders(listing: bytes, folders: set[bytes]) -> dict[bytes, tuple[Oid, bytes]]:
    """path -> (oid, line with its newline) of each line of `listing` (checked) whose file is
    directly in one of `folders`. The listing is sorted by path, so the lines under a folder
    are one run of it, found by bisection: only those are read (a million lines, one folder
    changed: a few thousand), the top folder's being the whole listing."""
    out: dict[bytes, tuple[Oid, bytes]] = {}
    make_oid, find, index, end = str.__new__, listing.find, listing.index, len(listing)
    for folder in sorted(folders):
        at = _first_line_from(listing, folder)
        while at < end:
            stop = find(b"\n", at)
            path = listing[index(b"\t", at + 65) + 5 : stop]  # (`_path_of`, inline)
            if not path.startswith(folder):
                break  # (past the run)
            if path.find(b"/", len(folder)) < 0:  # directly in it, not in a folder below
                line = listing[at : stop + 1]
                out[path] = (make_oid(Oid, line[:64].decode("ascii")), line)
            at = stop + 1
    return out


def _first_line_from(listing: bytes, key: bytes) -> int:
    """Where the first line of `listing` (checked, sorted by path) whose path is `key` or sorts
    after it starts (its length if none): a bisection on byte offsets, each probe read at the
    start of the line it falls in. Lines before `lo` sort before `key`, those from `hi` on do
    not; both are line starts."""
    lo, hi = 0, len(listing)
    while lo < hi:
        mid = (lo + hi) // 2
        newline = listing.rfind(b"\n", lo, mid)
        start = lo if newline < 0 else newline + 1  # (no newline in [start, mid))
        stop = listing.find(b"\n", start)  # (so stop >= mid: each probe narrows the range)
        if _path_of(listing, start, stop) < key:
            lo = stop + 1
        else:
            hi = start
    return lo


def _path_of(listing: bytes, at: int, stop: int) -> bytes:
    """The path of the checked line `listing[at:stop]`: a line is `oid<TAB>size<TAB>mode<TAB>
    path`, 64 hex digits, the size up to its tab, a mode of 3 characters, and the path is the
    rest, which may hold tabs of its own. (Written inline in the loops that take every line.)"""
    return listing[listing.index(b"\t", at + 65) + 5 : stop]


def _merge(
    listing: bytes,
    kept: set[bytes],
    again: set[bytes],
    new: list[tuple[bytes, bytes]],
    gone: list[bytes],
    writer: _Writer,
) -> tuple[int, int]:
    """Write the lines of `listing` whose folder is in `kept`, in runs as they lie in its
    buffer, with the `new` lines (path, line; in path order) between them where they sort;
    the paths of lines in a folder neither kept nor `again` (gone since) go to `gone`.
    (files, bytes) of what was written."""
    view = memoryview(listing)
    find, index = listing.find, listing.index
    files = size = 0
    waiting = iter(new)
    upcoming = next(waiting, None)
    run = at = 0  # the run of kept lines not written yet starts at `run`
    end = len(listing)
    while at < end:
        stop = find(b"\n", at)
        path = listing[index(b"\t", at + 65) + 5 : stop]  # (`_path_of`, inline)
        while upcoming is not None and upcoming[0] < path:
            writer.write(view[run:at])
            writer.write(upcoming[1])
            files, size = files + 1, size + int(upcoming[1].split(b"\t", 2)[1])
            run, upcoming = at, next(waiting, None)
        folder = path[: path.rfind(b"/") + 1]
        if folder in kept:
            files, size = files + 1, size + int(listing[at + 65 : index(b"\t", at + 65)])
        else:
            writer.write(view[run:at])
            run = stop + 1
            if folder not in again:
                gone.append(path)
        at = stop + 1
    writer.write(view[run:end])
    while upcoming is not None:
        writer.write(upcoming[1])
        files, size = files + 1, size + int(upcoming[1].split(b"\t", 2)[1])
        upcoming = next(waiting, None)
    return files, size
