"""Changing the registry: register a model version, promote it to a stage, demote it.

Every change is a new annotated tag (never a moved one), named as GTO names it, with GTO's
subject line and git-model's trailers (see `registry_tags`). Each change takes the repository
lock and re-reads the tags inside it, so two changes never compute the same stage counter.
"""

from __future__ import annotations

from .. import notes
from ..errors import GitModelError, UsageError
from ..registry_tags import (
    FIRST_VERSION,
    SemVer,
    assign_subject,
    check_name,
    create_tag,
    register_subject,
    register_tag,
    stage_tag,
    tag_message,
    unassign_subject,
)
from .context import Context
from .registry import ModelEntry, Version, load_registry, metrics_for, resolve_in, version_hash_at

BUMPS = ("major", "minor", "patch")


def _commit(ctx: Context, rev: str) -> str:
    commit = ctx.repo.rev_parse(rev)
    if commit is None:
        raise UsageError(f"unknown revision {rev!r}; give a commit, branch or tag")
    return commit


def register(
    ctx: Context,
    name: str,
    rev: str = "HEAD",
    *,
    version: str | None = None,
    bump: str | None = None,
    message: str | None = None,
    allow_duplicate: bool = False,
) -> Version:
    """Tag the model version at `rev` as `NAME@vX.Y.Z` (next patch by default)."""
    check_name(name)
    if version and bump:
        raise UsageError("give either --version or --bump, not both")
    if bump is not None and bump not in BUMPS:
        raise UsageError(f"--bump must be one of {', '.join(BUMPS)}")
    wanted = SemVer.parse(version) if version else None
    commit = _commit(ctx, rev)
    version_hash = version_hash_at(ctx, commit, name)
    with ctx.lock("git model tag"):
        entry = load_registry(ctx).models.get(name) or ModelEntry(name)
        live = [v for v in entry.versions if v.registered and v.active]
        for v in live:
            if v.commit == commit:
                raise GitModelError(
                    f"{name} is already registered at {commit[:10]} as {v.version}; "
                    f"promote it with 'git model promote {name} STAGE {v.version}'"
                )
        for v in live:
            if v.version_hash == version_hash and not allow_duplicate:
                raise GitModelError(
                    f"model version {version_hash[:12]} of {name} is already registered as "
                    f"{v.version}; use it, or pass --allow-duplicate to register it again"
                )
        if wanted is not None:
            chosen = wanted
            if entry.find(str(chosen)) is not None:
                raise GitModelError(
                    f"{name}@{chosen} already exists; pick another --version or use --bump"
                )
        elif entry.latest is not None:
            chosen = SemVer.parse(entry.latest.version).bump(bump or "patch")
        else:
            chosen = SemVer.parse(FIRST_VERSION[bump or "patch"])
        records = notes.records_by_commit(ctx.repo, [commit]).get(commit, [])
        metrics = metrics_for(records, name)
        subject_line = message or register_subject(name, str(chosen))
        tag = register_tag(name, chosen)
        create_tag(ctx.repo, tag, commit, tag_message(subject_line, version_hash, metrics))
    return Version(name, str(chosen), commit, True, version_hash=version_hash, metrics=metrics)


def promote(
    ctx: Context, name: str, stage: str, target: str | None = None, *, message: str | None = None
) -> tuple[Version, str, Version | None]:
    """Assign `stage` to a version (`vX.Y.Z`, or the version at a revision; default HEAD).

    A revision whose model version is not registered yet is registered first (next patch).
    Returns (the version, the new tag, the version registered on the way if any).
    """
    check_name(name)
    check_name(stage, "stage name")
    entry = load_registry(ctx).models.get(name) or ModelEntry(name)
    registered: Version | None = None
    if target is not None and SemVer.is_valid(target):
        version = resolve_in(entry, "@", target)
    else:
        commit = _commit(ctx, target or "HEAD")
        version_hash = version_hash_at(ctx, commit, name)
        live = [v for v in entry.versions if v.registered and v.active]
        found = next((v for v in live if v.commit == commit), None) or next(
            (v for v in live if v.version_hash == version_hash), None
        )
        if found is None:
            registered = register(ctx, name, commit)
            entry = load_registry(ctx).model(name)
            found = entry.find(registered.version)
            assert found is not None
        version = found
    if entry.stages.get(stage) is version:
        raise GitModelError(f"{name} {version.version} is already in stage {stage}")
    with ctx.lock("git model promote"):
        fresh = load_registry(ctx, details=False).models.get(name, entry)
        tag = stage_tag(name, stage, fresh.counter + 1)
        text = tag_message(
            message or assign_subject(name, stage, version.version), version.version_hash
        )
        create_tag(ctx.repo, tag, version.commit, text, not_before=_after(fresh))
    return version, tag, registered


def demote(
    ctx: Context,
    name: str,
    stage: str,
    version: str | None = None,
    *,
    message: str | None = None,
) -> list[tuple[Version, str]]:
    """Take `stage` away: from every version that holds it, or from one version only.

    Each removal is a new `NAME#STAGE!#N` tag. GTO shows the most recent version still in a
    stage, so taking it from one version only hands the stage back to the one before.
    """
    check_name(name)
    check_name(stage, "stage name")
    entry = load_registry(ctx).model(name)
    holding = sorted(
        (v for v in entry.versions if v.active and v.holds(stage) is not None),
        key=lambda v: v.holds(stage) or 0,
        reverse=True,
    )
    if version is not None:
        holding = [v for v in holding if v.version == version]
    if not holding:
        which = f"{name} {version}" if version else f"no version of {name}"
        raise GitModelError(
            f"{which} is not in stage {stage}; 'git model registry {name}' shows the stages"
        )
    out = []
    with ctx.lock("git model demote"):
        fresh = load_registry(ctx, details=False).model(name)
        counter, not_before = fresh.counter, _after(fresh)
        for v in holding:
            counter += 1
            tag = stage_tag(name, stage, counter, unassign=True)
            text = tag_message(message or unassign_subject(name, stage, v.version), v.version_hash)
            create_tag(ctx.repo, tag, v.commit, text, not_before=not_before)
            out.append((v, tag))
            not_before += 1
    return out


def _after(entry: ModelEntry) -> int:
    """A tag time after every tag of the model (see `create_tag`)."""
    return max((e.time for e in entry.history), default=0) + 1
