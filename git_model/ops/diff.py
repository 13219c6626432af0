"""`git model diff`: for each model, did its version change, and why.

Two states are compared (two commits, or a commit and the work tree). For every model the answer
names each reason its version moved: a weights file with its size delta, the data files added,
removed and modified (from the directory listings git tracks, so no cache or remote is needed),
each hyperparameter that changed (inline ones and keys inside YAML/JSON/TOML params files), the
code files that changed; and, beside the reasons, every metric with old, new and delta. Tracked
artifacts that belong to no model are reported too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from .. import notes
from ..errors import UsageError
from ..hyperparams import flatten
from ..listing import Entry, listing_path, parse_listing
from ..manifest import ARTIFACT_KINDS, KINDS, Model
from ..versions import MISSING, canonical_json
from . import metrics as metrics_ops
from .context import Context
from .history import version_metrics
from .metrics import MetricValue
from .snapshot import (
    INLINE,
    Snapshot,
    at_commit,
    empty,
    note_disagreements,
    stale_versions,
    work_tree,
)
from .tensordiff import TensorDiff
from .tensordiff import compare as compare_tensors

ADDED, REMOVED, MODIFIED, MISSING_NOW = "added", "removed", "modified", "missing"
CHANGED, UNCHANGED = "changed", "unchanged"


@dataclass
class ComponentChange:
    kind: str | None  # None for an artifact that belongs to no model
    path: str
    status: str  # added | removed (to/from the model or manifest), modified, missing
    old_oid: str | None = None
    new_oid: str | None = None
    old_size: int | None = None
    new_size: int | None = None
    files: dict[str, list[str]] | None = None  # directories: added / removed / modified
    tensors: TensorDiff | None = None  # model files of a known format (see tensordiff.py)

    @property
    def size_delta(self) -> int | None:
        if self.old_size is None or self.new_size is None:
            return None
        return self.new_size - self.old_size

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.path,
            "status": self.status,
            "old_oid": self.old_oid,
            "new_oid": self.new_oid,
            "old_size": self.old_size,
            "new_size": self.new_size,
            "size_delta": self.size_delta,
            "files": self.files,
            "tensors": None if self.tensors is None else self.tensors.to_json(),
        }


@dataclass
class ParamChange:
    key: str
    source: str  # "inline" or the params file's path
    status: str  # added | removed | modified
    old: Any = None
    new: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "source": self.source,
            "status": self.status,
            "old": self.old,
            "new": self.new,
        }


@dataclass
class MetricChange:
    name: str
    old: Any = None
    new: Any = None

    @property
    def delta(self) -> float | int | None:
        return metrics_ops.delta(self.old, self.new)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "old": self.old, "new": self.new, "delta": self.delta}


@dataclass
class ModelDiff:
    name: str
    status: str  # added | removed | changed | unchanged
    old_version: str | None
    new_version: str | None
    old_inputs: str | None = None
    new_inputs: str | None = None
    components: list[ComponentChange] = field(default_factory=list)
    hyperparameters: list[ParamChange] = field(default_factory=list)
    metrics: list[MetricChange] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "old_inputs": self.old_inputs,
            "new_inputs": self.new_inputs,
            "components": [c.to_json() for c in self.components],
            "hyperparameters": [p.to_json() for p in self.hyperparameters],
            "metrics": [m.to_json() for m in self.metrics],
        }


@dataclass
class DiffResult:
    old: Snapshot
    new: Snapshot
    models: list[ModelDiff] = field(default_factory=list)
    artifacts: list[ComponentChange] = field(default_factory=list)  # outside every model
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "old": {"label": self.old.label, "commit": self.old.commit},
            "new": {"label": self.new.label, "commit": self.new.commit},
            "models": [m.to_json() for m in self.models],
            "artifacts": [a.to_json() for a in self.artifacts],
            "warnings": self.warnings,
        }


def split_revs(revs: list[str]) -> list[str]:
    """`A..B` means A and B, as in `git diff`."""
    if len(revs) == 1 and ".." in revs[0] and "..." not in revs[0]:
        a, _, b = revs[0].partition("..")
        return [a or "HEAD", b or "HEAD"]
    return revs


def diff(ctx: Context, revs: list[str], *, stats: bool = False) -> DiffResult:
    """No revision: HEAD against the work tree; one: REV against the work tree; two: commits.
    `stats`: measure how each modified float tensor moved, where both versions are at hand."""
    revs = split_revs(list(revs))
    if len(revs) > 2:
        raise UsageError("give at most two revisions: git model diff [REV_A [REV_B]]")
    if not revs and ctx.repo.head() is None:
        old = empty("(no commits)")
    else:
        old = at_commit(ctx, revs[0] if revs else "HEAD")
    new = at_commit(ctx, revs[1]) if len(revs) == 2 else work_tree(ctx)
    commits = [s.commit for s in (old, new) if s.commit is not None]
    records = notes.records_by_commit(ctx.repo, commits)
    metrics = [_metrics_of(ctx, snap) for snap in (old, new)]
    result = compare(old, new, records, metrics)
    if stats:
        from .tensordiff import add_stats

        add_stats(
            ctx.cache,
            old,
            new,
            [*(c for m in result.models for c in m.components), *result.artifacts],
        )
    return result


def _metrics_of(ctx: Context, snap: Snapshot) -> dict[str, dict[str, MetricValue]]:
    """Metrics describe versions: a commit's come from it and its ancestors of the same
    version; the work tree's are HEAD's for every model whose version it has not changed."""
    if snap.commit is not None:
        names = snap.manifest.models
        return version_metrics(ctx, snap.commit, {n: snap.version(n) for n in names})
    head = ctx.repo.head()
    if head is None or not snap.manifest.models:
        return {}
    at_head = at_commit(ctx, "HEAD", head)
    same = {
        n: snap.version(n) for n in snap.manifest.models if snap.version(n) == at_head.version(n)
    }
    return version_metrics(ctx, head, same)


def compare(
    old: Snapshot,
    new: Snapshot,
    records: dict[str, list[notes.Record]],
    metrics: list[dict[str, dict[str, MetricValue]]],
) -> DiffResult:
    result = DiffResult(old, new)
    for snap in (old, new):
        if snap.commit is not None:
            result.warnings += stale_versions(snap)
            versions = {n: m.version for n, m in snap.manifest.models.items()}
            result.warnings += note_disagreements(
                snap.commit, records.get(snap.commit, []), versions
            )
    for name in sorted(old.manifest.models.keys() | new.manifest.models.keys()):
        result.models.append(
            _model_diff(name, old, new, [metrics[0].get(name, {}), metrics[1].get(name, {})])
        )
    result.artifacts = _loose_artifacts(old, new)
    for snap in (old, new):
        result.warnings += [w for w in snap.warnings if w not in result.warnings]
    return result


def _model_diff(
    name: str, old: Snapshot, new: Snapshot, metrics: list[dict[str, MetricValue]]
) -> ModelDiff:
    a, b = old.manifest.models.get(name), new.manifest.models.get(name)
    va, vb = old.version(name), new.version(name)
    status = ADDED if a is None else REMOVED if b is None else CHANGED if va != vb else UNCHANGED
    out = ModelDiff(name, status, va, vb, old.inputs(name), new.inputs(name))
    out.components = _components(a, b, old, new)
    out.hyperparameters = _hyperparameters(a, b, old, new)
    out.metrics = [
        MetricChange(
            key,
            metrics[0][key].value if key in metrics[0] else None,
            metrics[1][key].value if key in metrics[1] else None,
        )
        for key in sorted(metrics[0].keys() | metrics[1].keys())
    ]
    return out


def _components(
    a: Model | None, b: Model | None, old: Snapshot, new: Snapshot
) -> list[ComponentChange]:
    oa = old.component_oids(a) if a else {}
    ob = new.component_oids(b) if b else {}
    out = []
    for kind, path in sorted(oa.keys() | ob.keys(), key=lambda kp: (KINDS.index(kp[0]), kp[1])):
        before, after = oa.get((kind, path)), ob.get((kind, path))
        if before is None:
            status = ADDED
        elif after is None:
            status = REMOVED
        elif before == after:
            continue
        else:
            status = MISSING_NOW if after == MISSING else MODIFIED
        out.append(_change(kind, path, status, old, new))
    return out


def _change(
    kind: str | None, path: str, status: str, old: Snapshot, new: Snapshot
) -> ComponentChange:
    change = ComponentChange(kind, path, status)
    sides = [(old, "old"), (new, "new")]
    if status == ADDED:
        sides = sides[1:]
    elif status == REMOVED:
        sides = sides[:1]
    for snap, side in sides:
        art = snap.manifest.artifacts.get(path)
        if art is not None:
            setattr(change, f"{side}_oid", str(art.oid))
            setattr(change, f"{side}_size", art.size)
        elif kind not in ARTIFACT_KINDS and kind is not None:
            data = snap.read(path)
            if data is not None:
                setattr(change, f"{side}_oid", hashlib.sha256(data).hexdigest())
                setattr(change, f"{side}_size", len(data))
    if status == MODIFIED:
        before, after = old.listing(path), new.listing(path)
        if before is not None and after is not None:
            change.files = _file_changes(before, after, listing_path(path))
        parts_before, parts_after = old.tensors(path), new.tensors(path)
        if parts_before is not None and parts_after is not None:
            change.tensors = compare_tensors(parts_before, parts_after)
    return change


def _file_changes(before: bytes, after: bytes, what: str) -> dict[str, list[str]]:
    """Files added, removed and modified between two listings.

    Only the lines that differ are parsed (and validated): a 10,000-file directory with a
    hundred changes costs two set lookups per line, not 20,000 path checks.
    """
    old_lines = before.split(b"\n")
    new_lines = after.split(b"\n")
    old_set, new_set = set(old_lines), set(new_lines)

    def entries(lines: list[bytes], other: set[bytes]) -> dict[str, Entry]:
        kept = b"".join(line + b"\n" for line in lines if line and line not in other)
        return {e.relpath: e for e in parse_listing(kept, what)}

    old, new = entries(old_lines, new_set), entries(new_lines, old_set)
    return {
        ADDED: sorted(new.keys() - old.keys()),
        REMOVED: sorted(old.keys() - new.keys()),
        MODIFIED: sorted(old.keys() & new.keys()),
    }


def _hyperparameters(
    a: Model | None, b: Model | None, old: Snapshot, new: Snapshot
) -> list[ParamChange]:
    """Inline values always; params files only where their bytes differ (or joined/left)."""
    oa = old.component_oids(a) if a else {}
    ob = new.component_oids(b) if b else {}
    touched = {
        path
        for m in (a, b)
        if m is not None
        for path in m.params
        if oa.get(("params", path)) != ob.get(("params", path))
    }
    values: list[dict[tuple[str, str], Any]] = []
    for model, snap in ((a, old), (b, new)):
        side: dict[tuple[str, str], Any] = {}
        if model is not None:
            side = {(INLINE, k): v for k, v in flatten(model.hyperparameters).items()}
            for path in sorted(touched & set(model.params)):
                side.update({(path, k): v for k, v in snap.params_file(path).items()})
        values.append(side)
    out = []
    for source, key in sorted(values[0].keys() | values[1].keys(), key=lambda t: (t[1], t[0])):
        before = values[0].get((source, key), _ABSENT)
        after = values[1].get((source, key), _ABSENT)
        if before is _ABSENT:
            out.append(ParamChange(key, source, ADDED, None, after))
        elif after is _ABSENT:
            out.append(ParamChange(key, source, REMOVED, before, None))
        elif canonical_json(before) != canonical_json(after):
            # compared as the hash sees them: 1 and 1.0 are different values
            out.append(ParamChange(key, source, MODIFIED, before, after))
    return out


_ABSENT = object()


def _loose_artifacts(old: Snapshot, new: Snapshot) -> list[ComponentChange]:
    in_models = {
        path
        for snap in (old, new)
        for m in snap.manifest.models.values()
        for kind in ARTIFACT_KINDS
        for path in getattr(m, kind)
    }
    out = []
    for path in sorted(old.manifest.artifacts.keys() | new.manifest.artifacts.keys() | new.missing):
        if path in in_models:
            continue
        a, b = old.manifest.artifacts.get(path), new.manifest.artifacts.get(path)
        if path in new.missing:
            status = MISSING_NOW
        elif a is None:
            status = ADDED
        elif b is None:
            status = REMOVED
        elif a == b:
            continue
        else:
            status = MODIFIED
        out.append(_change(None, path, status, old, new))
    return out
