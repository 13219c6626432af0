"""Runs not committed yet: `git model run`'s run cache before the commit.

The notes are the run cache once outputs are committed (trained.py). Between a run and its
commit nothing in git knows them, so a second `git model run` of the same inputs (after an
experiment overwrote the weights, or a round trip through other parameters) would train
again. Each successful run therefore leaves a record here, in the repository's model
directory (shared by its worktrees):

    <git-common-dir>/model/runs/<input hash>/run.json       model, inputs, outputs, time
        .../.gitmodel/manifest.toml                          the manifest after the run
        .../.gitmodel/dirs/…, .gitmodel/tensors/…            listings of the outputs

laid out like a work tree, so that a work-tree reader over the record gives the restore what a
commit would: the outputs' entries and listings. Their bytes are the cache's (restore verifies
every one; a listing is checked against its entry), so a damaged record restores nothing
unverified. A record is written whole in a `.tmp-` folder beside it, then renamed into place;
the newest KEEP are kept. Local state, trusted as the cache is: no one else writes it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from pathlib import Path

from .. import pending
from ..errors import GitModelError
from ..hashing import is_oid
from ..listing import listing_path
from ..manifest import MANIFEST_PATH, parse_manifest, worktree_reader
from ..tensors import tensors_path
from .context import Context
from .trained import Trained

KEEP = 50  # records kept, newest first (each holds a manifest and its outputs' listings)
RECORD = "run.json"
TMP = ".tmp-"  # a record being written (renamed to its input hash when whole)


def _runs(ctx: Context) -> Path:
    return ctx.repo.model_dir / "runs"


def save(ctx: Context, model: str, inputs: str, outputs: list[str]) -> None:
    """Record that `model`'s `inputs` gave `outputs`, as the work tree's manifest now says."""
    manifest = ctx.manifest(None)
    read = ctx.reader(None)
    runs = _runs(ctx)
    runs.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=TMP, dir=runs))
    try:
        files = {MANIFEST_PATH: read(MANIFEST_PATH)}
        for path in outputs:
            art = manifest.artifacts[path]
            if art.is_dir:
                files[listing_path(path)] = read(listing_path(path))
            if art.parts is not None:
                files[tensors_path(path)] = read(tensors_path(path))
        for rel, data in files.items():
            if data is not None:
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_bytes(data)
        doc = {"format": 1, "model": model, "inputs": inputs, "outputs": outputs}
        doc["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        (tmp / RECORD).write_text(json.dumps(doc, sort_keys=True) + "\n", "utf-8")
        with ctx.lock("git model run"):
            final = runs / inputs
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
            _prune(runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def find(ctx: Context, model: str, inputs: str) -> Trained | None:
    """The outputs an uncommitted run of `model` on `inputs` recorded (`commit` empty)."""
    if not is_oid(inputs):
        return None
    where = _runs(ctx) / inputs
    try:
        doc = json.loads((where / RECORD).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("model") != model or doc.get("inputs") != inputs:
        return None
    read = worktree_reader(where)
    try:
        manifest = parse_manifest(read(MANIFEST_PATH) or b"", f"the record of a run in {where}")
    except GitModelError:
        return None
    there = manifest.models.get(model)
    if there is None or not there.weights:
        return None
    if any(p not in manifest.artifacts for p in there.weights):
        return None
    version = "" if there.version is None else str(there.version)
    waiting = pending.for_commit(ctx.repo.git_dir, {model: version}) if version else []
    return Trained("", model, version, manifest, "an earlier run", waiting, read)


def records(ctx: Context) -> list[Path]:
    """The folders of the runs recorded here (whole ones: not those being written)."""
    try:
        return sorted(p for p in _runs(ctx).iterdir() if is_oid(p.name) and p.is_dir())
    except OSError:
        return []


def _prune(runs: Path) -> None:
    """The newest KEEP records stay, and records half-written by a run killed an hour ago go."""
    found = sorted(runs.iterdir(), key=_mtime, reverse=True)
    stale = time.time() - 3600
    for old in found:
        if old.name.startswith(TMP) and _mtime(old) < stale:
            shutil.rmtree(old, ignore_errors=True)
    for old in [r for r in found if not r.name.startswith(TMP)][KEEP:]:
        shutil.rmtree(old, ignore_errors=True)


def _mtime(path: Path) -> float:
    with contextlib.suppress(OSError):
        return path.stat().st_mtime
    return 0.0
