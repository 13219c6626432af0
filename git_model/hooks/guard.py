"""What pre-commit checks before it records: missing artifacts; what came in with a merge."""

from __future__ import annotations

import shlex

from ..errors import GitModelError
from ..listing import listing_oid, listing_path, parse_listing
from ..manifest import Artifact, Manifest, Reader
from ..ops.context import Context
from ..workspace import Workspace


def missing_message(paths: list[str]) -> str:
    shown = " ".join(paths[:5]) + (f" (and {len(paths) - 5} more)" if len(paths) > 5 else "")
    return (
        f"tracked artifact {shown} is missing from the work tree, so this commit cannot record "
        "it; put it back with 'git model checkout', or stop tracking it with "
        f"'git model rm {shlex.quote(paths[0])}'"
    )


def merged_in(ctx: Context, index: Manifest, head: Manifest, ws: Workspace) -> set[str]:
    """Artifacts whose index entry came from the other side of a merge (the work tree still
    holds HEAD's bytes, or nothing): the commit keeps them as the index has them."""
    keep: set[str] = set()
    read = ctx.reader("")
    for path, art in sorted(index.artifacts.items()):
        if art.is_dir:
            art = index.artifacts[path] = _from_listing(read, art)
        ours = head.artifacts.get(path)
        if ours == art:
            continue
        try:
            scanned = ws.scan(path, store=False)
        except GitModelError:
            continue  # not something we can read: recording reports it properly
        if scanned is None or (ours is not None and scanned.artifact.oid == ours.oid):
            keep.add(path)
    return keep


def _from_listing(read: Reader, art: Artifact) -> Artifact:
    """A directory as its staged listing has it: after a listing conflict resolved by hand,
    the listing is the truth and the manifest entry follows it."""
    path = listing_path(art.path)
    data = read(path)
    if data is None or listing_oid(data) == art.oid:
        return art
    entries = parse_listing(data, path)
    return Artifact(art.path, listing_oid(data), sum(e.size for e in entries), len(entries))
