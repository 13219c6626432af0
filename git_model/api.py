"""Reading artifacts from Python: the serving side of the API.

`open_artifact("model.npz", rev="v1")` returns a binary file with the artifact's bytes at that
revision, verified against their oid before the first byte is handed over. It works where no
git binary is installed (see revreader), so a serving image can load "the model at tag prod".
"""

from __future__ import annotations

import os
from typing import BinaryIO

from .cache import Cache
from .errors import CorruptObject, GitModelError, MissingObject
from .hashing import Oid
from .listing import read_listing
from .manifest import read_manifest
from .partstore import open_rebuilt
from .paths import check_relpath
from .revreader import RevisionFiles, dulwich_registry_tags, git_available, open_reader
from .tensors import TensorListing, read_tensors


def locate(files: RevisionFiles, path: str) -> tuple[Oid, TensorListing | None]:
    """The oid of the file `path` (an artifact, or a file inside a tracked directory), and
    its parts when it is stored by parts (see partstore.py)."""
    rel = check_relpath(path.replace(os.sep, "/").strip("/"))
    manifest = read_manifest(files.read)
    art = manifest.artifact_for(rel)
    if art is None:
        raise GitModelError(
            f"{rel} is not a tracked artifact at {files.commit[:12]}; "
            "'git model status' lists the artifacts"
        )
    if not art.is_dir:
        return art.oid, read_tensors(files.read, art) if art.layout is not None else None
    if rel == art.path:
        raise GitModelError(f"{rel} is a directory; open one of its files, e.g. {rel}/<file>")
    inner = rel[len(art.path) + 1 :]
    for entry in read_listing(files.read, art):
        if entry.relpath == inner:
            return entry.oid, None
    raise GitModelError(f"{rel} is not in tracked directory {art.path} at {files.commit[:12]}")


def resolve(rev: str, repo: str | os.PathLike[str] = ".") -> str:
    """A revision as `open_reader` takes it: registry names (`NAME@prod`, `NAME@v1.2.0`,
    `NAME#prod`) become their commit, with or without a git binary."""
    from .ops.registry import build_registry, resolve_shortcut
    from .registry_tags import SHORTCUT_RE

    if not SHORTCUT_RE.fullmatch(rev):
        return rev
    if git_available():
        from .ops.context import Context
        from .ops.registry import resolve_model_rev

        with Context.open(repo, require_init=False) as ctx:
            return resolve_model_rev(ctx, rev)[0]
    found = resolve_shortcut(build_registry(dulwich_registry_tags(repo)), rev)
    return found[0] if found else rev


def open_artifact(path: str, rev: str = "HEAD", repo: str | os.PathLike[str] = ".") -> BinaryIO:
    files = open_reader(repo, resolve(rev, repo))
    try:
        oid, parts = locate(files, path)
    finally:
        if callable(files.close):
            files.close()
    cache = Cache(files.common_dir / "model")
    if parts is not None and not cache.has(oid):
        return open_rebuilt(cache, parts, oid, path)
    if not cache.has(oid):
        raise MissingObject(
            f"{path} at {rev} ({oid.short}) is not in the local cache; run 'git model pull'"
        )
    if not cache.verify_object(oid):
        cache.quarantine(oid)
        raise CorruptObject(
            f"cache object {oid.short} for {path} is corrupt and was quarantined; "
            "run 'git model pull' to get a good copy"
        )
    return cache.open(oid)
