"""`git model checkout`: make the work tree's artifacts match a revision's manifest."""

from __future__ import annotations

import os
from collections.abc import Callable

from ..errors import GitModelError, UsageError
from ..hashing import Oid, hash_file
from ..listing import listing_path
from ..manifest import Artifact, Manifest, Reader
from ..needs import iter_needed
from ..paths import is_within, to_relpath
from ..restore import Restorer, RestoreReport
from ..stamps import Stamps, removal_generation
from ..tensors import tensors_path
from ..workspace import Progress
from .context import Context
from .reachable import ObjectRef
from .wanted import Wanted

Fetcher = Callable[[Context, dict[Oid, ObjectRef]], None]  # fetch these into the cache


def checkout(
    ctx: Context,
    rev: str | None = None,
    paths: list[str] | None = None,
    *,
    previous: Manifest | None = None,
    fetch: Fetcher | None = None,
    progress: Progress | None = None,
    model: str | None = None,
    keep_paths: bool = True,
) -> RestoreReport:
    """Restore artifacts of `rev` (the work tree's manifest when None). `keep_paths`: list
    the files written in the report (else only count them).

    `fetch` is asked for the objects the cache lacks (see `default_fetcher`).
    `previous` (the manifest the work tree matched before, e.g. the old HEAD in a hook) lets
    artifacts that the target no longer has be taken out of the work tree. `model` restricts
    the restore to that model's artifacts (its weights and data), as a registry rollback does.
    """
    if rev is not None and ctx.repo.rev_parse(rev) is None:
        raise UsageError(f"unknown revision {rev!r}; give a commit, branch or tag")
    with ctx.lock("git model checkout"):  # (the manifest too: an add may be writing it)
        target = ctx.manifest(rev)
        read = ctx.reader(rev)
        selected = _selected(ctx, target, rev, paths, model)
        if paths or model is not None:
            previous = None  # a partial checkout takes nothing out
        if previous is not None:
            selected = _changed(ctx, target, previous, selected)
        return restore(
            ctx,
            target,
            read,
            selected,
            previous=previous,
            fetch=fetch,
            progress=progress,
            keep_paths=keep_paths,
        )


def restore(
    ctx: Context,
    target: Manifest,
    read: Reader,
    selected: list[str],
    *,
    previous: Manifest | None = None,
    fetch: Fetcher | None = None,
    progress: Progress | None = None,
    keep_paths: bool = True,
) -> RestoreReport:
    """Write `selected` artifacts of `target` (whose listings `read` gives) into the work tree,
    and take out those `previous` had that `target` has not. The caller holds the lock: a
    manifest that is no revision's (a run not committed yet, ops/local_runs.py) comes this way."""
    stamps = Stamps(ctx.repo.git_dir, ctx.root) if ctx.settings.link_type == "copy" else None
    in_place = _in_place(ctx, stamps, target, selected) if stamps is not None else {}
    selected = [path for path in selected if path not in in_place]
    if fetch is not None:
        _fetch_missing(ctx, target, read, selected, fetch)
    restorer = Restorer(ctx.workspace(progress), ctx.settings.link_type, keep_paths=keep_paths)
    r = restorer.report
    r.unchanged += sum(in_place.values())
    try:
        for path in selected:
            art = target.artifacts[path]
            # `git model checkout` again: stamped before the restore looks, so that if it finds
            # everything in place the next one trusts the stamp (as the commit hook stamps)
            if stamps is not None and previous is None and path not in stamps.pending:
                stamps.take(path)  # (unless _in_place took it)
            before = (r.files_written, len(r.saved), len(r.missing), len(r.corrupt))
            restorer.restore(art, read)
            if (
                stamps is not None
                and previous is None
                and before == (r.files_written, len(r.saved), len(r.missing), len(r.corrupt))
            ):
                stamps.stamp(path, str(art.oid))  # (only if a fingerprint was taken)
        if stamps is not None:
            oids = [str(art.oid) for art in target.artifacts.values()]
            stamps.save(keep=set(stamps.artifacts), reseal=False, recorded=oids)
        if previous is not None:
            for path, art in previous.artifacts.items():
                if path not in target.artifacts and target.artifact_for(path) is None:
                    restorer.remove(art)
    finally:
        ctx.cache.prepared.close()  # copies written during the fetch that went unused
    ctx.state.flush()
    return restorer.report


