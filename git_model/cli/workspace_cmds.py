"""Commands that move bytes between the work tree and the cache."""

from __future__ import annotations

import json
import sys
from typing import BinaryIO

import click

from ..hashing import Oid
from ..ops.context import Context
from ..restore import RestoreReport
from ..termtext import quote_path, shell_quote, visible
from .app import command
from .render import emit_json, json_option, note, progress_bar, say, style, verbosity


@command(epilog="Example: git model init")
@click.option(
    "--no-hooks",
    is_flag=True,
    help="Leave the hook shims out (to add the hooks with the pre-commit framework instead).",
)
@json_option
def init_cmd(no_hooks: bool, as_json: bool) -> None:
    """Set git-model up in this clone: .gitmodel/, the local cache, hooks.

    Safe to run again. In a fresh clone it also restores the artifacts of HEAD. An existing
    hook keeps running (before git-model's); 'git model uninstall' puts it back as it was.
    """
    from ..manpage import link_where_man_looks
    from ..ops.init import init

    with Context.open(require_init=False) as ctx:
        result = init(ctx, hooks=not no_hooks)
    manual = link_where_man_looks()
    if as_json:
        emit_json(
            {
                "created": result.created,
                "hooks": result.hooks,
                "chained": result.chained,
                "hooks_dir": result.hooks_dir,
                "restored": result.restored,
                "not_restored": result.not_restored,
            }
        )
        return
    for path in result.created:
        say(f"created {quote_path(str(path))}")
    if result.hooks:
        say(f"installed hooks in {quote_path(str(result.hooks_dir))}: {', '.join(result.hooks)}")
    for hook in result.chained:
        say(f"  your existing {hook} hook still runs first (kept as {hook}.pre-git-model)")
    if result.restored:
        say(f"restored {result.restored} artifact file(s)")
    if result.not_restored:
        note(
            f"{result.not_restored} artifact file(s) could not be restored; "
            "'git model pull' says which, and why"
        )
    if manual is not None:
        say(
            f"linked the manual page where man finds it ('git model --help'): {quote_path(str(manual))}"
        )
    say("git-model is ready: track files with 'git model add PATH', then commit as usual")


@command(epilog="Example: git model uninstall")
@json_option
def uninstall_cmd(as_json: bool) -> None:
    """Remove git-model's hooks and merge driver from this clone.

    Hooks that were there before 'git model init' come back byte for byte, and 'git model
    watch' stops. .gitmodel/, the cache and your files stay; 'git model init' sets the hooks
    up again.
    """
    from ..git import Repo
    from ..ops.hookinstall import uninstall
    from ..ops.watch import stop_at

    repo = Repo.discover()
    report = uninstall(repo)
    watching = stop_at(str(repo.git_dir / "model"))  # (nothing would ask it any more)
    if as_json:
        emit_json(
            {
                "hooks_dir": str(report.hooks_dir),
                "removed": report.removed,
                "restored": report.restored,
                "left": report.foreign,
                "watch_stopped": watching.running,
            }
        )
        return
    if watching.running:
        say(f"stopped watching (pid {watching.pid})")
    if report.removed:
        say(f"removed hooks from {report.hooks_dir}: {', '.join(report.removed)}")
    if report.restored:
        say(f"restored your earlier hooks: {', '.join(report.restored)}")
    for hook in report.foreign:
        note(f"{hook} is not git-model's shim: left it and {hook}.pre-git-model as they are")
    say("git-model hooks are off in this clone; 'git model init' turns them back on")


