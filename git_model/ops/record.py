"""Recording artifacts: hash what changed, store it, and update the manifest and listings.

Shared by `git model add` (new paths) and the pre-commit hook (every tracked path).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..errors import GitModelError
from ..manifest import Artifact, Entry, Manifest, listing_path
from ..restore import listing
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
) -> Recorded:
    out = Recorded()
    for rel in sorted(set(relpaths)):
        scanned = ws.scan(rel, store=True, listed=_listed(ctx, manifest.artifacts.get(rel)))
        if scanned is None:
            if not allow_missing:
                raise GitModelError(
                    f"{rel} does not exist; create it, or stop tracking it with 'git model rm {rel}'"
                )
            out.missing.append(rel)
            continue
        old = manifest.artifacts.get(rel)
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
    ws.state.flush()
    return out


def _listed(ctx: Context, art: Artifact | None) -> Iterator[Entry] | None:
    """The entries of a tracked directory's current listing: a hint of what its files hold,
    so a file a checkout wrote is hashed, not copied into the cache again (see
    `Workspace.hash_paths`). None when there is no such listing to trust (a hint is checked by
    hashing before it counts, so a wrong one only costs a read)."""
    if art is None or not art.is_dir:
        return None
    try:
        return listing(ctx.reader(None), art)
    except GitModelError:
        return None
