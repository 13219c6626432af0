"""Recording artifacts: hash what changed, store it, and update the manifest and listings.

Shared by `git model add` (new paths) and the pre-commit hook (every tracked path).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..cache import is_executable
from ..errors import GitModelError
from ..hashing import Oid
from ..listing import Entry, listing_path
from ..manifest import Artifact, Manifest
from ..needs import listing
from ..partstore import Hints, missing_parts, store_parts
from ..rescan import scan_again
from ..stamps import Stamps, removal_generation
from ..statecache import StateCache, stat_key
from ..tensors import TensorListing, format_tensors, read_tensors, tensors_oid, tensors_path
from ..workspace import Workspace
from .context import Context


@dataclass
class Recorded:
    changed: list[str] = field(default_factory=list)  # artifact paths whose oid changed
    missing: list[str] = field(default_factory=list)  # tracked paths absent from the work tree
    tracked_files: list[str] = field(default_factory=list)  # git-tracked files written/removed


def record(
    ctx: Context,
    manifest: Manifest,
    relpaths: Iterable[str],
    ws: Workspace,
    *,
    allow_missing: bool = False,
    stamps: Stamps | None = None,
) -> Recorded:
    """Hash, store and list `relpaths` into `manifest`; with `stamps`, stamp each with the oid
    it was found to have (its fingerprint taken before it is read: here, unless the caller
    took it already, as the commit hook does to choose what to record), and use and keep their
    `cached` facts (every object an artifact needs seen in the cache)."""
    out = Recorded()
    # (before the cache is looked at: a removal after this makes the facts set below stale)
    generation = removal_generation(ctx.repo.model_dir) if stamps is not None else None
    for rel in sorted(set(relpaths)):
        if stamps is not None and rel not in stamps.pending:
            stamps.take(rel)
        old = manifest.artifacts.get(rel)
        by_parts = _record_by_parts(ctx, ws, rel, old)
        if by_parts is not None:
            art, data = by_parts
            if ctx.write_file(tensors_path(rel), data):
                out.tracked_files.append(tensors_path(rel))
            if old != art:
                out.changed.append(rel)
            manifest.artifacts[rel] = art
            if stamps is not None:
                stamps.stamp(rel, art.oid)
            continue
        if old is not None and old.layout is not None:  # no longer stored by parts
            with contextlib.suppress(FileNotFoundError):
                (ctx.root / tensors_path(rel)).unlink()
            out.tracked_files.append(tensors_path(rel))
        # every object of the old listing seen in the cache, and nothing removed since: a file
        # the stat cache says still holds what that listing gives needs no look in the cache
        whole = (
            stamps is not None and old is not None and stamps.cached.get(str(old.oid)) == generation
        )
        again = None
        if whole and stamps is not None and old is not None and old.is_dir:  # changed folders
            again = _scan_again(ctx, ws, stamps, rel, old)
        scanned = (
            None
            if again is not None
            else ws.scan(rel, store=True, listed=_listed(ctx, old), listed_cached=whole)
        )
        if again is not None:
            art, written = again
            if written:
                out.tracked_files.append(listing_path(rel))
        elif scanned is None:
            if not allow_missing:
                raise GitModelError(
                    f"{rel} does not exist; create it, or stop tracking it with 'git model rm {rel}'"
                )
            out.missing.append(rel)
            continue
        else:
            art = scanned.artifact
            if scanned.listing is not None:
                if ctx.write_file(listing_path(rel), scanned.listing):
                    out.tracked_files.append(listing_path(rel))
            elif old is not None and old.is_dir:
                with contextlib.suppress(FileNotFoundError):
                    (ctx.root / listing_path(rel)).unlink()
                out.tracked_files.append(listing_path(rel))
        if old != art:
            out.changed.append(rel)
        manifest.artifacts[rel] = art
        if stamps is not None:
            stamps.stamp(rel, art.oid)
            stamps.set_cached({str(art.oid): generation})  # stored: all it needs is cached
    ws.state.flush()
    return out


def _scan_again(
    ctx: Context, ws: Workspace, stamps: Stamps, rel: str, old: Artifact
) -> tuple[Artifact, bool] | None:
    """`rescan.scan_again`, its listing written straight into its file (never held whole):
    (the artifact, whether the file changed). None where the stamps do not allow it."""
    found: list[Artifact] = []

    def fill(f: BinaryIO) -> Oid | None:
        again = scan_again(ws, stamps, ctx.reader(None), rel, old, store=True, out=f)
        if again is None:
            return None
        found.append(again.artifact)
        return again.artifact.oid

    written = ctx.write_stream(listing_path(rel), fill)
    return None if written is None else (found[0], written[1])


def _listed(ctx: Context, art: Artifact | None) -> Iterator[Entry] | None:
    """The entries of a tracked directory's current listing: a hint of what its files hold,
    so a file a checkout wrote is hashed, not copied into the cache again (see
    `Workspace.hash_paths`). None when there is no such listing to trust (a hint is checked by
    hashing before it counts, so a wrong one only costs a read)."""
    if art is None or not art.is_dir:
        return None
    try:
        return listing(ctx.reader(None), art, ctx.state)
    except GitModelError:
        return None


def _record_by_parts(
    ctx: Context, ws: Workspace, rel: str, old: Artifact | None
) -> tuple[Artifact, bytes] | None:
    """A model file git-model recognises (formats/), stored by parts: its artifact and tensor
    listing. None for anything else (a directory, a file of no known format, a header that
    does not parse): the caller keeps it whole. A file the stat cache says still holds what
    the manifest records, with all its parts in the cache, is not read at all."""
    path = ctx.root / rel
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    previous = _previous_parts(ctx, old)
    if previous is not None and old is not None:
        known = ws.state.lookup([str(path)]).get(str(path))
        if StateCache.trusted_key(known, stat_key(st)) == old.oid:
            listing_data, parts = previous
            if not missing_parts(ctx.cache, parts):
                exe = is_executable(st)
                return Artifact(
                    rel, old.oid, old.size, None, exe, old.layout, old.parts
                ), listing_data
    from ..formats import FormatError, recognise

    try:
        with open(path, "rb") as f:
            layout = recognise(f, st.st_size)
    except FormatError:
        return None
    except OSError as e:
        raise GitModelError(f"cannot read {rel}: {e.strerror}") from None
    hints: Hints = {}
    if previous is not None:
        hints = {(p.offset, p.length): p.oid for p in previous[1].parts}
    parts, oid = store_parts(ctx.cache, Path(path), layout, hints)
    ws.state.record(path, st, oid)
    if ws.progress:
        ws.progress(st.st_size)
    data = format_tensors(parts)
    exe = is_executable(st)
    return Artifact(rel, oid, st.st_size, None, exe, layout.format, tensors_oid(data)), data


def _previous_parts(ctx: Context, old: Artifact | None) -> tuple[bytes, TensorListing] | None:
    """The tensor listing `old` was recorded with (its bytes and lines), if it can be read."""
    if old is None or old.layout is None:
        return None
    try:
        parts = read_tensors(ctx.reader(None), old)
    except GitModelError:
        return None
    return format_tensors(parts), parts
