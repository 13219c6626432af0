"""`git model mv` and `git model rename`: new names for what is tracked, with nothing lost.

mv moves an artifact (a file or a directory) in the work tree and renames it everywhere
git-model keeps it: its manifest entry (the same oid and size), its directory listing, the
models that have it (with its kind), and `.gitignore`; all of it staged, like `git mv`. A
params or code component (a file git keeps) is moved with `git mv` and renamed in its models.
The bytes are not read: a file's stat cache record moves with it (a rename changes only its
ctime), so the next commit does not hash it again; a directory's files are hashed by that
commit as for any artifact whose stat is new.

rename gives a model a new name in the manifest (and in `default_model` when it is the
repository's default). Its versions keep their hashes (the recipe has no name in it); notes
and registry tags made before keep the old name.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from pathlib import Path

from ..config import CONFIG_PATH
from ..errors import GitModelError, UsageError
from ..gitignore import ensure_ignored, remove_ignored
from ..listing import listing_path
from ..manifest import KINDS, MANIFEST_PATH, Manifest
from ..paths import GITMODEL_DIR, is_within, to_relpath
from ..registry_tags import check_name
from ..statecache import StateCache, stat_key
from ..tensors import tensors_path
from ..termtext import quote_path as q
from ..termtext import visible
from ..versions import refresh_versions
from .add import DEFAULT_MODEL_COMMENT
from .context import Context


def mv(ctx: Context, source: str, destination: str) -> tuple[str, str]:
    """Move a tracked artifact or a params/code component; (old path, new path)."""
    src = to_relpath(ctx.root, source)
    dst = to_relpath(ctx.root, destination)
    with ctx.lock("git model mv"):
        manifest = ctx.manifest()
        art = manifest.artifacts.get(src)
        in_models = any(src in getattr(m, k) for m in manifest.models.values() for k in KINDS)
        if art is None and not in_models:
            raise GitModelError(
                f"{q(src)} is not tracked by git-model ('git model status' lists what is); "
                "for other files use git mv"
            )
        target = ctx.root / dst
        into = destination.endswith(("/", os.sep)) or (
            target.is_dir() and not target.is_symlink() and dst not in manifest.artifacts
        )
        if into:  # into a directory, as mv does (one that ends with / is made if need be)
            dst = f"{dst}/{os.path.basename(src)}"
        _check_destination(ctx, manifest, src, dst)
        if not os.path.lexists(ctx.root / src):
            raise GitModelError(
                f"{q(src)} is not in the work tree; put it back first "
                f"('git model checkout -- {q(src)}', or 'git checkout -- {q(src)}')"
            )
        (ctx.root / dst).parent.mkdir(parents=True, exist_ok=True)
        if art is None:
            ctx.repo.git("mv", "--", src, dst)  # a params or code file: git keeps it
            staged = [MANIFEST_PATH]
        else:
            before = os.lstat(ctx.root / src)
            os.rename(ctx.root / src, ctx.root / dst)
            if not art.is_dir:
                _carry_stat_record(ctx, src, dst, before)
            del manifest.artifacts[src]
            manifest.artifacts[dst] = replace(art, path=dst)
            staged = [MANIFEST_PATH, ".gitignore"]
            if art.is_dir or art.layout is not None:
                listed = listing_path if art.is_dir else tensors_path
                old, new = listed(src), listed(dst)
                ctx.write_file(new, (ctx.root / old).read_bytes())
                with contextlib.suppress(FileNotFoundError):
                    (ctx.root / old).unlink()
                staged += [old, new]
            remove_ignored(ctx.root, [src])
            ensure_ignored(ctx.root, [dst])
        for model in manifest.models.values():
            for kind in KINDS:
                paths = getattr(model, kind)
                if src in paths:
                    setattr(model, kind, sorted({*paths, dst} - {src}))
        refresh_versions(manifest, ctx.reader(None))
        ctx.write_manifest(manifest)
        ctx.repo.git("add", "-A", "--", *staged)
    return src, dst


def _carry_stat_record(ctx: Context, src: str, dst: str, before: os.stat_result) -> None:
    """A renamed file keeps its bytes, inode and mtime (only its ctime changes): its stat
    cache record moves with it, so the next commit does not hash it again."""
    old, new = str(ctx.root / src), str(ctx.root / dst)
    entry = ctx.state.lookup([old]).get(old)
    oid = StateCache.trusted(entry, before)
    after = os.lstat(new)
    if entry is None or oid is None or stat_key(after)[:3] != stat_key(before)[:3]:
        return
    ctx.state.record(Path(new), after, oid, hashed_ns=entry[2])
    ctx.state.flush()


def _check_destination(ctx: Context, manifest: Manifest, src: str, dst: str) -> None:
    if dst == src:
        raise UsageError(f"{q(src)} is already there")
    if is_within(dst, GITMODEL_DIR):
        raise UsageError(f"{q(dst)} is inside git-model's own metadata; choose another place")
    if dst in manifest.artifacts:
        raise GitModelError(
            f"{q(dst)} is a tracked artifact; 'git model rm {q(dst)}' first to replace it"
        )
    if is_within(dst, src):
        raise UsageError(f"cannot move {q(src)} into itself")
    for other in manifest.artifacts:
        if other != src and (is_within(dst, other) or is_within(other, dst)):
            raise GitModelError(
                f"{q(dst)} overlaps the tracked artifact {q(other)}; choose another place"
            )
    if os.path.lexists(ctx.root / dst):
        raise GitModelError(f"{q(dst)} already exists; move it away or choose another name")
    if ctx.repo.ls_files(dst):
        raise GitModelError(f"git tracks {q(dst)}; 'git rm' it first or choose another name")


def rename(ctx: Context, old: str, new: str) -> bool:
    """Rename model `old` to `new`; True if it was the repository's default model."""
    check_name(new)
    with ctx.lock("git model rename"):
        manifest = ctx.manifest()
        if old not in manifest.models:
            known = ", ".join(sorted(manifest.models)) or "none yet"
            raise GitModelError(f"there is no model {visible(old)} (models: {visible(known)})")
        if new in manifest.models:
            raise GitModelError(f"model {visible(new)} exists already; choose another name")
        manifest.models[new] = replace(manifest.models.pop(old), name=new)
        staged = [MANIFEST_PATH]
        default = ctx.settings.team.get("default_model") == old
        if default:
            ctx.settings.set_team_value("default_model", new, DEFAULT_MODEL_COMMENT)
            staged.append(CONFIG_PATH)
        refresh_versions(manifest, ctx.reader(None))
        ctx.write_manifest(manifest)
        ctx.repo.add(staged)
    return default
