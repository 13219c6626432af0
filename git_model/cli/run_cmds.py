"""The training loop: `git model run` (train unless these inputs were trained already) and
`git model bisect` (which commit made a metric cross a line)."""

from __future__ import annotations

import click

from ..errors import UsageError
from ..ops.context import Context
from ..termtext import quote_path, visible
from .app import command
from .render import emit_json, json_option, note, say, style
from .version_cmds import fmt, render_diff, warn_all


@command(
    epilog="""\b
Examples:
  git model run -- python train.py           # trains, or restores what these inputs gave
  git model run --model digits --outputs eval/report.json -- python train.py
  git model run --force -- python train.py   # train even if already trained
  git model run --check -- python train.py   # rerun: are the outputs the same bytes?""",
    context_settings={"help_option_names": ["-h", "--help"], "ignore_unknown_options": True},
)
@click.option("--model", metavar="NAME", help="The model CMD trains (needed if there are several).")
@click.option(
    "--outputs",
    "outputs",
    multiple=True,
    metavar="PATH",
    help="Another file or directory CMD writes, recorded with the weights (repeatable).",
)
@click.option("--force", is_flag=True, help="Run CMD even if these inputs were trained already.")
@click.option(
    "--check", is_flag=True, help="Rerun CMD and compare its outputs with the recorded hashes."
)
@json_option
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED, required=True)
def run_cmd(
    model: str | None,
    outputs: tuple[str, ...],
    force: bool,
    check: bool,
    as_json: bool,
    cmd: tuple[str, ...],
) -> int:
    """Run the training command CMD unless these exact inputs were trained before.

    The model's input hash (data, params, code, inline hyperparameters: everything but the
    weights) is computed from the work tree. If a commit of any local or fetched branch or tag
    holds a version trained from the same inputs (checked against that commit, not taken from
    its note), or an earlier run here did and is not committed yet, its weights are restored
    into the work tree instead of running CMD. Otherwise CMD runs (its exit code is git model
    run's); when it succeeds its outputs are hashed, stored and recorded in the manifest
    (staged), and the metrics it records with git_model.log_metrics wait for the commit. A
    failed or interrupted CMD records nothing. --check records nothing either: it says which
    outputs differ, then puts the recorded ones back.
    """
    from ..ops.run import CHECKED, FAILED, REUSED, RunResult, run

    if force and check:
        raise UsageError("--force and --check do not go together: --check always runs CMD")
    announced: list[str] = []

    def announce(result: RunResult) -> None:
        if as_json:
            return
        announced.extend(result.warnings)
        warn_all(result.warnings)
        if result.uncommitted:
            note(
                f"inputs not committed yet: {', '.join(map(quote_path, result.uncommitted))} "
                "(allowed: the run "
                "uses them as the work tree holds them; commit them with the outputs)"
            )

    with Context.open() as ctx:
        result = run(
            ctx,
            list(cmd),
            model=model,
            outputs=list(outputs),
            force=force,
            check=check,
            announce=announce,
        )
    if as_json:
        emit_json(result.to_json())
        return result.exit_code or (1 if result.differ else 0)
    warn_all(result.warnings[len(announced) :])  # (found after CMD or the restore began)
    label = f"model {result.model}, inputs {result.inputs[:12]}"
    if result.action == REUSED:
        assert result.reused is not None
        r = result.reused
        metrics = (
            " ".join(f"{visible(k)}={visible(fmt(v))}" for k, v in r["metrics"].items())
            or "no metrics"
        )
        where = (
            f"at {r['commit'][:10]} ({visible(r['name'])})"
            if r["commit"]
            else "by an earlier run, not committed yet"
        )
        say(
            style("already trained: ", bold=True)
            + f"{label} {where}, version {r['version'][:12]}, {metrics}"
        )
        restored = ", ".join(map(quote_path, r["restored"]))
        say(
            f"restored {restored} from the cache instead of running"
            if restored
            else "its outputs are already in the work tree; nothing to run"
        )
        say("(git model run --force -- … trains anyway)")
    elif result.action == FAILED:
        note(f"the command exited {result.exit_code}; nothing was recorded")
    elif result.action == CHECKED:
        if not result.differ:
            same = ", ".join(map(quote_path, result.outputs))
            say(f"same outputs: {same} hash as recorded ({label})")
        else:
            for d in result.differ:
                now = d["now"][:12] if d["now"] else "(not written)"
                say(f"differs: {quote_path(d['path'])}: recorded {d['recorded'][:12]}, now {now}")
            if not result.warnings:
                say(
                    "not deterministic (or its inputs changed): the work tree holds the recorded "
                    "outputs again, this run's are kept in the cache (--json gives their oids)"
                )
            return 1
    else:
        shown = ", ".join(f"{quote_path(p)} {oid[:12]}" for p, oid in result.outputs.items())
        say(f"recorded {label}: {shown}")
        for rec in result.metrics:
            values = " ".join(f"{visible(k)}={visible(fmt(v))}" for k, v in rec["metrics"].items())
            say(f"metrics {values} wait for the commit that records these outputs")
    return result.exit_code


