"""`git model run`: train only when these exact inputs were never trained before.

1. The model's input hash (versions.py, input recipe 1) is computed from the work tree as it
   is: data directories through the stat cache, params and code files as they are on disk,
   inline hyperparameters from the work tree's manifest. Uncommitted inputs are allowed (and
   named): the run describes the work tree.
2. Unless `--force` or `--check`, trained.py looks for a commit of any ref whose model has that
   input hash (checked against the commit itself, never taken from a note alone). Found: its
   outputs (the model's weights, and any `--outputs` recorded with them) are restored from the
   cache (or the default remote) into the work tree and the manifest, and CMD is not run.
   No commit has it: an earlier run here that is not committed yet may have (local_runs.py).
3. Otherwise CMD runs with its output streaming through, and its exit code is returned. Metrics
   it records with `git_model.log_metrics` (or `git model metrics set`) are collected aside
   (`GIT_MODEL_RUN_METRICS`) and only once CMD succeeded are the outputs hashed, stored and
   recorded in the manifest (and in local_runs), and the metrics kept pending for the commit
   that records these outputs. A failed or interrupted CMD changes nothing git-model records.
4. `--check` reruns CMD and compares the outputs' hashes with the ones the manifest records
   (a determinism check); nothing is recorded, and the recorded outputs are put back (the
   rerun's bytes stay in the cache, as any checkout keeps what it replaces).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GitModelError, UsageError
from ..gitignore import ensure_ignored
from ..listing import listing_path
from ..manifest import MANIFEST_PATH, Manifest, Model
from ..paths import GITMODEL_DIR, is_within, to_relpath
from ..versions import INPUT_KINDS, component_oids, model_inputs, refresh_versions
from . import local_runs
from . import metrics as metrics_ops
from .add import add
from .checkout import checkout, default_fetcher, restore
from .context import Context
from .trained import Trained, find_trained, metrics_of

REUSED, RAN, FAILED, CHECKED = "reused", "ran", "failed", "checked"


@dataclass
class RunResult:
    model: str
    inputs: str
    action: str = RAN  # reused | ran | failed | checked
    exit_code: int = 0
    uncommitted: list[str] = field(default_factory=list)  # inputs that differ from HEAD's
    reused: dict[str, Any] | None = None  # commit, name, version, metrics, restored
    outputs: dict[str, str] = field(default_factory=dict)  # path -> oid recorded or compared
    differ: list[dict[str, Any]] = field(default_factory=list)  # --check: path, recorded, now
    metrics: list[dict[str, Any]] = field(default_factory=list)  # records CMD made
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "model": self.model,
            "inputs": self.inputs,
            "action": self.action,
            "exit_code": self.exit_code,
            "uncommitted_inputs": self.uncommitted,
            "reused": self.reused,
            "outputs": [{"path": p, "oid": o} for p, o in sorted(self.outputs.items())],
            "differ": self.differ,
            "records": self.metrics,
            "warnings": self.warnings,
        }


def check_command(cmd: list[str]) -> None:
    """CMD must name a program that exists, before anything is hashed or run."""
    if not cmd:
        raise UsageError("give the command to run after --: git model run -- python train.py")
    if shutil.which(cmd[0]) is None:
        raise GitModelError(
            f"command not found: {cmd[0]}; give a program on PATH or a path to an "
            "executable script (git model run -- python train.py)"
        )


def choose_model(manifest: Manifest, name: str | None) -> Model:
    if name is not None:
        if name not in manifest.models:
            have = ", ".join(sorted(manifest.models)) or "none yet"
            raise GitModelError(f"no model {name!r} in the work tree (models: {have})")
        return manifest.models[name]
    if len(manifest.models) == 1:
        return next(iter(manifest.models.values()))
    if not manifest.models:
        raise GitModelError(
            "no model is declared yet: git model add model.pt --model NAME, "
            "then its data, params and code"
        )
    have = ", ".join(sorted(manifest.models))
    raise UsageError(f"there are several models ({have}): choose one with --model NAME")


def run(
    ctx: Context,
    cmd: list[str],
    *,
    model: str | None = None,
    outputs: list[str] | None = None,
    force: bool = False,
    check: bool = False,
    announce: Callable[[RunResult], None] | None = None,
) -> RunResult:
    """See the module doc. `announce` is called with the result so far (inputs, uncommitted
    inputs, warnings) before CMD runs or outputs are restored, so people read it first."""
    check_command(cmd)
    manifest = ctx.manifest(None).copy()
    chosen = choose_model(manifest, model)
    extra = _output_paths(ctx, chosen, outputs or [])
    _scan_inputs(ctx, manifest, chosen)
    inputs = str(model_inputs(chosen, manifest, ctx.reader(None)))
    result = RunResult(chosen.name, inputs)
    result.uncommitted = _uncommitted(ctx, manifest, chosen)
    found = None
    if not force and not check:
        search = find_trained(ctx, chosen.name, inputs)
        result.warnings += search.warnings
        found = search.found or local_runs.find(ctx, chosen.name, inputs)
    if announce is not None:
        announce(result)
    if check:
        return _check(ctx, cmd, chosen, extra, result)
    if found is not None and _reuse(ctx, found, result):
        return result
    code, captured = run_command(ctx, cmd)
    result.exit_code = code
    if code != 0:
        result.action = FAILED
        return result
    outs = sorted(set(chosen.weights) | set(extra))
    result.outputs = _record_outputs(ctx, chosen.name, outs, sorted(chosen.data))
    result.metrics = _keep_metrics(ctx, captured)
    try:
        local_runs.save(ctx, chosen.name, inputs, outs)
    except OSError as e:  # the run is recorded; only the next run's shortcut is lost
        result.warnings.append(f"this run is recorded, but not remembered for the next one ({e})")
    return result


def _output_paths(ctx: Context, model: Model, given: list[str]) -> list[str]:
    rels = [to_relpath(ctx.root, p) for p in given]
    inputs = {p: k for k in INPUT_KINDS for p in getattr(model, k)}
    for rel in rels:
        if is_within(rel, GITMODEL_DIR):
            raise UsageError(f"{rel} is git-model's own metadata; it cannot be an output")
        for path, kind in inputs.items():
            if is_within(rel, path) or is_within(path, rel):
                raise UsageError(
                    f"{rel} is an input ({kind} {path}) of model {model.name}, not an output; "
                    "outputs are what the command writes"
                )
    if not model.weights and not rels:
        raise UsageError(
            f"model {model.name} has no weights to record: name them with --outputs PATH "
            f"(or git model add PATH --model {model.name})"
        )
    return rels


def _scan_inputs(ctx: Context, manifest: Manifest, model: Model) -> None:
    """The model's data as the work tree holds it now (hashed through the stat cache)."""
    ws = ctx.workspace()
    for path in model.data:
        scanned = ws.scan(path, store=False)
        if scanned is None:
            raise GitModelError(
                f"{path} (data of model {model.name}) is missing from the work tree; "
                "'git model checkout' puts it back"
            )
        manifest.artifacts[path] = scanned.artifact
    ws.state.flush()


