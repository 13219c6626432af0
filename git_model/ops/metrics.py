"""Metrics: outcomes recorded against a commit after it was made, as note records.

A metrics record is one JSON line on the commit's note (`refs/notes/model`):

    {"format": 1, "type": "metrics", "time": "2026-01-01T12:00:00.123456Z",
     "model": "digits" | null, "metrics": {"accuracy": 0.93}, "author": "...", "host": "..."}

Notes attach to an existing commit without rewriting it, and recording again appends a new
record: history is kept, and reports take, per metric, the value with the latest `time`. A
record whose `model` is null applies to every model of the commit. Metrics never enter the
model version hash: they are outcomes, not inputs.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import notes, pending
from ..errors import GitModelError, UsageError
from ..hyperparams import check_key, parse_assignment
from ..termtext import control_character
from .context import Context

TYPE = "metrics"
CAPTURE_ENV = "GIT_MODEL_RUN_METRICS"  # set by `git model run`: metrics go to this file


def read_captured(path: Path) -> list[dict[str, Any]]:
    """The metrics records a command wrote while `CAPTURE_ENV` named `path`."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("metrics"), dict):
            out.append(rec)
    return out


@dataclass(frozen=True)
class MetricValue:
    value: Any
    time: str
    model: str | None  # the record's model (None: recorded for the whole commit)


# -- input ---------------------------------------------------------------------------------------


def normalize(metrics: Mapping[str, Any], what: str = "metric") -> dict[str, Any]:
    """Flat `name -> JSON value`: nested mappings become dotted names; numpy-style scalars
    become Python numbers; NaN, infinities and non-JSON values are refused with one line."""
    if not isinstance(metrics, Mapping):
        raise UsageError(
            f"metrics must be a mapping of name to value, not {type(metrics).__name__}"
        )
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise UsageError(f"{what} name {name!r} is not a string")
        if isinstance(value, Mapping) and value:
            for sub, v in normalize(value, what).items():
                out[check_key(f"{name}.{sub}", what)] = v
            continue
        out[check_key(name, what)] = _json_value(name, value)
    return out