@command(
    epilog="""\b
Examples:
  git model add model.safetensors data/train      # the repository's model: weights, data
  git model add model.pt --model digits            # weights of model 'digits'
  git model add data/train --model digits --kind data
  git model add params.yaml --model digits --kind params
  git model add --model digits --param train.lr=0.001 --param layers='[64, 32]'"""
)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--model",
    "model",
    metavar="NAME",
    help="Make the paths components of this model (default: the repository's default model, "
    "named in .gitmodel/config.toml: default_model).",
)
@click.option(
    "--kind",
    type=click.Choice(["weights", "data", "params", "code"]),
    help="Component kind (default: inferred: a directory is data, a model file weights; "
    "asked for otherwise). params and code stay in git.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set an inline hyperparameter of the model (value read as JSON, else text). Repeatable.",
)
@json_option
def add_cmd(
    paths: tuple[str, ...],
    model: str | None,
    kind: str | None,
    params: tuple[str, ...],
    as_json: bool,
) -> None:
    """Track files or directories: hash them, store them in the cache, keep them out of git.

    Without --model, a path no model has yet joins the repository's default model, made on
    first use and named after the repository's folder ('git model rename' renames it).
    """
    from ..ops.add import add

    with Context.open() as ctx:
        bar = progress_bar(None, "hashing")
        try:
            result = add(
                ctx,
                list(paths),
                model=model,
                kind=kind,
                params=list(params),
                progress=bar.update if bar else None,
            )
        finally:
            if bar:
                bar.close()
    if as_json:
        emit_json(result.to_json())
        return
    model_name = visible(result.model or "")
    for path in result.untracked_from_git:
        note(
            f"{quote_path(path)} was in git's index: it is now kept by git-model instead (git rm --cached)"
        )
    if result.created_model:
        say(
            f"created model {model_name}, this repository's default model "
            f"(rename it: git model rename {shell_quote(result.model or '')} NEW)"
        )
    for path in result.added:
        kind_of = result.kinds.get(path)
        into = f" to model {model_name} as {kind_of}" if kind_of else ""
        say(f"added {quote_path(path)}{into}")
    for state, group in (("updated", result.updated), ("unchanged", result.unchanged)):
        for path in group:
            kind_of = result.kinds.get(path)  # (an artifact that was in no model joins one)
            joined = f" (now in model {model_name} as {kind_of})" if kind_of else ""
            say(f"{state} {quote_path(path)}{joined}")
    for key, value in sorted(result.params.items()):
        shown = visible(json.dumps(value, ensure_ascii=False))
        say(f"set {visible(key)} = {shown} on model {model_name}")
    say("commit to record them: git commit -m '...'")


@command(epilog="Example: git model rm data/old")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def rm_cmd(paths: tuple[str, ...]) -> None:
    """Stop tracking paths; the files stay in the work tree."""
    from ..ops.maintenance import rm

    with Context.open() as ctx:
        for rel in rm(ctx, list(paths)):
            say(f"no longer tracking {quote_path(rel)} (the file is still there)")


@command(epilog="Example: git model status --json")
@json_option
def status_cmd(as_json: bool) -> None:
    """Show, per artifact: unchanged, modified, missing, or not in cache."""
    from ..ops.status import MISSING, MODIFIED, NOT_IN_CACHE, status

    with Context.open() as ctx:
        rows = status(ctx)
    if as_json:
        emit_json({"artifacts": [r.to_json() for r in rows]})
        return
    if not rows:
        say("no artifacts tracked yet: git model add PATH")
        return
    colours = {MODIFIED: "yellow", MISSING: "red", NOT_IN_CACHE: "magenta"}
    width = max(len(r.state) for r in rows)
    for r in rows:
        label = style(r.state.ljust(width), fg=colours.get(r.state, "green"))
        extra = ""
        if r.added or r.removed or r.modified:
            extra = f"  (+{len(r.added)} -{len(r.removed)} ~{len(r.modified)} files)"
        say(f"{label}  {quote_path(r.path)}{extra}")
        if verbosity() > 0:
            _render_files(r.path, r.added, r.removed, r.modified)
    missing = [r.path for r in rows if r.state == MISSING]
    if missing:
        paths = " ".join(shell_quote(p) for p in missing)
        note(f"put back what is missing: git model checkout -- {paths} (or: git model rm {paths})")
    modified = [r.path for r in rows if r.state == MODIFIED]
    if modified:
        # `git commit` alone would find nothing to commit (git decides before its hook runs)
        paths = " ".join(shell_quote(p) for p in modified)
        say(f"record the change: git model add {paths} && git commit")


def _render_files(directory: str, *groups: list[str]) -> None:
    """status -v: the files that differ inside a directory, each path quoted as git does."""
    for mark, files in zip("+-~", groups):
        for rel in files:
            say(f"    {mark} {quote_path(f'{directory}/{rel}')}")


def restore_json(report: RestoreReport) -> dict[str, object]:
    """What checkout prints with --json, and pull under `"checkout"`."""
    return {
        "written": report.written,
        "removed": report.removed,
        "unchanged": report.unchanged,
        "saved": [{"path": p, "oid": o} for p, o in report.saved],
        "missing": [{"path": p, "oid": o} for p, o in report.missing],
        "corrupt": [{"path": p, "oid": o} for p, o in report.corrupt],
    }