def _uncommitted(ctx: Context, manifest: Manifest, model: Model) -> list[str]:
    """Inputs (paths, or "hyperparameters") that differ from HEAD's: allowed, and named."""
    if ctx.repo.head() is None:
        return ["(no commit yet)"]
    head = ctx.manifest("HEAD")
    before = head.models.get(model.name)
    if before is None:
        return [f"model {model.name} (not committed yet)"]
    ours = component_oids(model, manifest, ctx.reader(None), INPUT_KINDS)
    theirs = component_oids(before, head, ctx.reader("HEAD"), INPUT_KINDS)
    out = sorted({p for _, p, _ in set(ours) ^ set(theirs)})
    if model.hyperparameters != before.hyperparameters:
        out.append("inline hyperparameters")
    return out


# -- reuse ---------------------------------------------------------------------------------------


def _reuse(ctx: Context, found: Trained, result: RunResult) -> bool:
    """Restore the outputs `found` recorded; False (and a warning) when their bytes are not
    to be had, so the caller trains instead."""
    there = found.manifest.models[found.model]
    paths = sorted(there.weights)
    try:
        if found.read is None:
            report = checkout(ctx, found.commit, paths, fetch=default_fetcher(ctx))
        else:  # an uncommitted run: its bytes are in this cache or nowhere
            with ctx.lock("git model run"):
                report = restore(ctx, found.manifest, found.read, paths)
        if not report.ok:
            lost = [p for p, _ in report.missing + report.corrupt]
            raise GitModelError(f"{', '.join(lost)} not in the cache nor on the default remote")
    except GitModelError as e:
        result.warnings.append(
            f"{found.name} trained these inputs, but its outputs cannot be restored ({e}); "
            "running the command instead"
        )
        return False
    _adopt(ctx, found, paths)
    result.action = REUSED
    result.outputs = {p: str(found.manifest.artifacts[p].oid) for p in paths}
    result.reused = {
        "commit": found.commit or None,
        "name": found.name,
        "version": found.version,
        "metrics": metrics_of(ctx, found),
        "restored": sorted(report.written),
    }
    return True


