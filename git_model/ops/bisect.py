"""`git model bisect`: which commit made a metric cross a line?

The path is the first-parent line from GOOD to BAD (`git rev-list --first-parent`). Every
commit on it gets the metric its notes give: its own latest record, else the one of an earlier
commit on the path with the same model version (metrics describe a version: a commit that only
touched the README still holds the same model). One `git log` brings every note and the
manifests come through the one `cat-file --batch`, each distinct one parsed once, so 1,000
commits cost what `git model log` does.

When every commit has the metric the answer is read off: the first commit that crosses the line.
Otherwise, with `--run CMD`, the commits that lack it are evaluated as `git bisect` would, in
at most ceil(log2 n) + 2 runs (the two ends included when they lack it): each is checked out
into a temporary worktree (`git worktree add --detach`; the cache is shared by worktrees, so the
artifacts come from it), CMD runs there, and the metrics it records with `log_metrics` are added
to that commit's note. The user's work tree and HEAD are never touched.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import notes
from ..errors import GitModelError, UsageError
from ..hashing import Oid
from ..manifest import MANIFEST_PATH
from . import metrics as metrics_ops
from .context import Context
from .diff import diff
from .history import _versions, version_metrics
from .snapshot import resolve

MIN, MAX, WORSE = "min", "max", "worse_than"


@dataclass
class Line:
    kind: str  # min | max | worse_than
    value: float
    rev: str | None = None  # worse_than: the revision whose value drew the line
    lower_is_worse: bool = True

    def crosses(self, value: float) -> bool:
        if self.kind == MIN:
            return value < self.value
        if self.kind == MAX:
            return value > self.value
        return value < self.value if self.lower_is_worse else value > self.value

    def describe(self) -> str:
        if self.kind == MIN:
            return f"< {self.value:g}"
        if self.kind == MAX:
            return f"> {self.value:g}"
        sign = "<" if self.lower_is_worse else ">"
        return f"{sign} {self.value:g} ({self.rev}'s value)"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "rev": self.rev}


@dataclass
class Point:
    commit: str
    subject: str
    version: tuple[tuple[str, str | None], ...]
    own: float | None = None  # recorded on this commit
    value: float | None = None  # own, or inherited from the same version
    evaluated: bool = False


@dataclass
class BisectResult:
    metric: str
    model: str | None
    line: Line
    path: list[Point] = field(default_factory=list)
    culprit: int | None = None  # index into path
    evaluated: list[str] = field(default_factory=list)
    diff: Any = None  # ops.diff.DiffResult of the culprit against its parent
    warnings: list[str] = field(default_factory=list)

    def point_json(self, i: int | None) -> dict[str, Any] | None:
        if i is None or i < 0:
            return None
        p = self.path[i]
        return {"commit": p.commit, "subject": p.subject, "value": p.value}

    def to_json(self) -> dict[str, Any]:
        before = None if self.culprit is None else self.culprit - 1
        return {
            "format": 1,
            "metric": self.metric,
            "model": self.model,
            "line": self.line.to_json(),
            "good": self.path[0].commit,
            "bad": self.path[-1].commit,
            "commits": len(self.path),
            "culprit": self.point_json(self.culprit),
            "before": self.point_json(before),
            "evaluated": self.evaluated,
            "diff": None if self.diff is None else self.diff.to_json(),
            "warnings": self.warnings,
        }


def first_parent_path(ctx: Context, good: str | None, bad: str) -> list[str]:
    """`git log` arguments walking from GOOD to BAD along BAD's first parents, oldest first
    (GOOD included: the walk stops at its parents)."""
    if good is None:
        return ["--first-parent", "--reverse", bad]
    if good != bad and not ctx.repo.git_ok("merge-base", "--is-ancestor", good, bad):
        raise UsageError(
            f"GOOD {good[:12]} is not an ancestor of BAD {bad[:12]}: give an older commit "
            "first, then the newer one (git model bisect METRIC --min X GOOD BAD)"
        )
    return ["--first-parent", "--reverse", bad, "--not", f"{good}^@"]


def load_path(ctx: Context, walk: list[str], metric: str, model: str | None) -> list[Point]:
    """Each commit `git log WALK` lists, with its subject, model versions and value of `metric`
    from the notes (one `git log` for the notes, one `cat-file --batch` for the manifests)."""
    out = ctx.repo.git(
        "log", f"--notes={notes.NOTES_REF}", "--format=%x00%H%x01%s%x01%N", *walk, "--"
    ).decode("utf-8", errors="replace")
    info: dict[str, tuple[str, list[notes.Record]]] = {}
    commits: list[str] = []
    for chunk in out.split("\0")[1:]:
        sha, subject, note = chunk.split("\x01", 2)
        info[sha] = (subject, notes.parse_note(note))
        commits.append(sha)
    cat = ctx.repo.cat_file()
    parsed: dict[bytes, dict[str, Oid | None]] = {}
    warnings: list[str] = []
    points: list[Point] = []
    owners: set[str | None] = set()
    for sha in commits:
        subject, records = info.get(sha, ("", []))
        data = cat.read(f"{sha}:{MANIFEST_PATH}") or b""
        if data not in parsed:
            parsed[data] = _versions(data, sha, warnings) if data else {}
        versions = parsed[data]
        key = tuple(sorted((n, str(v) if v else None) for n, v in versions.items()))
        if model is not None:
            key = tuple(kv for kv in key if kv[0] == model)
        point = Point(sha, subject, key)
        found = _metric_value(records, metric, model, owners)
        if found is not None:
            point.own = point.value = _number(found, metric, sha)
        points.append(point)
    if model is None and len(owners - {None}) > 1:
        have = ", ".join(sorted(o for o in owners if o))
        raise UsageError(f"{metric} is recorded for models {have}: choose one with --model NAME")
    inherit(points)
    return points


def _metric_value(
    records: list[notes.Record], metric: str, model: str | None, owners: set[str | None]
) -> Any:
    if model is not None:
        merged = metrics_ops.merged(records, model)
        return merged[metric].value if metric in merged else None
    latest: tuple[str, Any] | None = None
    for r in metrics_ops.records_of(records):
        if metric in r["metrics"]:
            owners.add(r.get("model"))
            latest = (str(r.get("time", "")), r["metrics"][metric])
    return None if latest is None else latest[1]


def _number(value: Any, metric: str, sha: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GitModelError(
            f"{metric} at {sha[:12]} is {value!r}, not a number; bisect compares numbers"
        )
    return float(value)


def inherit(points: list[Point]) -> None:
    """A commit without its own value takes the latest one of its version along the path."""
    last: dict[tuple[tuple[str, str | None], ...], float] = {}
    for p in points:
        if p.own is not None:
            p.value = p.own
            if p.version:
                last[p.version] = p.own
        elif p.version and p.version in last:
            p.value = last[p.version]


def bracket(points: list[Point], line: Line, explicit_good: bool) -> tuple[int, int]:
    """(lo, hi): hi the first commit known to cross (BAD, assumed to, when its value is
    unknown), lo the last one before it known not to (GOOD, assumed not to, when unknown; -1
    before the first commit when no GOOD was given). Every commit strictly between is unknown;
    when hi == lo + 1, hi is the culprit."""
    start = 1 if explicit_good else 0
    last = len(points) - 1
    hi = next(
        (i for i in range(start, last) if (v := points[i].value) is not None and line.crosses(v)),
        last,
    )
    lo = next(
        (
            i
            for i in range(hi - 1, start - 1, -1)
            if (v := points[i].value) is not None and not line.crosses(v)
        ),
        start - 1,
    )
    return lo, hi


def max_runs(n: int) -> int:
    """The most evaluations bisect --run makes on a path of n commits."""
    return math.ceil(math.log2(max(n, 2))) + 2


Evaluator = Callable[[str], "list[notes.Record]"]  # commit -> the metrics records CMD made


def bisect(
    ctx: Context,
    metric: str,
    *,
    line: Line,
    good: str | None = None,
    bad: str = "HEAD",
    model: str | None = None,
    evaluate: Evaluator | None = None,
) -> BisectResult:
    """Find the first commit on GOOD..BAD whose `metric` crosses `line` (see the module doc).
    A `worse_than` line gets its value and direction here, from REV and BAD."""
    bad_sha = resolve(ctx, bad)
    good_sha = resolve(ctx, good) if good is not None else None
    points = load_path(ctx, first_parent_path(ctx, good_sha, bad_sha), metric, model)
    path = [p.commit for p in points]
    if good_sha is not None and path[0] != good_sha:
        raise UsageError(_off_the_line(ctx, good_sha, bad_sha, path[0]))
    result = BisectResult(metric, model, line, points)
    if evaluate is None and all(p.value is None for p in points):
        known = _recorded_names(ctx, path)
        raise GitModelError(
            f"no commit from {path[0][:12]} to {bad_sha[:12]} has {metric} recorded "
            f"(recorded there: {', '.join(known) or 'no metrics'}); check the name, or "
            "evaluate commits with --run CMD"
        )

    def measure(i: int) -> None:
        assert evaluate is not None
        p = points[i]
        records = evaluate(p.commit)
        value = _metric_value(records, metric, model, set())
        if value is None:
            names = sorted({k for r in records for k in r.get("metrics", {})})
            raise GitModelError(
                f"the --run command ran at {p.commit[:12]} but recorded no {metric} "
                f"(it recorded: {', '.join(names) or 'nothing'}); it must call "
                f"git_model.log_metrics({{{metric!r}: …}})"
            )
        p.own = _number(value, metric, p.commit)
        p.evaluated = True
        result.evaluated.append(p.commit)
        inherit(points)

    last = len(points) - 1
    if points[last].value is None and evaluate is not None:
        measure(last)
    if line.kind == WORSE:
        _draw_worse_line(ctx, line, points[last], metric, model, evaluate)
    if (bad_value := points[last].value) is not None and not line.crosses(bad_value):
        raise GitModelError(
            f"BAD {bad_sha[:12]} has {metric} = {bad_value:g}, which does not "
            f"cross the line ({metric} {line.describe()}); nothing to find"
        )
    explicit = good_sha is not None
    if explicit and points[0].value is None and evaluate is not None and last > 0:
        measure(0)
    if explicit and points[0].value is not None and line.crosses(points[0].value):
        raise GitModelError(
            f"GOOD {path[0][:12]} already has {metric} = {points[0].value:g} "
            f"({line.describe()}); give an older GOOD"
        )
    while True:
        lo, hi = bracket(points, line, explicit)
        if hi - lo <= 1:
            break
        if evaluate is None:
            raise GitModelError(
                f"{metric} crosses the line between {_name(points, lo)} and "
                f"{points[hi].commit[:12]}, but the {hi - lo - 1} commits between them have no "
                f"{metric} recorded; evaluate them with --run CMD"
            )
        measure((lo + hi) // 2)
    result.culprit = hi
    return result


def _off_the_line(ctx: Context, good: str, bad: str, first: str) -> str:
    """GOOD is an ancestor of BAD but came in through a merge: which commits of the line to
    give instead (the last one before GOOD's branch left it, the merge that took it in)."""
    fork = ctx.repo.rev_parse(f"{first}^")
    merges = ctx.repo.git(
        "rev-list", "--first-parent", "--ancestry-path", f"{good}..{bad}", "--"
    ).split()
    merge = merges[-1].decode() if merges else first
    before = f"{fork[:12]} (the last one before it branched off) or " if fork else ""
    return (
        f"GOOD {good[:12]} is not on BAD's first-parent line (a side branch merged at "
        f"{merge[:12]}); give a commit of that line as GOOD: {before}{merge[:12]}"
    )


def _name(points: list[Point], i: int) -> str:
    return "the first commit" if i < 0 else points[i].commit[:12]


def _draw_worse_line(
    ctx: Context,
    line: Line,
    bad: Point,
    metric: str,
    model: str | None,
    evaluate: Evaluator | None,
) -> None:
    """`--worse-than REV`: the line is REV's value; worse is the direction BAD moved in."""
    assert line.rev is not None
    rev = resolve(ctx, line.rev)
    ref = load_path(ctx, ["--no-walk", rev], metric, model)[0].value
    if ref is None:
        versions = _at(ctx, rev)
        if model is not None:
            versions = {model: versions.get(model)}
        for merged in version_metrics(ctx, rev, versions).values():
            if metric in merged:
                ref = _number(merged[metric].value, metric, rev)
    if ref is None and evaluate is not None:
        ref = _metric_value(evaluate(rev), metric, model, set())
        ref = None if ref is None else _number(ref, metric, rev)
    if ref is None:
        raise GitModelError(
            f"{line.rev} has no {metric} recorded; record it (git model metrics set "
            f"{metric}=VALUE --rev {line.rev}) or evaluate it with --run CMD"
        )
    if bad.value is None:
        raise GitModelError(
            f"BAD {bad.commit[:12]} has no {metric} recorded, so 'worse' has no direction; "
            "evaluate it with --run CMD"
        )
    if bad.value == ref:
        raise GitModelError(
            f"BAD {bad.commit[:12]} has {metric} = {ref:g}, the same as {line.rev}: it is not worse"
        )
    line.value = ref
    line.lower_is_worse = bad.value < ref


def _at(ctx: Context, commit: str) -> dict[str, Oid | None]:
    data = ctx.repo.cat_file().read(f"{commit}:{MANIFEST_PATH}")
    return _versions(data, commit, []) if data else {}


def _recorded_names(ctx: Context, commits: list[str]) -> list[str]:
    records = notes.records_by_commit(ctx.repo, commits)
    return sorted(
        {
            str(k)
            for recs in records.values()
            for r in metrics_ops.records_of(recs)
            for k in r["metrics"]
        }
    )


def culprit_diff(ctx: Context, result: BisectResult) -> None:
    """The culprit against the commit before it: which hyperparameters, data, weights."""
    if result.culprit is None:
        return
    commit = result.path[result.culprit].commit
    parent = ctx.repo.rev_parse(f"{commit}^")
    if parent is not None:
        result.diff = diff(ctx, [parent, commit])
