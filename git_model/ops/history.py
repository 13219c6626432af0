"""`git model log` and `git model show`: model versions through history, and at one commit.

`log` must stay fast on long histories (1,000 commits well under a second), so it never runs a
process per commit: ONE `git log` walk yields every commit with its parents, date, subject and
note (`%N` on refs/notes/model), and the manifest at each commit comes through the one
long-lived `cat-file --batch`, parsed once per distinct manifest blob.

A log line is a version change: a commit whose model version none of its parents had. The
metrics shown for it are those of the *version*: the latest value of each metric recorded on
any walked commit that carries the same version (a later commit that only touched the README
still describes the same model).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .. import notes
from ..errors import GitModelError
from ..hashing import Oid, is_oid
from ..manifest import KINDS, MANIFEST_PATH
from . import metrics as metrics_ops
from .context import Context
from .snapshot import Snapshot, at_commit, note_disagreements, resolve, stale_versions


@dataclass
class Commit:
    sha: str
    parents: list[str]
    date: str
    subject: str
    records: list[notes.Record]
    versions: dict[str, Oid | None] = field(default_factory=dict)


@dataclass
class LogEntry:
    model: str
    version: str
    commit: str
    date: str
    subject: str
    metrics: dict[str, Any]
    inputs: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "inputs": self.inputs,
            "commit": self.commit,
            "date": self.date,
            "subject": self.subject,
            "metrics": self.metrics,
        }


@dataclass
class LogResult:
    model: str | None
    entries: list[LogEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "model": self.model,
            "entries": [e.to_json() for e in self.entries],
            "warnings": self.warnings,
        }


def walk(ctx: Context, rev: str, warnings: list[str]) -> list[Commit]:
    """Every commit reachable from `rev`, newest first, with its note and model versions."""
    commit = resolve(ctx, rev)
    out = ctx.repo.git(
        "log",
        f"--notes={notes.NOTES_REF}",
        "--format=%x00%H%x01%P%x01%aI%x01%s%x01%N",
        commit,
        "--",
    ).decode("utf-8", errors="replace")
    commits = []
    for chunk in out.split("\0")[1:]:
        sha, parents, date, subject, note = chunk.split("\x01", 4)
        commits.append(Commit(sha, parents.split(), date, subject, notes.parse_note(note)))
    cat = ctx.repo.cat_file()
    parsed: dict[bytes, dict[str, Oid | None]] = {}
    for c in commits:
        data = cat.read(f"{c.sha}:{MANIFEST_PATH}")
        if data is None:
            continue
        if data not in parsed:
            parsed[data] = _versions(data, c.sha, warnings)
        c.versions = parsed[data]
    return commits


def _versions(data: bytes, sha: str, warnings: list[str]) -> dict[str, Oid | None]:
    """Model name -> recorded version; a manifest that cannot be read is reported, not fatal."""
    try:
        text = data.decode("utf-8")
        # the writer puts [models.*] after every artifact: parse only that part when it can
        start = text.find("\n[models")
        try:
            models = tomllib.loads(text[start:] if start >= 0 else text).get("models", {})
        except tomllib.TOMLDecodeError:
            models = tomllib.loads(text).get("models", {})
        if not isinstance(models, dict):
            raise ValueError("[models] is not a table")
        return {
            str(name): Oid(entry["version"]) if is_oid(entry.get("version")) else None
            for name, entry in models.items()
            if isinstance(entry, dict)
        }
    except (UnicodeDecodeError, ValueError) as e:  # TOMLDecodeError is a ValueError
        warnings.append(f"{MANIFEST_PATH} at {sha[:12]} cannot be read ({e}); skipped")
        return {}


def log(
    ctx: Context, name: str | None = None, *, limit: int | None = None, rev: str = "HEAD"
) -> LogResult:
    result = LogResult(name)
    commits = walk(ctx, rev, result.warnings)
    known = {n for c in commits for n in c.versions}
    if name is not None and name not in known:
        have = ", ".join(sorted(known)) or "none yet"
        raise GitModelError(f"no model {name!r} in the history of {rev} (models: {have})")
    names = [name] if name is not None else sorted(known)
    by_sha = {c.sha: c for c in commits}
    inputs_at = _inputs_reader(ctx)
    for c in commits:
        if any(r.get("type") == "versions" for r in c.records):
            result.warnings += note_disagreements(c.sha, c.records, c.versions)
    # metrics of each (model, version), from every commit carrying that version
    records: dict[tuple[str, str], list[notes.Record]] = {}
    for c in commits:
        for n in names:
            v = c.versions.get(n)
            if v is not None and c.records:
                records.setdefault((n, v), []).extend(c.records)
    for c in commits:
        for n in names:
            v = c.versions.get(n)
            if v is None:
                continue
            parents = [by_sha.get(p) for p in c.parents]
            if any(p is not None and p.versions.get(n) == v for p in parents):
                continue
            merged = metrics_ops.merged(records.get((n, v), []), n)
            values = {k: m.value for k, m in merged.items()}
            entry = LogEntry(n, v, c.sha, c.date, c.subject, values, _noted_inputs(c, n, v))
            if entry.inputs is None:
                entry.inputs = inputs_at(c.sha, n)
            result.entries.append(entry)
            if limit is not None and len(result.entries) >= limit:
                return result
    return result


def _noted_inputs(c: Commit, name: str, version: str) -> str | None:
    """The input hash the commit's versions note gives, when that record gives the very version
    the manifest records (the hook computed both from the commit); else None."""
    from ..versions import INPUTS_RECIPE

    for r in reversed(notes.latest(c.records, "versions")):
        models, inputs = r.get("models"), r.get("inputs")
        if (
            isinstance(models, dict)
            and isinstance(inputs, dict)
            and r.get("inputs_recipe") == INPUTS_RECIPE
            and models.get(name) == version
            and is_oid(inputs.get(name))
        ):
            return str(inputs[name])
    return None


def _inputs_reader(ctx: Context) -> Callable[[str, str], str | None]:
    """(commit, model) -> the model's input hash computed from the commit; the manifests of
    commits that share one are parsed once."""
    from ..manifest import parse_manifest
    from ..versions import model_inputs

    cat = ctx.repo.cat_file()
    parsed: dict[bytes, Any] = {}

    def inputs(sha: str, name: str) -> str | None:
        data = cat.read(f"{sha}:{MANIFEST_PATH}")
        if data is None:
            return None
        if data not in parsed:
            try:
                parsed[data] = parse_manifest(data, f"{MANIFEST_PATH} at {sha[:12]}")
            except GitModelError:
                parsed[data] = None
        manifest = parsed[data]
        if manifest is None or name not in manifest.models:
            return None
        return str(model_inputs(manifest.models[name], manifest, ctx.reader(sha)))

    return inputs


def version_metrics(
    ctx: Context, commit: str, versions: dict[str, Oid | None]
) -> dict[str, dict[str, metrics_ops.MetricValue]]:
    """Per model, the latest value of each metric recorded on `commit` or on its ancestors
    back to where the model's version at `commit` began (metrics describe a version, and a
    later commit that only touched the README still holds the same model).

    Bounded: the commits that changed the manifest are listed (one path-limited `git log`)
    and read newest first only until every model's version differs; then one `git log` of
    the range since then brings the notes, and a manifest is read only for a commit with
    metrics (to check that it really carries the version).
    """
    wanted = {n: v for n, v in versions.items() if v is not None}
    if not wanted:
        return {}
    cat = ctx.repo.cat_file()
    parsed: dict[bytes, dict[str, Oid | None]] = {}
    ignored: list[str] = []

    def versions_at(sha: str) -> dict[str, Oid | None]:
        data = cat.read(f"{sha}:{MANIFEST_PATH}") or b""
        if data not in parsed:
            parsed[data] = _versions(data, sha, ignored)
        return parsed[data]

    changes = ctx.repo.git("log", "--format=%H", commit, "--", MANIFEST_PATH).decode().split()
    stop = next(
        (c for c in changes if all(versions_at(c).get(n) != v for n, v in wanted.items())), None
    )
    out = ctx.repo.git(
        "log",
        f"--notes={notes.NOTES_REF}",
        "--format=%x00%H%x01%N",
        commit,
        *(["--not", stop] if stop else []),
        "--",
    ).decode("utf-8", errors="replace")
    records: dict[str, list[notes.Record]] = {n: [] for n in wanted}
    for chunk in out.split("\0")[1:]:
        sha, _, note = chunk.partition("\x01")
        recs = metrics_ops.records_of(notes.parse_note(note))
        if not recs:
            continue
        at = versions_at(sha)
        for name, version in wanted.items():
            if at.get(name) == version:
                records[name] += recs
    return {name: metrics_ops.merged(recs, name) for name, recs in records.items()}


# -- show ----------------------------------------------------------------------------------------


@dataclass
class ShowResult:
    snapshot: Snapshot
    models: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)  # outside every model
    metrics: dict[str, Any] = field(default_factory=dict)  # recorded for the whole commit
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "rev": self.snapshot.label,
            "commit": self.snapshot.commit,
            "models": self.models,
            "artifacts": self.artifacts,
            "metrics": self.metrics,
            "warnings": self.warnings,
        }


def show(ctx: Context, rev: str = "HEAD") -> ShowResult:
    snap = at_commit(ctx, rev)
    assert snap.commit is not None
    records = notes.read_records(ctx.repo, snap.commit)
    result = ShowResult(snap)
    manifest = snap.manifest
    in_models: set[str] = set()
    metrics = version_metrics(ctx, snap.commit, {n: snap.version(n) for n in manifest.models})
    for name in sorted(manifest.models):
        model = manifest.models[name]
        components = []
        oids = snap.component_oids(model)
        for kind, path in sorted(oids, key=lambda kp: (KINDS.index(kp[0]), kp[1])):
            oid = oids[(kind, path)]
            art = manifest.artifacts.get(path)
            if art is not None:
                in_models.add(path)
            components.append(_component(kind, path, oid, art))
        hyper = [
            {"key": key, "source": source, "value": value}
            for (source, key), value in sorted(
                snap.hyperparameters(model).items(), key=lambda kv: (kv[0][1], kv[0][0])
            )
        ]
        merged = metrics[name]
        result.models.append(
            {
                "name": name,
                "version": snap.version(name),
                "inputs": snap.inputs(name),
                "components": components,
                "hyperparameters": hyper,
                "metrics": {k: _metric(v) for k, v in merged.items()},
            }
        )
    result.artifacts = [
        _component(None, path, str(art.oid), art)
        for path, art in sorted(manifest.artifacts.items())
        if path not in in_models
    ]
    result.metrics = {k: _metric(v) for k, v in metrics_ops.merged(records).items()}
    versions = {n: m.version for n, m in manifest.models.items()}
    result.warnings = stale_versions(snap) + note_disagreements(snap.commit, records, versions)
    result.warnings += snap.warnings
    return result


def _component(kind: str | None, path: str, oid: str, art: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "path": path,
        "oid": None if oid == "-" else oid,
        "size": art.size if art is not None else None,
        "files": art.files if art is not None else None,
    }


def _metric(v: metrics_ops.MetricValue) -> dict[str, Any]:
    return {"value": v.value, "time": v.time, "model": v.model}
