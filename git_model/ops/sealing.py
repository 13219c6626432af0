"""Sealing the index for the commit hook's fast path (hooks/seal.py checks a seal).

A seal says: the manifest in the index is exactly what the next commit's pre-commit would
make of it. It holds the index blobs of the manifest, the listings and every params and code
component (all the inputs of the model versions), the oid of every artifact (each stamped with
that oid: stamps.py), and the versions record the commit gets. Two writers make one:

- pre-commit, after its full work (hooks/commit.py);
- `git model add`, after it staged the manifest, when the versions it wrote are the ones the
  index gives (params and code staged as they are in the work tree). So the commit right after
  an add checks the seal instead of parsing the manifest and opening the stat cache again.
"""

from __future__ import annotations

import os
from typing import Any

from .. import notes
from ..git import Repo, operation_in_progress, run_git
from ..listing import listing_path
from ..manifest import MANIFEST_PATH, Manifest
from ..stamps import Stamps
from ..tensors import tensors_path
from ..versions import INPUTS_RECIPE, RECIPE, all_inputs, refresh_versions
from .context import Context


def version_inputs(manifest: Manifest) -> list[str]:
    """Index files the manifest and its versions depend on: it, listings, tensor listings,
    params and code."""
    paths = {MANIFEST_PATH}
    paths |= {listing_path(p) for p, a in manifest.artifacts.items() if a.is_dir}
    paths |= {tensors_path(p) for p, a in manifest.artifacts.items() if a.layout is not None}
    for model in manifest.models.values():
        paths |= set(model.params) | set(model.code)
    return sorted(paths)


def versions_record_of(
    models: dict[str, str], inputs: dict[str, str] | None = None
) -> notes.Record | None:
    """The record of these versions and input hashes each commit gets in its note (None when
    there are no models; hooks/versionnote.py)."""
    if not models:
        return None
    record: notes.Record = {
        "format": notes.FORMAT,
        "type": "versions",
        "recipe": RECIPE,
        "time": notes.now(),
        "models": models,
    }
    if inputs:
        record["inputs_recipe"] = INPUTS_RECIPE
        record["inputs"] = inputs
    return record


def index_blobs(repo: Repo, paths: list[str]) -> dict[str, str]:
    """path -> blob id in the index git is using (absent paths left out)."""
    out = run_git(["ls-files", "-s", "-z", "--", *paths], cwd=repo.root).stdout
    blobs = {}
    for item in out.decode("utf-8", "surrogateescape").split("\0"):
        meta, _, path = item.partition("\t")
        if path:
            blobs[path] = meta.split()[1]
    return blobs


def make_seal(
    repo: Repo, stamps: Stamps, manifest: Manifest, inputs: dict[str, str] | None
) -> dict[str, Any] | None:
    """The seal for `manifest` as it stands in the index; None when an artifact has no stamp
    of the oid the manifest gives (the next commit then takes the full path). `inputs`: each
    model's input hash, as the note records it."""
    artifacts = {p: str(a.oid) for p, a in manifest.artifacts.items()}
    stamped = {p: s[1] for p, s in stamps.artifacts.items() if isinstance(s, tuple) and s[1:]}
    if stamped != artifacts:
        return None
    models = {name: str(m.version) for name, m in sorted(manifest.models.items())}
    record = versions_record_of(models, inputs)
    return {
        "artifacts": artifacts,
        "index": index_blobs(repo, version_inputs(manifest)),
        "paths": version_inputs(manifest),
        # the record's line as the note will hold it, and the time to replace in it: the
        # hook writes it without importing json
        "note": None if record is None else (notes.encode(record), record["time"]),
    }


def seal_after_add(ctx: Context, manifest: Manifest, stamps: Stamps) -> None:
    """After `git model add` staged `manifest`: seal it when the next commit would commit it
    as it is; else drop the seal an earlier commit left (the index moved on anyway)."""
    stamps.keep_only(set(manifest.artifacts))
    seal = None
    if "GIT_INDEX_FILE" not in os.environ and not operation_in_progress(ctx.repo.git_dir):
        check = manifest.copy()
        read = ctx.reader("")  # as pre-commit computes them: from the index
        refresh_versions(check, read)
        if check == manifest:
            seal = make_seal(ctx.repo, stamps, manifest, all_inputs(check, read))
    stamps.save(keep=set(manifest.artifacts), seal=seal, reseal=True)
