"""Commands about model versions: diff, log, show, and metrics set / show.

Each command parses its arguments, calls one function in `ops/`, and renders what comes back:
text for people, or with `--json` the stable documents described in docs/json.md. Warnings
(a stale version, a note that disagrees with the manifest) go to stderr in text mode and into a
`warnings` list in JSON.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from ..ops.context import Context
from ..termtext import quote_path, visible
from .app import command
from .render import emit_json, human_size, json_option, note, say, stats_text, style

if TYPE_CHECKING:
    from ..ops.diff import ComponentChange, DiffResult
    from ..ops.tensordiff import TensorDiff

FILES_SHOWN = 20  # per category in text; --json lists them all
TENSORS_SHOWN = 40  # changed tensors listed in text


def fmt(value: Any) -> str:
    """A value as people read it: text as is, everything else as JSON; control characters
    made visible either way (JSON leaves C1 controls raw)."""
    return visible(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


def fmt_delta(delta: float | int | None) -> str:
    return "" if delta is None else f" ({delta:+g})"


def warn_all(warnings: list[str]) -> None:
    for w in warnings:
        note(style(f"warning: {visible(w)}", fg="yellow"))


def short(version: str | None) -> str:
    return version[:12] if version else "-"


@command(
    epilog="""\b
Examples:
  git model diff                 # HEAD against the work tree
  git model diff v1              # tag v1 against the work tree
  git model diff HEAD~1 HEAD     # two commits (also: HEAD~1..HEAD)
  git model diff v1 v2 --json    # for tools; see docs/json.md
  git model diff v1 v2 --stats   # how far each changed tensor moved"""
)
@click.argument("revs", nargs=-1)
@click.option(
    "--stats",
    is_flag=True,
    help="For changed float tensors: relative change, max |change|, share of elements changed "
    "(needs both versions' bytes: the cache or the work tree).",
)
@json_option
def diff_cmd(revs: tuple[str, ...], stats: bool, as_json: bool) -> None:
    """Show, per model, whether its version changed and why, with the metrics side by side.

    Reasons: weights (size delta, and for safetensors, GGUF, .npz and torch files the tensors
    added, removed, reshaped, retyped and modified), data files added / removed / modified,
    each changed hyperparameter (inline and inside YAML/JSON/TOML params files), code files.
    Needs only git: no cache, no remote (--stats reads the tensors' bytes).
    """
    from ..ops.diff import diff

    with Context.open() as ctx:
        result = diff(ctx, list(revs), stats=stats)
    if as_json:
        emit_json(result.to_json())
        return
    render_diff(result)


def render_diff(result: DiffResult) -> None:
    """A diff as people read it (also the culprit's summary in `git model bisect`)."""
    warn_all(result.warnings)
    say(f"{visible(result.old.label)} → {visible(result.new.label)}")
    if not result.models and not result.artifacts:
        say("no models and no changed artifacts")
    for m in result.models:
        if m.status == "changed":
            head = f"version {short(m.old_version)} → {short(m.new_version)}"
            if m.old_inputs == m.new_inputs:
                head += f" (inputs {short(m.new_inputs)} unchanged: only outputs differ)"
            else:
                head += f", inputs {short(m.old_inputs)} → {short(m.new_inputs)}"
        elif m.status == "unchanged":
            head = f"version {short(m.new_version)} unchanged"
        else:
            head = f"{m.status} (version {short(m.new_version or m.old_version)})"
        colour = {"unchanged": "green", "removed": "red"}.get(m.status, "yellow")
        say(style(f"model {visible(m.name)}: ", bold=True) + style(head, fg=colour))
        for c in m.components:
            _render_component(c)
        for p in m.hyperparameters:
            where = "" if p.source == "inline" else f"  ({quote_path(p.source)})"
            key = visible(p.key)
            if p.status == "added":
                say(f"  hyperparameter  {key}: (none) → {fmt(p.new)}{where}")
            elif p.status == "removed":
                say(f"  hyperparameter  {key}: {fmt(p.old)} → (none){where}")
            else:
                say(f"  hyperparameter  {key}: {fmt(p.old)} → {fmt(p.new)}{where}")
        for mc in m.metrics:
            old = "(none)" if mc.old is None else fmt(mc.old)
            new = "(none)" if mc.new is None else fmt(mc.new)
            say(f"  metric          {visible(mc.name)}: {old} → {new}{fmt_delta(mc.delta)}")
    if result.artifacts:
        say(style("artifacts outside models:", bold=True))
        for c in result.artifacts:
            _render_component(c)