@command(
    epilog="""\b
Examples:
  git model bisect accuracy --min 0.9                 # from the first commit to HEAD
  git model bisect accuracy --min 0.9 v1.0 HEAD       # between two commits
  git model bisect loss --worse-than v1.0 --run 'python evaluate.py'
  git model bisect accuracy --max 0.99 --json"""
)
@click.argument("metric")
@click.argument("revs", nargs=-1)
@click.option("--min", "min_", type=float, metavar="X", help="The metric must stay >= X.")
@click.option("--max", "max_", type=float, metavar="X", help="The metric must stay <= X.")
@click.option("--worse-than", metavar="REV", help="The metric must not be worse than at REV.")
@click.option("--model", metavar="NAME", help="The model the metric describes.")
@click.option(
    "--run",
    "run_command",
    metavar="CMD",
    help="Shell command that evaluates a commit lacking the metric (in a temporary worktree).",
)
@json_option
def bisect_cmd(
    metric: str,
    revs: tuple[str, ...],
    min_: float | None,
    max_: float | None,
    worse_than: str | None,
    model: str | None,
    run_command: str | None,
    as_json: bool,
) -> int:
    """Find the first commit from GOOD to BAD (default: the first commit to HEAD) whose METRIC
    crosses the line, and show what changed in it.

    Walks the first-parent path. From the notes alone when every commit has the metric (a
    commit that did not change the model keeps its version's metric); with --run CMD, commits
    that lack it are evaluated as git bisect would (at most log2(n) + 2 runs), each in a
    temporary worktree, and the metrics CMD records with git_model.log_metrics are added to
    their notes. Your work tree and HEAD are not touched. With --worse-than REV, worse is the
    direction BAD moved in from REV's value.
    """
    from ..ops.bisect import MAX, MIN, WORSE, Line, bisect, culprit_diff
    from ..ops.evaluate import worktree_evaluator

    given = [x for x in (min_, max_, worse_than) if x is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of --min X, --max X, --worse-than REV")
    if len(revs) > 2:
        raise UsageError("give at most GOOD and BAD: git model bisect METRIC --min X GOOD BAD")
    if min_ is not None:
        line = Line(MIN, min_)
    elif max_ is not None:
        line = Line(MAX, max_)
    else:
        line = Line(WORSE, 0.0, worse_than)
    good = revs[0] if revs else None
    bad = revs[1] if len(revs) == 2 else "HEAD"
    with Context.open() as ctx:
        evaluate = worktree_evaluator(ctx, run_command) if run_command else None
        result = bisect(ctx, metric, line=line, good=good, bad=bad, model=model, evaluate=evaluate)
        culprit_diff(ctx, result)
    if as_json:
        emit_json(result.to_json())
        return 0
    warn_all(result.warnings)
    first, last = result.path[0].commit, result.path[-1].commit
    runs = f"; evaluated {len(result.evaluated)} with --run" if run_command else ""
    say(
        f"{metric} {line.describe()} on {len(result.path)} commits "
        f"{first[:10]}..{last[:10]} (first parents){runs}"
    )
    assert result.culprit is not None
    p = result.path[result.culprit]
    before = result.path[result.culprit - 1] if result.culprit > 0 else None
    was = (
        f" (before: {before.value:g} at {before.commit[:10]})"
        if before and before.value is not None
        else ""
    )
    value = "?" if p.value is None else f"{p.value:g}"
    say(
        style("first commit that crosses: ", bold=True)
        + f"{style(p.commit[:10], fg='yellow')} {visible(p.subject)}"
        + f"  {metric} = {value}{was}"
    )
    if result.diff is not None:
        render_diff(result.diff)
    return 0
