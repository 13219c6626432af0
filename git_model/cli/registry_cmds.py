"""Registry commands: tag a model version, promote and demote it, list the registry."""

from __future__ import annotations

from typing import Any

import click

from ..ops.context import Context
from ..ops.registry import Event, ModelEntry, Version
from ..termtext import visible
from .app import command
from .render import emit_json, json_option, note, say, style

message_option = click.option("-m", "--message", help="Tag message (default: GTO's).")

VERBS = {
    "registration": "registered",
    "deregistration": "deregistered",
    "assignment": "promoted",
    "unassignment": "demoted",
    "deprecation": "deprecated",
    "creation": "created",
}


def _short(text: str | None, n: int = 12) -> str:
    return visible(text[:n]) if text else "-"


def _share(tags: list[str]) -> None:
    note(f"share it: git push origin {' '.join(map(visible, tags))}   (or: git push --tags)")


@command(
    epilog="""\b
Examples:
  git model tag digits                    # HEAD's digits as the next patch version
  git model tag digits --bump minor       # v0.3.1 -> v0.4.0
  git model tag digits HEAD~2 --version v1.0.0"""
)
@click.argument("name")
@click.argument("rev", default="HEAD")
@click.option("--version", "version", metavar="vX.Y.Z", help="The version number to give.")
@click.option("--bump", type=click.Choice(["major", "minor", "patch"]), help="Default: patch.")
@message_option
@click.option(
    "--allow-duplicate",
    "--force",
    "allow_duplicate",
    is_flag=True,
    help="Register a model version that is already registered under another number.",
)
@json_option
def tag_cmd(
    name: str,
    rev: str,
    version: str | None,
    bump: str | None,
    message: str | None,
    allow_duplicate: bool,
    as_json: bool,
) -> None:
    """Register the model version NAME has at REV as the annotated tag NAME@vX.Y.Z (GTO's)."""
    from ..ops.registry_write import register

    with Context.open() as ctx:
        v = register(
            ctx,
            name,
            rev,
            version=version,
            bump=bump,
            message=message,
            allow_duplicate=allow_duplicate,
        )
    tag = f"{name}@{v.version}"
    if as_json:
        emit_json(
            {
                "model": name,
                "version": v.version,
                "tag": tag,
                "commit": v.commit,
                "version_hash": v.version_hash,
                "metrics": v.metrics,
            }
        )
        return
    say(f"registered {visible(tag)} at {v.commit[:10]} (model version {_short(v.version_hash)})")
    _share([tag])


@command(
    epilog="""\b
Examples:
  git model promote digits prod v1.2.0   # v1.2.0 goes to prod
  git model promote digits staging       # HEAD's version (registered first if needed)
  git model checkout digits@prod         # put prod's weights in the work tree"""
)
@click.argument("name")
@click.argument("stage")
@click.argument("target", metavar="[VERSION|REV]", required=False)
@message_option
@json_option
def promote_cmd(
    name: str, stage: str, target: str | None, message: str | None, as_json: bool
) -> None:
    """Assign STAGE to a version of NAME with a new tag NAME#STAGE#N (GTO's format)."""
    from ..ops.registry_write import promote

    with Context.open() as ctx:
        version, tag, registered = promote(ctx, name, stage, target, message=message)
    if as_json:
        emit_json(
            {
                "model": name,
                "stage": stage,
                "version": version.version,
                "commit": version.commit,
                "version_hash": version.version_hash,
                "tag": tag,
                "registered": f"{name}@{registered.version}" if registered else None,
            }
        )
        return
    tags = [tag]
    if registered is not None:
        say(f"registered {visible(name)}@{visible(registered.version)} at {registered.commit[:10]}")
        tags.insert(0, f"{name}@{registered.version}")
    say(f"{visible(name)} {visible(version.version)} is now in {visible(stage)} ({visible(tag)})")
    _share(tags)