def render_restore(report: RestoreReport, as_json: bool) -> int:
    if as_json:
        emit_json(restore_json(report))
    else:
        say(
            f"restored {report.files_written} file(s), {report.unchanged} already up to date"
            + (f", removed {len(report.removed)}" if report.removed else "")
        )
    for path, oid in report.saved:
        note(
            f"your version of {quote_path(path)} was kept in the cache: "
            f"git model cat {oid} > {shell_quote(path)}"
        )
    for path, oid in report.missing:
        note(f"{quote_path(path)}: object {oid[:12]} is not in the cache; run 'git model pull'")
    for path, oid in report.corrupt:
        note(
            f"{quote_path(path)}: cache object {oid[:12]} was corrupt and is quarantined; run 'git model pull'"
        )
    return 0 if report.ok else 1


@command(
    epilog="""\b
Examples:
  git model checkout                 # repair drift after 'git reset --hard' or 'git stash'
  git model checkout v1 -- model.pt  # put v1's weights in the work tree (HEAD stays)
  git model checkout digits@prod     # roll back: prod's weights and data (also NAME@v1.2.0)"""
)
@click.argument("rev", required=False)
@click.argument("paths", nargs=-1, type=click.Path())
@json_option
def checkout_cmd(rev: str | None, paths: tuple[str, ...], as_json: bool) -> int:
    """Make the work tree's artifacts match REV's manifest (default: the work tree's own).

    REV may name a registered model version (NAME@v1.2.0, NAME@prod, NAME#prod): then only
    that model's weights and data are restored, and HEAD stays where it is.
    Only files that differ are written, each verified as it is copied. Work-tree bytes that
    would be replaced are kept in the cache first, and the message says how to get them back.
    """
    from ..ops.checkout import checkout, default_fetcher

    with Context.open() as ctx:
        commit, model = None, None
        if rev:
            from ..ops.registry import resolve_model_rev

            commit, model = resolve_model_rev(ctx, rev)
        fetch = default_fetcher(ctx)
        report = checkout(
            ctx, commit, list(paths) or None, fetch=fetch, model=model, keep_paths=as_json
        )
    if model is not None and commit is not None and not as_json:
        note(
            f"{visible(model)} as of {visible(rev or '')} ({commit[:10]}); HEAD did not move: 'git model checkout' puts HEAD's back"
        )
    return render_restore(report, as_json)


@command(epilog="Example: git model verify")
@json_option
def verify_cmd(as_json: bool) -> int:
    """Re-hash every cache object; move corrupt ones to the quarantine folder (exit 1)."""
    from ..ops.maintenance import verify

    with Context.open() as ctx:
        result = verify(ctx)
    if as_json:
        emit_json(
            {
                "checked": result.checked,
                "corrupt": result.corrupt,
                "quarantine": str(result.quarantine) if result.quarantine else None,
            }
        )
    else:
        say(f"checked {result.checked} object(s): {len(result.corrupt)} corrupt")
        for oid in result.corrupt:
            say(f"corrupt {oid} -> moved to {quote_path(str(result.quarantine))}")
        if result.corrupt:
            note(
                "run 'git model pull' to fetch good copies, or 'git model add' the originals again"
            )
    return 1 if result.corrupt else 0


def _open_object(ctx: Context, oid: Oid) -> BinaryIO:
    """A cache object, or a file the cache holds by parts (rebuilt, verified)."""
    from ..partstore import open_rebuilt, recipe

    parts = None if ctx.cache.has(oid) else recipe(ctx.cache, oid)
    return ctx.cache.open(oid) if parts is None else open_rebuilt(ctx.cache, parts, oid, oid.short)


@command(epilog="Example: git model cat 3f2a… > model.pt")
@click.argument("oid")
def cat_cmd(oid: str) -> int:
    """Write a cache object's bytes to stdout, verified against its oid."""
    import hashlib

    from ..errors import CorruptObject, UsageError

    try:
        wanted = Oid(oid)
    except ValueError:
        raise UsageError(f"{oid!r} is not a sha256 oid (64 hex digits)") from None
    with Context.open() as ctx, _open_object(ctx, wanted) as f:
        digest = hashlib.sha256()
        out = sys.stdout.buffer
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
    if digest.hexdigest() != wanted:
        raise CorruptObject(f"object {wanted.short} is corrupt; run 'git model verify'")
    return 0