def _render_component(c: ComponentChange) -> None:
    label = visible(c.kind or "artifact").ljust(15)
    path = quote_path(c.path)
    size = ""
    delta = c.size_delta
    if c.status == "modified" and c.old_size is not None and c.new_size is not None:
        assert delta is not None
        sign = "+" if delta >= 0 else "-"
        size = (
            f"  {human_size(c.old_size)} → {human_size(c.new_size)}"
            f" ({sign}{human_size(abs(delta))})"
        )
    elif c.status == "added" and c.new_size is not None:
        size = f"  {human_size(c.new_size)}"
    if c.files is not None:
        counts = " ".join(f"{k} {len(c.files[k])}" for k in ("added", "removed", "modified"))
        say(f"  {label} {path}: {counts} files{size}")
        for key, mark in (("added", "+"), ("removed", "-"), ("modified", "~")):
            for rel in c.files[key][:FILES_SHOWN]:
                say(f"      {mark} {quote_path(rel)}")
            if len(c.files[key]) > FILES_SHOWN:
                say(f"      … and {len(c.files[key]) - FILES_SHOWN} more {key} (--json lists all)")
    else:
        say(f"  {label} {path}: {c.status}{size}")
    if c.tensors is not None:
        _render_tensors(c.tensors)


def _render_tensors(t: TensorDiff) -> None:
    from ..ops.tensordiff import nbytes

    say(f"      {t.summary()}")
    marks = {"added": "+", "removed": "-", "reshaped": "~", "retyped": "~", "modified": "~"}
    for change in t.changes[:TENSORS_SHOWN]:
        x, y = change.old, change.new
        side = y or x
        assert side is not None
        shape = ",".join(map(str, side.shape or ()))
        what = f"{visible(str(side.dtype))} [{shape}] {human_size(nbytes(side))}"
        if change.status == "reshaped" and x is not None and y is not None:
            what = f"[{','.join(map(str, x.shape or ()))}] → [{','.join(map(str, y.shape or ()))}]"
        elif change.status == "retyped" and x is not None and y is not None:
            what = f"{visible(str(x.dtype))} → {visible(str(y.dtype))}"
        extra = ""
        if change.stats is not None:
            extra = f"  {stats_text(change.stats)}"
        say(f"      {marks[change.status]} {visible(change.name)}  {change.status} {what}{extra}")
    if len(t.changes) > TENSORS_SHOWN:
        say(f"      … and {len(t.changes) - TENSORS_SHOWN} more (--json lists all)")


@command(
    epilog="""\b
Examples:
  git model log                  # every model's version changes on this branch
  git model log digits -n 5      # the last five versions of model 'digits'
  git model log digits --json
  git model log digits --plot accuracy             # chart in the terminal
  git model log digits --plot accuracy -o acc.png  # or .html / .svg to open later"""
)
@click.argument("name", required=False)
@click.option("-n", "--max-count", "limit", type=click.IntRange(min=1), help="Show N versions.")
@click.option("--rev", default="HEAD", show_default=True, help="Walk history from this commit.")
@click.option("--plot", "plot_metric", metavar="METRIC", help="Chart METRIC across versions.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the chart to a .png, .svg or .html file.",
)
@json_option
def log_cmd(
    name: str | None,
    limit: int | None,
    rev: str,
    plot_metric: str | None,
    output: str | None,
    as_json: bool,
) -> None:
    """List the versions of a model through history: one line per version change.

    Each line: the commit that introduced the version, its date, the short version hash and
    the latest metrics recorded on any commit carrying that version.
    """
    from ..ops.history import log

    with Context.open() as ctx:
        result = log(ctx, name, limit=limit, rev=rev)
    if plot_metric:
        _plot(result.entries, plot_metric, name or "all models", output)
        return
    if as_json:
        emit_json(result.to_json())
        return
    warn_all(result.warnings)
    if not result.entries:
        say("no model versions in this history yet: git model add PATH --model NAME")
    for e in result.entries:
        metrics = " ".join(f"{visible(k)}={fmt(v)}" for k, v in e.metrics.items())
        who = "" if name else f"{visible(e.model)}  "
        say(
            f"{style(e.commit[:10], fg='yellow')} {visible(e.date[:10])}  {who}"
            f"{style(visible(e.version[:12]), bold=True)}  {metrics or '-'}  {visible(e.subject)}"
        )


