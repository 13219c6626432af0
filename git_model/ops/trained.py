"""Has this model already been trained from these inputs? (`git model run`'s run cache.)

The versions record of each commit's note carries the input hash of every model (versions.py,
input recipe 1). ONE `git log` over every local branch, remote-tracking branch and tag (and
HEAD), with the local notes and the fetched ones (`refs/notes/remotes/*/model`), yields the
commits whose note claims the input hash wanted, newest first. A note is only a claim: before
anything is reused, the input hash is computed again from that commit's own manifest and files,
and a note that does not hold (forged, or stale after a rewrite) is reported and skipped.

Commits whose note says nothing about this model's inputs (made before input hashes were
recorded, or whose note was lost) are then checked from their manifests, each distinct manifest
parsed once, newest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import notes
from ..errors import GitModelError
from ..hashing import Oid, is_oid
from ..manifest import MANIFEST_PATH, Manifest, Reader, parse_manifest
from ..versions import INPUTS_RECIPE, model_inputs
from . import metrics as metrics_ops
from .context import Context
from .history import version_metrics

REFS = ("--branches", "--remotes", "--tags")
FETCHED_NOTES = "refs/notes/remotes/*/model"


@dataclass
class Trained:
    """A commit that holds a version of `model` trained from the inputs looked for."""

    commit: str
    model: str
    version: str
    manifest: Manifest
    name: str = ""  # how people call the commit: "main~2", "origin/exp", a tag
    records: list[notes.Record] = field(default_factory=list)  # its note
    read: Reader | None = None  # an uncommitted run's record (local_runs.py; commit is "")


@dataclass
class Search:
    found: Trained | None = None
    warnings: list[str] = field(default_factory=list)
    commits: int = 0  # commits looked at


def find_trained(ctx: Context, model: str, inputs: str) -> Search:
    """The newest commit of any ref whose `model` verifiably has input hash `inputs`."""
    result = Search()
    revs = [*REFS, *(["HEAD"] if ctx.repo.head() else [])]
    out = ctx.repo.git(
        "log",
        f"--notes={notes.NOTES_REF}",
        f"--notes={FETCHED_NOTES}",
        "--format=%x00%H%x01%N",
        *revs,
        "--",
        check=False,
    ).decode("utf-8", errors="replace")
    claimed: list[str] = []
    silent: list[str] = []
    records: dict[str, list[notes.Record]] = {}
    for chunk in out.split("\0")[1:]:
        sha, _, note = chunk.partition("\x01")
        sha = sha.strip()
        result.commits += 1
        if '"inputs"' in note and inputs not in note:
            continue  # claims other inputs (read without parsing: 1,000 notes in ~1 ms)
        records[sha] = notes.parse_note(note)
        claims = _claims(records[sha], model)
        if inputs in claims:
            claimed.append(sha)
        elif not claims:
            silent.append(sha)
    checker = _Checker(ctx, model, inputs)
    for sha in claimed:
        trained = checker.check(sha)
        if trained is not None:
            result.found = trained
            break
        if checker.actual == inputs[:12]:
            continue  # true, but no outputs were recorded with those inputs there
        result.warnings.append(
            f"the note on {sha[:12]} claims model {model} was trained from inputs "
            f"{inputs[:12]} but that commit's manifest and files give "
            f"{checker.actual or 'no such model'}; not reused (a forged or stale note)"
        )
    else:
        for sha in silent:
            result.found = checker.check(sha)
            if result.found is not None:
                break
    if result.found is not None:
        result.found.name = describe(ctx, result.found.commit)
        result.found.records = records.get(result.found.commit, [])
    return result


def _claims(records: list[notes.Record], model: str) -> set[str]:
    """The input hashes versions records claim for `model` (a merged note, or an amended
    commit's copied one, may hold several: each is checked against the commit)."""
    out = set()
    for r in notes.latest(records, "versions"):
        got = r.get("inputs")
        if r.get("inputs_recipe") != INPUTS_RECIPE or not isinstance(got, dict):
            continue
        value = got.get(model)
        if isinstance(value, str) and is_oid(value):
            out.add(value)
    return out


class _Checker:
    """Computes a commit's input hash for one model from the commit itself."""

    def __init__(self, ctx: Context, model: str, inputs: str) -> None:
        self.ctx = ctx
        self.model = model
        self.inputs = inputs
        self.cat = ctx.repo.cat_file()
        self.parsed: dict[bytes, Manifest | None] = {}
        self.actual: str | None = None  # the last commit's computed input hash, for messages

    def check(self, sha: str) -> Trained | None:
        self.actual = None
        data = self.cat.read(f"{sha}:{MANIFEST_PATH}")
        if data is None:
            return None
        if data not in self.parsed:
            try:
                self.parsed[data] = parse_manifest(data, f"{MANIFEST_PATH} at {sha[:12]}")
            except GitModelError:
                self.parsed[data] = None
        manifest = self.parsed[data]
        if manifest is None or self.model not in manifest.models:
            return None
        model = manifest.models[self.model]
        actual = str(model_inputs(model, manifest, self.ctx.reader(sha)))
        self.actual = actual[:12]
        if actual != self.inputs or not model.weights:
            return None
        if any(p not in manifest.artifacts for p in model.weights):
            return None  # outputs not recorded at that commit: nothing to restore
        version = model.version if model.version is not None else ""
        return Trained(sha, self.model, str(version), manifest)


def describe(ctx: Context, commit: str) -> str:
    """A name people know the commit by (`main~2`, `remotes/origin/exp`, `v1^0`)."""
    out = ctx.repo.git("name-rev", "--name-only", "--no-undefined", commit, check=False)
    name = out.decode("utf-8", errors="replace").strip()
    return name if name and "undefined" not in name else commit[:12]


def metrics_of(ctx: Context, trained: Trained) -> dict[str, Any]:
    """The latest metrics recorded for the version that commit holds: on its own note, else
    on the commits before it that hold the same version (as `show` finds them)."""
    own = metrics_ops.merged(trained.records, trained.model)
    if own or not trained.version or not trained.commit:
        return {k: v.value for k, v in own.items()}
    found = version_metrics(ctx, trained.commit, {trained.model: Oid(trained.version)})
    return {k: v.value for k, v in found.get(trained.model, {}).items()}