def _in_place(
    ctx: Context, stamps: Stamps, target: Manifest, selected: list[str]
) -> dict[str, int]:
    """The artifacts the work tree already holds as `target` records them, by their stamps
    (stamps.py: the stat data of every file as they were when found to hold that oid, none
    racy since) and whose objects are all in the cache (the stamps' `cached` fact, so that a
    pull still fetches what the cache lacks): path -> files, nothing read, fetched or written
    for them. Only where the stamp is for the target's oid (else the walk would be spent for
    nothing) and files are plain copies (the caller's: a link type to convert to is the full
    restore's work)."""
    generation = removal_generation(ctx.repo.model_dir)
    out = {}
    for path in selected:
        art, stamp = target.artifacts[path], stamps.artifacts.get(path)
        oid = str(art.oid)
        same_oid = isinstance(stamp, tuple) and stamp[1:2] == (oid,)
        cached = stamps.cached.get(oid) == generation  # (a pull still fills the cache)
        if same_oid and cached and _listing_sound(ctx, art) and stamps.unchanged(path, oid):
            out[path] = art.files or 1
    return out


def _listing_sound(ctx: Context, art: Artifact) -> bool:
    """The work tree's listing of `art` (a directory's, or the tensor listing of one stored by
    parts) hashes to the oid the manifest gives it, streamed: a listing that does not is the
    full restore's to find in the index or HEAD, or to refuse in one line."""
    if art.is_dir:
        path, oid = listing_path(art.path), art.oid
    elif art.layout is not None and art.parts is not None:
        path, oid = tensors_path(art.path), art.parts
    else:
        return True
    try:
        return hash_file(ctx.root / path)[0] == oid
    except OSError:
        return False


def default_fetcher(ctx: Context) -> Fetcher | None:
    """What checkout, init and the hooks fetch missing objects with: the default remote's
    fetcher (transfer.fetch_missing, which never raises for what it cannot fetch), or None when
    no default remote is set, so a checkout with nowhere to fetch from neither looks for
    missing objects first nor imports the remotes code."""
    if not ctx.settings.get("remote"):  # (remote_config.default_name)
        return None
    from .transfer import fetch_missing

    return fetch_missing


def _fetch_missing(
    ctx: Context, target: Manifest, read: Reader, selected: list[str], fetch: Fetcher
) -> None:
    """Hand `fetch` the objects the restore needs that the cache lacks, each once, a group of
    oid prefixes at a time (wanted.py: past 20,000 objects the rest wait in a temp file): a
    pull into an empty cache never holds 100,000 objects at once, and a group asks a remote's
    packs for runs of neighbours (packs are written in oid order), not objects strewn across
    them as the work tree's order would."""
    has = ctx.cache.has
    wanted = Wanted(ctx.cache.tmp)
    for oid, top, path, size, part in iter_needed(target, read, selected):
        if not has(oid):
            wanted.add(oid, size, path, top, part)
    if not wanted:
        return
    for _, missing in wanted.groups():
        if missing:
            fetch(ctx, missing)


def _changed(ctx: Context, target: Manifest, previous: Manifest, selected: list[str]) -> list[str]:
    """What a move from `previous` to `target` (a branch switch, merge, rebase) has to touch:
    artifacts that differ, and any the work tree lacks. One that both commits hold with the
    same bytes is left as the work tree has it, edits included, as git leaves a file that
    does not differ between the two commits (and a 10,000-file data set costs one lstat)."""
    out = []
    for path in selected:
        art, before = target.artifacts[path], previous.artifacts.get(path)
        same = before is not None and (before.oid, before.is_dir) == (art.oid, art.is_dir)
        if not same or not os.path.lexists(ctx.root / path):
            out.append(path)
    return out


def _selected(
    ctx: Context, target: Manifest, rev: str | None, paths: list[str] | None, model: str | None
) -> list[str]:
    """The artifacts of `target` to restore: all, or `model`'s, or those under `paths`."""
    selected = sorted(target.artifacts)
    if model is not None:
        selected = _model_artifacts(target, model, rev)
    if paths:
        wanted = [to_relpath(ctx.root, p) for p in paths]
        for w in wanted:
            if not any(is_within(w, a) or is_within(a, w) for a in target.artifacts):
                raise GitModelError(
                    f"{w} is not a tracked artifact at {rev or 'the work tree'}; "
                    "'git model status' lists them"
                )
        selected = [a for a in selected if any(is_within(a, w) or is_within(w, a) for w in wanted)]
    return selected


def _model_artifacts(manifest: Manifest, model: str, rev: str | None) -> list[str]:
    m = manifest.models.get(model)
    if m is None:
        raise GitModelError(f"there is no model {model!r} at {rev or 'the work tree'}")
    parts = [*m.weights, *m.data]
    return [
        a
        for a in sorted(manifest.artifacts)
        if any(is_within(p, a) or is_within(a, p) for p in parts)
    ]
