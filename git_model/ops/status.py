"""`git model status`: how each artifact in the work tree compares with the manifest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import GitModelError
from ..manifest import Artifact, read_listing
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
    manifest = ctx.manifest()
    read = ctx.reader(None)
    ws = ctx.workspace()
    out = []
    for path in sorted(manifest.artifacts):
        art = manifest.artifacts[path]
        try:
            scanned = ws.scan(path, store=False)
        except GitModelError:
            scanned = None
        entries = read_listing(read, art) if art.is_dir else None
        oids = [e.oid for e in entries] if entries is not None else [art.oid]
        st = ArtifactStatus(path, UNCHANGED, art, in_cache=all(ctx.cache.has(o) for o in oids))
        if scanned is None:
            st.state = MISSING
        else:
            st.current_oid, st.current_size = scanned.artifact.oid, scanned.artifact.size
            if scanned.artifact.oid != art.oid or scanned.artifact.executable != art.executable:
                st.state = MODIFIED
                if entries is not None and scanned.entries is not None:
                    old = {e.relpath: e for e in entries}
                    new = {e.relpath: e for e in scanned.entries}
                    st.added = sorted(new.keys() - old.keys())
                    st.removed = sorted(old.keys() - new.keys())
                    st.modified = sorted(p for p in old.keys() & new.keys() if old[p] != new[p])
            elif not st.in_cache:
                st.state = NOT_IN_CACHE
        out.append(st)
    ws.state.flush()
    return out
