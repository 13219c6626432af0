"""`git model status`: how each artifact in the work tree compares with the manifest.

A tracked directory's listing and the one its files give now are compared line by line, both
in path order, so no entry of either is held (only the names that differ are kept).

On the way, status stamps what it found (stamps.py): each artifact's fingerprint with the oid
it has, which artifacts' objects are all in the cache, and, when every artifact is unchanged,
the whole answer with the fingerprint of the manifest and listings it was read from. The next
`git model status` gives that answer from one pass of `lstat`s when nothing moved
(fast_status.py), before the CLI is even imported.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..listing import Entry, iter_listing, listing_path
from ..manifest import MANIFEST_PATH, Artifact
from ..needs import checked_listing
from ..partstore import missing_parts
from ..rescan import scan_again
from ..stamps import Stamps, files_fingerprint, now_ns, removal_generation
from ..tensors import read_tensors
from .context import Context

UNCHANGED, MODIFIED, MISSING, NOT_IN_CACHE = "unchanged", "modified", "missing", "not in cache"


@dataclass
class ArtifactStatus:
    path: str
    state: str
    recorded: Artifact
    current_oid: str | None = None
    current_size: int | None = None
    in_cache: bool = True
    added: list[str] = field(default_factory=list)  # directory files, relative to the directory
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        is_dir = self.recorded.is_dir  # the directory-only fields are null for a file
        return {
            "path": self.path,
            "state": self.state,
            "oid": self.recorded.oid,
            "size": self.recorded.size,
            "current_oid": self.current_oid,
            "current_size": self.current_size,
            "in_cache": self.in_cache,
            "files": self.recorded.files if is_dir else None,
            "added": self.added if is_dir else None,
            "removed": self.removed if is_dir else None,
            "modified": self.modified if is_dir else None,
        }


def status(ctx: Context) -> list[ArtifactStatus]:
    stamps = Stamps(ctx.repo.git_dir, ctx.root)
    generation = removal_generation(ctx.repo.model_dir)  # before the cache is looked at
    taken = now_ns()
    listings = sorted(listing_path(p) for p, a in ctx.manifest().artifacts.items() if a.is_dir)
    inputs = files_fingerprint(ctx.root, [MANIFEST_PATH, *listings])  # before they are read
    manifest = ctx.manifest()
    read = ctx.reader(None)
    ws = ctx.workspace()
    out = []
    for path in sorted(manifest.artifacts):
        art = manifest.artifacts[path]
        # as stamped for this oid (the watcher's word, or a walk that takes the fingerprint
        # `stamp` keeps either way): nothing to read. (None: missing. A file it cannot track,
        # such as a name that is not UTF-8 or a link, is said in one line, as add and diff say
        # it: not reported as missing, which would advise a checkout over it)
        same = stamps.unchanged(path, str(art.oid))
        again = None
        if not same and art.is_dir:
            again = scan_again(ws, stamps, read, path, art, store=False)
        scanned = None if same or again is not None else ws.scan(path, store=False)
        # (checked once per clone: the stat cache remembers a listing's oid once its lines passed)
        recorded = checked_listing(read, art, ctx.state) if art.is_dir else None
        if recorded is not None and not ctx.holds(listing_path(path), recorded):
            inputs = None  # found in the index or HEAD: not an answer to remember
        if stamps.cached.get(str(art.oid)) == generation:
            in_cache = True  # seen whole in the cache, and nothing has left it since
        elif recorded is not None:
            has = ctx.cache.has
            in_cache = all(has(e.oid) for e in iter_listing(recorded, "", checked=True))
        elif art.layout is not None:  # stored by parts: every part there
            in_cache = not missing_parts(ctx.cache, read_tensors(read, art))
        else:
            in_cache = ctx.cache.has(art.oid)
        if in_cache:
            stamps.set_cached({str(art.oid): generation})
        st = ArtifactStatus(path, UNCHANGED, art, in_cache=in_cache)
        if same:
            st.current_oid, st.current_size = art.oid, art.size
            stamps.stamp(path, art.oid, folders=False)
            if not st.in_cache:
                st.state = NOT_IN_CACHE
        elif again is not None:  # only the folders that changed were read: they say what changed
            now = again.artifact
            st.current_oid, st.current_size = now.oid, now.size
            stamps.stamp(path, now.oid, folders=now.oid == art.oid)
            if now.oid != art.oid:
                st.state = MODIFIED
                st.added, st.removed, st.modified = again.added, again.removed, again.modified
            elif not st.in_cache:
                st.state = NOT_IN_CACHE
        elif scanned is None:
            st.state = MISSING
        else:
            # (the folders of a listing that is kept: the recorded one, not a changed one's)
            stamps.stamp(path, scanned.artifact.oid, folders=scanned.artifact.oid == art.oid)
            st.current_oid, st.current_size = scanned.artifact.oid, scanned.artifact.size
            if scanned.artifact.oid != art.oid or scanned.artifact.executable != art.executable:
                st.state = MODIFIED
                if recorded is not None and scanned.listing is not None:
                    old = iter_listing(recorded, listing_path(path), checked=True)
                    new = iter_listing(scanned.listing, "the work tree", checked=True)
                    for relpath, before, after in _changes(old, new):
                        if before is None:
                            st.added.append(relpath)
                        elif after is None:
                            st.removed.append(relpath)
                        else:
                            st.modified.append(relpath)
            elif not st.in_cache:
                st.state = NOT_IN_CACHE
        out.append(st)
    ws.state.flush()
    answer = None
    if inputs is not None and all(st.state == UNCHANGED for st in out):
        answer = {
            "inputs": (inputs, None, taken),
            "listings": listings,
            "rows": [_row(st.recorded) for st in out],
        }
    stamps.set_status(answer)
    oids = [str(art.oid) for art in manifest.artifacts.values()]
    stamps.save(keep=set(stamps.artifacts), reseal=False, recorded=oids)
    return out


def _row(art: Artifact) -> tuple[str, str, int, int | None, bool, bool]:
    """What fast_status needs of an unchanged artifact to print it as status does."""
    return (art.path, str(art.oid), art.size, art.files, art.executable, art.is_dir)


def _changes(
    old: Iterator[Entry], new: Iterator[Entry]
) -> Iterator[tuple[str, Entry | None, Entry | None]]:
    """(path, old entry, new entry) for every file that differs between two listings, each
    in path order: None where a side does not have the file."""
    a, b = next(old, None), next(new, None)
    while a is not None or b is not None:
        if a is not None and (b is None or a.relpath < b.relpath):
            yield a.relpath, a, None
            a = next(old, None)
        elif b is not None and (a is None or b.relpath < a.relpath):
            yield b.relpath, None, b
            b = next(new, None)
        elif a is not None and b is not None:
            if a != b:
                yield a.relpath, a, b
            a, b = next(old, None), next(new, None)