def _json_value(name: str, value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (list, dict)):
        value = value.item()  # numpy / torch scalars
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise UsageError(f"metric {name} is {number}: record finite numbers only")
        return number
    if isinstance(value, (list, tuple)):
        return [_json_value(name, v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_value(f"{name}.{k}", v) for k, v in value.items()}
    raise UsageError(
        f"metric {name} is a {type(value).__name__}; metrics are numbers or JSON values"
    )


def parse_args(args: Iterable[str]) -> dict[str, Any]:
    """`accuracy=0.93 loss=0.12` from the command line: every value must be JSON."""
    out: dict[str, Any] = {}
    for arg in args:
        name, value = parse_assignment(arg, what="metric")
        raw = arg.partition("=")[2]
        if isinstance(value, str) and not _is_json(raw):
            raise UsageError(
                f"metric {name}={raw!r} is not a number; metrics are numbers or JSON values "
                f"(quote text as JSON: {name}='\"{raw}\"')"
            )
        out[name] = value
    return normalize(out)


def _is_json(text: str) -> bool:
    try:
        json.loads(text, parse_constant=_reject)
    except ValueError:
        return False
    return True


def _reject(name: str) -> Any:
    raise ValueError(name)


def load_file(path: str, stdin_text: str | None = None) -> dict[str, Any]:
    """A JSON object of metrics (`-` reads standard input)."""
    try:
        text = stdin_text if path == "-" and stdin_text is not None else Path(path).read_text()
        doc = json.loads(text, parse_constant=_reject)
    except FileNotFoundError:
        raise GitModelError(f"{path} does not exist; check the path of --file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise GitModelError(f"cannot read {path}: {e}") from None
    except ValueError as e:
        raise UsageError(
            f"{path} is not valid JSON ({e}); metrics files are JSON objects"
        ) from None
    if not isinstance(doc, dict):
        raise UsageError(f"{path} holds a JSON {type(doc).__name__}; write an object of metrics")
    return normalize(doc)


# -- recording -----------------------------------------------------------------------------------


def resolve_commit(ctx: Context, rev: str) -> str:
    commit = ctx.repo.rev_parse(rev)
    if commit is None:
        if rev == "HEAD":
            raise GitModelError("there is no commit yet; commit first, then record its metrics")
        raise UsageError(f"unknown revision {rev!r}; name a commit, e.g. HEAD~1 or a tag")
    return commit


def make_record(
    metrics: Mapping[str, Any], model: str | None, author: str | None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "format": notes.FORMAT,
        "type": TYPE,
        "time": notes.now(),
        "model": model,
        "metrics": dict(sorted(metrics.items())),
        "host": socket.gethostname(),
    }
    if author:
        record["author"] = author
    return record


def _author(ctx: Context) -> str | None:
    out = ctx.repo.git("var", "GIT_AUTHOR_IDENT", check=False).decode(errors="replace").strip()
    # "Name <email> 1700000000 +0000": keep who, not when (the record has its own time)
    return out.rsplit(" ", 2)[0] if out.count(" ") >= 2 else None


def record_metrics(
    ctx: Context, metrics: Mapping[str, Any], *, model: str | None = None, rev: str | None = None
) -> tuple[str | None, dict[str, Any]]:
    """Record metrics; return (commit, record), commit None when the record is pending.

    With `rev`, the metrics go on that commit's note. Without, they go where they belong:
    on HEAD when the work tree's model versions are HEAD's (the committed weights were
    measured), else they wait for the commit that records the work tree's versions
    (`pending.py`: a training script logs before anyone commits its weights).
    """
    if model is not None and control_character(model):  # (a note would carry it to others)
        raise UsageError(f"model name {model!r} contains a control character; check --model")
    values = normalize(metrics)
    if not values:
        raise UsageError("no metrics given: git model metrics set accuracy=0.93")
    capture = os.environ.get(CAPTURE_ENV)
    if rev is None and capture:
        # inside `git model run` / `bisect --run`: they decide where the metrics go once the
        # command has succeeded (a failed run records nothing)
        record = make_record(values, model, _author(ctx))
        with open(capture, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
        return None, record
    if rev is None:
        waiting = _pending_versions(ctx, model)
        if waiting is not None:
            record = make_record(values, model, _author(ctx))
            record[pending.KEY] = waiting[0]
            with ctx.lock("recording metrics"):
                pending.add(ctx.repo.git_dir, record, waiting[1])
            return None, record
        rev = "HEAD"
    commit = resolve_commit(ctx, rev)
    if model is not None:
        names = sorted(ctx.manifest(commit).models)
        if model not in names:
            have = f"models there: {', '.join(names)}" if names else "it has no models"
            raise GitModelError(f"no model {model!r} at {rev} ({have}); check --model")
    record = make_record(values, model, _author(ctx))
    with ctx.lock("recording metrics"):  # a note write is read-modify-write on the notes ref
        notes.append_records(ctx.repo, commit, [record])
    return commit, record


def _pending_versions(
    ctx: Context, model: str | None
) -> tuple[dict[str, str], dict[str, str]] | None:
    """(work-tree versions, HEAD's versions) when the work tree's differ from HEAD's; None
    when the metrics can go on HEAD."""
    from .snapshot import at_commit, work_tree

    now_snap = work_tree(ctx)
    names = [model] if model is not None else sorted(now_snap.manifest.models)
    if model is not None and model not in now_snap.manifest.models:
        have = ", ".join(sorted(now_snap.manifest.models)) or "none"
        raise GitModelError(f"no model {model!r} in the work tree (models: {have}); check --model")
    head = at_commit(ctx, "HEAD") if ctx.repo.head() else None
    head_versions = (
        {}
        if head is None
        else {n: str(v) for n in head.manifest.models if (v := head.version(n)) is not None}
    )
    mine = {n: str(v) for n in names if (v := now_snap.version(n)) is not None}
    pending.prune(ctx.repo.git_dir, head_versions)
    if head is not None and all(head_versions.get(n) == v for n, v in mine.items()):
        return None
    return mine, head_versions


# -- reading -------------------------------------------------------------------------------------


def records_of(records: Iterable[notes.Record]) -> list[notes.Record]:
    """Well-formed metrics records, oldest first."""
    return [
        r
        for r in notes.latest(list(records), TYPE)
        if isinstance(r.get("metrics"), dict)
        and (r.get("model") is None or isinstance(r.get("model"), str))
    ]


def merged(records: Iterable[notes.Record], model: str | None = None) -> dict[str, MetricValue]:
    """Latest value per metric name. With `model`, records for that model and for the whole
    commit count; without, only whole-commit records."""
    out: dict[str, MetricValue] = {}
    for r in records_of(records):
        owner = r.get("model")
        if owner is not None and owner != model:
            continue
        for name, value in r["metrics"].items():
            out[str(name)] = MetricValue(value, str(r.get("time", "")), owner)
    return dict(sorted(out.items()))


def latest_by_model(records: Iterable[notes.Record]) -> dict[str | None, dict[str, MetricValue]]:
    """Latest value per (model, metric) exactly as recorded (None: the whole commit)."""
    out: dict[str | None, dict[str, MetricValue]] = {}
    for r in records_of(records):
        owner = r.get("model")
        for name, value in r["metrics"].items():
            out.setdefault(owner, {})[str(name)] = MetricValue(value, str(r.get("time", "")), owner)
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def delta(old: Any, new: Any) -> float | int | None:
    """new - old when both are numbers (not booleans), rounded to hide float noise."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (old, new)):
        return None
    d = new - old
    return d if isinstance(d, int) else float(f"{d:.12g}")


@dataclass
class MetricsAt:
    """The metrics recorded on one commit: every record (history) and the latest values."""

    rev: str
    commit: str
    records: list[notes.Record]  # metrics records, oldest first

    def latest(self) -> list[tuple[str | None, str, MetricValue]]:
        """(model, name, value) sorted by model (whole-commit first) then name."""
        by_model = latest_by_model(self.records)
        return [
            (model, name, value)
            for model in sorted(by_model, key=lambda m: (m is not None, m or ""))
            for name, value in by_model[model].items()
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "rev": self.rev,
            "commit": self.commit,
            "metrics": [
                {"model": model, "name": name, "value": v.value, "time": v.time}
                for model, name, v in self.latest()
            ],
            "records": self.records,
        }


def metrics_at(ctx: Context, rev: str = "HEAD") -> MetricsAt:
    commit = resolve_commit(ctx, rev)
    return MetricsAt(rev, commit, records_of(notes.read_records(ctx.repo, commit)))