@command(
    epilog="""\b
Examples:
  git model show                 # the models at HEAD
  git model show v1 --json"""
)
@click.argument("rev", default="HEAD")
@json_option
def show_cmd(rev: str, as_json: bool) -> None:
    """Show the models at REV: version, components (oids), hyperparameters, metrics."""
    from ..ops.history import show

    with Context.open() as ctx:
        result = show(ctx, rev)
    if as_json:
        emit_json(result.to_json())
        return
    warn_all(result.warnings)
    say(f"commit {result.snapshot.commit} ({rev})")
    for m in result.models:
        say(style(f"model {visible(m['name'])}", bold=True) + f"  version {fmt(m['version'])}")
        say(f"  inputs          {visible(str(m['inputs']))}")
        for c in m["components"]:
            _render_part(c)
        for h in m["hyperparameters"]:
            where = "" if h["source"] == "inline" else f"  ({quote_path(h['source'])})"
            say(f"  hyperparameter  {visible(h['key'])} = {fmt(h['value'])}{where}")
        for key, v in m["metrics"].items():
            say(f"  metric          {visible(key)} = {fmt(v['value'])}  ({fmt(v['time'])})")
    if result.artifacts:
        say(style("artifacts outside models:", bold=True))
        for c in result.artifacts:
            _render_part(c)
    for key, v in result.metrics.items():
        if not result.models:
            say(f"metric {visible(key)} = {fmt(v['value'])}  ({fmt(v['time'])})")


def _render_part(c: dict[str, Any]) -> None:
    extra = ""
    if c["size"] is not None:
        extra = f"  {human_size(c['size'])}"
    if c["files"] is not None:
        extra += f", {c['files']} file{'' if c['files'] == 1 else 's'}"
    oid = visible(c["oid"][:12]) if c["oid"] else "(absent)"
    kind = visible(c["kind"] or "artifact").ljust(15)
    say(f"  {kind} {quote_path(c['path'])}  {oid}{extra}")


# -- metrics -------------------------------------------------------------------------------------


@click.group(
    epilog="""\b
Examples:
  git model metrics set accuracy=0.93 loss=0.12
  git model metrics set --model digits --file metrics.json
  git model metrics show HEAD~1""",
    context_settings={"help_option_names": ["-h", "--help"]},
)
def metrics_group() -> None:
    """Record metrics against a commit (kept in notes), or show them."""


@command(
    epilog="""\b
Examples:
  git model metrics set accuracy=0.93 loss=0.12
  git model metrics set f1=0.88 --rev v1 --model digits
  git model metrics set --file eval/metrics.json""",
)
@click.argument("values", nargs=-1)
@click.option(
    "--rev",
    default=None,
    help="The commit they describe (default: HEAD, or the next commit when the work tree's "
    "weights are not committed yet).",
)
@click.option(
    "--model", metavar="NAME", help="The model they describe (default: the whole commit)."
)
@click.option("--file", "file", metavar="PATH", help="Read a JSON object of metrics (- = stdin).")
@json_option
def metrics_set_cmd(
    values: tuple[str, ...], rev: str | None, model: str | None, file: str | None, as_json: bool
) -> None:
    """Record NAME=VALUE metrics (numbers or JSON values) on a commit.

    The commit is not rewritten: metrics go into its note on refs/notes/model.

    Recording again keeps the history; reports show the latest value of each metric.
    """
    from ..ops import metrics as ops

    metrics: dict[str, Any] = {}
    if file is not None:
        metrics.update(ops.load_file(file, sys.stdin.read() if file == "-" else None))
    metrics.update(ops.parse_args(values))
    with Context.open() as ctx:
        commit, record = ops.record_metrics(ctx, metrics, model=model, rev=rev)
    if as_json:
        emit_json({"format": 1, "commit": commit, "record": record})
        return
    target = f" for model {visible(model)}" if model else ""
    shown = " ".join(f"{visible(k)}={fmt(v)}" for k, v in record["metrics"].items())
    if commit is None:
        say(
            f"recorded{target}: {shown} — pending: the work tree's weights are not committed "
            "yet, so the metrics go on the commit that records them"
        )
    else:
        say(f"recorded on {commit[:10]}{target}: {shown}")


@command(epilog="Example: git model metrics show HEAD~1 --json")
@click.argument("rev", default="HEAD")
@json_option
def metrics_show_cmd(rev: str, as_json: bool) -> None:
    """Show the latest metrics recorded on REV (default HEAD).

    --json also lists every record, oldest first.
    """
    from ..ops.metrics import metrics_at

    with Context.open() as ctx:
        result = metrics_at(ctx, rev)
    if as_json:
        emit_json(result.to_json())
        return
    rows = result.latest()
    if not rows:
        say(f"no metrics recorded on {rev}: git model metrics set NAME=VALUE --rev {rev}")
    for model, name, v in rows:
        owner = f"{visible(model)}: " if model else ""
        say(f"{owner}{visible(name)} = {fmt(v.value)}  ({fmt(v.time)})")


metrics_group.add_command(metrics_set_cmd, "set")
metrics_group.add_command(metrics_show_cmd, "show")


def _plot(entries: list[Any], metric: str, title: str, output: str | None) -> None:
    from pathlib import Path

    from .plot import points, terminal_chart, write_chart

    pts = points(entries, metric)
    if output:
        say(f"wrote {write_chart(pts, metric, title, Path(output))}")
    else:
        say(terminal_chart(pts, metric, title))
