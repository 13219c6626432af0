"""`git model rm` and `git model verify`: stop tracking a path; check every cache object."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GitModelError
from ..gitignore import remove_ignored
from ..hashing import Oid
from ..listing import listing_path
from ..manifest import KINDS, MANIFEST_PATH
from ..paths import to_relpath
from ..tensors import tensors_path
from ..versions import refresh_versions
from ..workspace import default_jobs
from .context import Context


def rm(ctx: Context, paths: list[str]) -> list[str]:
    """Stop tracking artifacts (or model components); the files stay where they are."""
    rels = [to_relpath(ctx.root, p) for p in paths]
    with ctx.lock("git model rm"):
        manifest = ctx.manifest()
        staged = [MANIFEST_PATH]
        for rel in rels:
            in_models = any(rel in getattr(m, k) for m in manifest.models.values() for k in KINDS)
            art = manifest.artifacts.pop(rel, None)
            if art is None and not in_models:
                raise GitModelError(
                    f"{rel} is not tracked by git-model; 'git model status' lists what is"
                )
            for m in manifest.models.values():
                for kind in KINDS:
                    setattr(m, kind, [p for p in getattr(m, kind) if p != rel])
            if art is not None and (art.is_dir or art.layout is not None):
                listed = listing_path(rel) if art.is_dir else tensors_path(rel)
                with contextlib.suppress(FileNotFoundError):
                    (ctx.root / listed).unlink()
                staged.append(listed)
        for name, m in list(manifest.models.items()):
            if not any(True for _ in m.components()) and not m.hyperparameters:
                del manifest.models[name]  # nothing left in it: no version to compute
        if remove_ignored(ctx.root, rels):
            staged.append(".gitignore")
        refresh_versions(manifest, ctx.reader(None))
        ctx.write_manifest(manifest)
        ctx.repo.git("add", "-A", "--", *staged)
    return rels


@dataclass
class VerifyResult:
    checked: int = 0
    corrupt: list[Oid] = field(default_factory=list)
    quarantine: Path | None = None


def verify(ctx: Context, jobs: int = 0) -> VerifyResult:
    """Re-hash every cache object; move corrupt ones to the quarantine folder."""
    result = VerifyResult()
    oids = list(ctx.cache.iter_oids())
    with ThreadPoolExecutor(jobs or default_jobs()) as pool:
        for oid, ok in zip(oids, pool.map(ctx.cache.verify_object, oids)):
            result.checked += 1
            if not ok:
                result.corrupt.append(oid)
    for oid in result.corrupt:
        result.quarantine = ctx.cache.quarantine(oid).parent
    return result