@command(
    epilog="""\b
Examples:
  git model demote digits staging          # no version of digits is in staging any more
  git model demote digits prod v1.3.0      # only v1.3.0 leaves prod: the one before holds it"""
)
@click.argument("name")
@click.argument("stage")
@click.argument("version", required=False)
@message_option
@json_option
def demote_cmd(
    name: str, stage: str, version: str | None, message: str | None, as_json: bool
) -> None:
    """Take STAGE away from NAME's versions (or one VERSION) with NAME#STAGE!#N tags."""
    from ..ops.registry import load_registry
    from ..ops.registry_write import demote

    with Context.open() as ctx:
        removed = demote(ctx, name, stage, version, message=message)
        holder = load_registry(ctx, details=False).model(name).stages.get(stage)
    if as_json:
        emit_json(
            {
                "model": name,
                "stage": stage,
                "removed": [{"version": v.version, "tag": t} for v, t in removed],
                "now": holder.version if holder else None,
            }
        )
        return
    for v, t in removed:
        say(f"{visible(name)} {visible(v.version)} left {visible(stage)} ({visible(t)})")
    if holder is not None:
        say(f"{visible(stage)} is now held by {visible(name)} {visible(holder.version)}")
    _share([t for _, t in removed])


@command(
    epilog="""\b
Examples:
  git model registry                 # every model: latest version, stages, metrics
  git model registry digits --json   # one model's versions and full history"""
)
@click.argument("name", required=False)
@json_option
def registry_cmd(name: str | None, as_json: bool) -> None:
    """Show registered models: versions, which version holds each stage, hashes and metrics.

    With NAME, also the model's full history: registrations, promotions and demotions.
    """
    from ..ops.registry import load_registry, unregistered_models

    with Context.open() as ctx:
        registry = load_registry(ctx)
        if name is not None:
            entry = registry.model(name)
            if as_json:
                emit_json(entry.to_json(history=True))
                return
            _render_model(entry)
            say("")
            for event in entry.history:
                _render_event(event)
            return
        pending = unregistered_models(ctx, registry)
    if as_json:
        models: list[dict[str, Any]] = [e.to_json() for _, e in sorted(registry.models.items())]
        models += [ModelEntry(n).to_json() for n in pending]
        emit_json({"models": sorted(models, key=lambda m: str(m["name"]))})
        return
    if not registry.models and not pending:
        say("no registered models yet: git model tag NAME")
    for _, entry in sorted(registry.models.items()):
        _render_model(entry)
    for n in pending:
        say(f"{style(visible(n), bold=True)}  not registered: git model tag {visible(n)}")


def _render_model(entry: ModelEntry) -> None:
    latest = entry.latest
    flags = "  (deprecated)" if entry.deprecated else ""
    name = style(visible(entry.name), bold=True)
    say(f"{name}  latest {visible(latest.version) if latest else '-'}{flags}")
    rows = [v for v in entry.versions if v.active]
    width = max((len(visible(v.version)) for v in rows), default=0)
    stage_width = max((len(_stages(v)) for v in rows), default=0)
    for v in rows:
        stages = style(_stages(v).ljust(stage_width), fg="green")
        version = visible(v.version).ljust(width)
        line = f"  {version}  {_short(v.version_hash)}  {stages}  {_metrics(v)}"
        say(line.rstrip())


def _stages(v: Version) -> str:
    return visible(", ".join(v.stages))


def _metrics(v: Version) -> str:
    return " ".join(f"{visible(k)}={visible(str(val))}" for k, val in sorted(v.metrics.items()))


def _render_event(e: Event) -> None:
    when = visible(str(e.to_json()["time"]).replace("T", " ").rstrip("Z"))
    what = e.version or ""
    if e.stage:
        what += f" {'to' if e.event == 'assignment' else 'from'} {e.stage}"
    verb = visible(VERBS.get(e.event, e.event))
    say(f"{when}  {verb:<12}  {visible(what):<20}  {e.commit[:10]}  {visible(e.tag)}")