def _adopt(ctx: Context, found: Trained, paths: list[str]) -> None:
    """The work tree's manifest takes the outputs `found` recorded (listings included)."""
    with ctx.lock("git model run"):
        manifest = ctx.manifest(None)
        model = manifest.models[found.model]
        if set(paths) <= set(model.weights) and all(
            manifest.artifacts.get(p) == found.manifest.artifacts[p] for p in paths
        ):
            return  # the work tree's manifest records them already
        staged = [MANIFEST_PATH]
        read = found.read or ctx.reader(found.commit)
        for path in paths:
            art = found.manifest.artifacts[path]
            manifest.artifacts[path] = art
            if art.is_dir:
                data = read(listing_path(path))
                if data is not None:
                    ctx.write_file(listing_path(path), data)
                    staged.append(listing_path(path))
        model.weights = sorted(set(model.weights) | set(paths))
        if ensure_ignored(ctx.root, paths):
            staged.append(".gitignore")
        refresh_versions(manifest, ctx.reader(None))
        ctx.write_manifest(manifest)
        ctx.repo.add(sorted(staged))


# -- running -------------------------------------------------------------------------------------


def run_command(
    ctx: Context, cmd: list[str], cwd: Path | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """Run CMD in `cwd` (the work tree's top) with its output streaming through; its exit code
    and the metrics records it made. Ctrl-C reaches CMD (same process group); once it has
    ended, KeyboardInterrupt is raised here and nothing is kept."""
    fd, capture = tempfile.mkstemp(prefix="run-metrics-", suffix=".jsonl", dir=ctx.cache.tmp)
    os.close(fd)
    env = {**os.environ, metrics_ops.CAPTURE_ENV: capture}
    try:
        proc = subprocess.Popen(cmd, cwd=cwd or ctx.root, env=env)
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            proc.wait()  # Ctrl-C reached CMD too: let it finish as it chooses
            raise
        captured = metrics_ops.read_captured(Path(capture)) if code == 0 else []
    finally:
        with contextlib.suppress(OSError):
            os.unlink(capture)
    return (128 - code if code < 0 else code), captured


def _record_outputs(ctx: Context, name: str, outs: list[str], data: list[str]) -> dict[str, str]:
    missing = [p for p in outs if not os.path.lexists(ctx.root / p)]
    if missing:
        raise GitModelError(
            f"the command succeeded but did not write {', '.join(missing)}; nothing was "
            "recorded (write the outputs where the manifest says, or name them with --outputs)"
        )
    add(ctx, outs, model=name, kind="weights")
    if data:
        add(ctx, data, model=name, kind="data")
    manifest = ctx.manifest(None)
    return {p: str(manifest.artifacts[p].oid) for p in outs}


def _keep_metrics(ctx: Context, captured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What CMD recorded goes where `log_metrics` would have put it now that the outputs are
    recorded: pending for the commit that records them (or on HEAD if it already does)."""
    kept = []
    for rec in captured:
        model = rec.get("model") if isinstance(rec.get("model"), str) else None
        _, record = metrics_ops.record_metrics(ctx, rec["metrics"], model=model)
        kept.append(record)
    return kept


# -- --check -------------------------------------------------------------------------------------


def _check(
    ctx: Context, cmd: list[str], model: Model, extra: list[str], result: RunResult
) -> RunResult:
    recorded = ctx.manifest(None)
    outs = sorted(set(model.weights) | set(extra))
    unknown = [p for p in outs if p not in recorded.artifacts]
    if unknown:
        raise GitModelError(
            f"no recorded hash to compare for {', '.join(unknown)}; run without --check "
            "first (git model run -- CMD) to record the outputs"
        )
    code, _ = run_command(ctx, cmd)
    result.exit_code = code
    if code != 0:
        result.action = FAILED
        return result
    result.action = CHECKED
    ws = ctx.workspace()
    for path in outs:
        scanned = ws.scan(path, store=False)
        now = None if scanned is None else str(scanned.artifact.oid)
        was = str(recorded.artifacts[path].oid)
        result.outputs[path] = was
        if now != was:
            result.differ.append({"path": path, "recorded": was, "now": now})
    ws.state.flush()
    if result.differ:  # a check records nothing: the recorded outputs go back where they were
        report = checkout(ctx, None, [d["path"] for d in result.differ], fetch=default_fetcher(ctx))
        lost = [p for p, _ in report.missing + report.corrupt]
        if lost:
            result.warnings.append(
                f"the recorded {', '.join(lost)} could not be put back (not in the cache nor on "
                "the default remote): the work tree holds this run's outputs"
            )
    return result
