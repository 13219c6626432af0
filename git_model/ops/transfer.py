"""`git model push`, `fetch`, and the hooks' ways in: `pre_push`, `fetch_missing` (`pull`, a
fetch into a checkout, is pull.py: checkout fetches through here).

The objects the revisions want are found by a walk (reachable.py) that keeps them in groups
of oid prefixes (wanted.py); each group is moved by `moving.move_objects` before the next is
read, so a push of a million objects holds one group, not the million.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import GitModelError, UsageError
from ..listingstream import worktree_blocks
from ..remotes import open_store
from . import notes_sync
from .context import Context
from .moving import Meter, TransferResult, cumulative, move_objects
from .reachable import ObjectRef, ObjectWalk
from .remote_config import RemoteSpec, require, resolve
from .wanted import Wanted

if TYPE_CHECKING:
    from ..hashing import Oid
    from ..remotes import Store

__all__ = ["Meter", "TransferResult", "fetch", "fetch_missing", "pre_push", "push"]

ZERO_SHA = "0" * 40


def open_remote(spec: RemoteSpec, ctx: Context, *, upload: bool = False) -> Store:
    """The store behind a remote (an LFS remote finds its server from the git remote's
    set-up in the work tree); with `upload`, set up to store objects as model.compress and
    model.pack say (a store that takes no codec or packs ignores them). The indexes of the
    remote's packs are kept in the cache's packs/."""
    settings = ctx.settings
    compress, pack = (settings.get("compress"), settings.get("pack")) if upload else ("off", "off")
    index_dir = ctx.cache.model_dir / "packs"
    return open_store(spec.name, spec.url, spec.options, ctx.root, compress, pack, index_dir)


def open_for_upload(ctx: Context, spec: RemoteSpec) -> Store:
    return open_remote(spec, ctx, upload=True)


def wanted_objects(ctx: Context, revs: list[str] | None, all_history: bool) -> Wanted:
    """Objects for `--all` (every commit of every ref), `--rev REV…` (those commits), or by
    default the work tree's manifest and HEAD's."""
    walk = ObjectWalk(ctx.repo)
    if all_history:
        walk.add_history(["--all"])
    for rev in revs or []:
        commit = ctx.repo.rev_parse(rev)
        if commit is None:
            raise UsageError(f"unknown revision {rev!r}; give a commit, branch or tag")
        walk.add_commit(commit)
    if not all_history and not revs:
        walk.add_manifest(ctx.reader(None), "the work tree's manifest", worktree_blocks(ctx.root))
        head = ctx.repo.head()
        if head is not None:
            walk.add_commit(head)
    return walk.wanted


def move_wanted(
    ctx: Context, remote: Store, wanted: Wanted, *, upload: bool, jobs: int, meter: Meter | None
) -> TransferResult:
    """`move_objects` for each group of `wanted` in turn: one result, one progress."""
    result = TransferResult(remote.name, remote.url)
    progress = cumulative(meter)
    for _, objects in wanted.groups():
        part = move_objects(ctx, remote, objects, upload=upload, jobs=jobs, meter=progress)
        result.add(part)
    result.missing.sort()
    result.failed.sort()
    return result


def push(
    ctx: Context,
    remote: str | None = None,
    *,
    revs: list[str] | None = None,
    all_history: bool = False,
    jobs: int = 0,
    meter: Meter | None = None,
) -> TransferResult:
    """Upload the objects of the given revisions that the remote lacks."""
    spec = require(ctx.settings, remote)
    wanted = wanted_objects(ctx, revs, all_history)
    store = open_for_upload(ctx, spec)
    return move_wanted(ctx, store, wanted, upload=True, jobs=jobs, meter=meter)


def fetch(
    ctx: Context,
    remote: str | None = None,
    *,
    revs: list[str] | None = None,
    all_history: bool = False,
    jobs: int = 0,
    meter: Meter | None = None,
    notes: bool = True,
) -> TransferResult:
    """Download the objects of the given revisions that the cache lacks; bring in the notes."""
    spec = require(ctx.settings, remote)
    wanted = wanted_objects(ctx, revs, all_history)
    store = open_remote(spec, ctx)
    result = move_wanted(ctx, store, wanted, upload=False, jobs=jobs, meter=meter)
    if notes:
        pull_notes(ctx, result)
    return result


def pull_notes(ctx: Context, result: TransferResult) -> None:
    """Merge the git remote's notes; failing to is a warning kept in `result`."""
    try:
        result.notes_merged = notes_sync.pull(ctx.repo)
    except GitModelError as e:
        result.notes_error = str(e)


def fetch_missing(ctx: Context, missing: dict[Oid, ObjectRef]) -> None:
    """For checkout and the hooks: fetch these objects from the default remote, if one is set.

    Never raises for what cannot be fetched (not on the remote, remote unreachable): the
    checkout report names every object still missing and says to run 'git model pull',
    which shows why.
    """
    try:
        spec = resolve(ctx.settings, None)
        if spec is None or not missing:
            return
        remote = open_remote(spec, ctx)
        move_objects(ctx, remote, missing, upload=False, jobs=0, meter=None, for_checkout=True)
    except GitModelError:
        return


def pre_push(
    ctx: Context, remote_name: str, remote_url: str, updates: list[tuple[str, str, str, str]]
) -> TransferResult | None:
    """The pre-push hook: make the remote object store hold every object the pushed commits
    need before git moves any ref, then push the notes ref. Raises (blocking the push) when
    bytes are neither in the cache nor on the object remote. Returns what moved (None when
    there was nothing to move or no object remote).
    """
    walk = ObjectWalk(ctx.repo)
    pushes_notes = False
    for _local_ref, local_sha, remote_ref, remote_sha in updates:
        if remote_ref.startswith("refs/notes/"):
            pushes_notes = True
            continue
        if local_sha == ZERO_SHA or ctx.repo.rev_parse(local_sha) is None:
            continue  # a deletion, or a tag of something other than a commit
        walk.add_commit(local_sha)
        known = remote_sha != ZERO_SHA and ctx.repo.rev_parse(remote_sha) is not None
        walk.add_history([local_sha, f"^{remote_sha}"] if known else [local_sha])
    spec = resolve(ctx.settings, None)
    result = None
    if walk.wanted and spec is not None:
        remote = open_for_upload(ctx, spec)
        result = move_wanted(ctx, remote, walk.wanted, upload=True, jobs=0, meter=None)
        _raise_for_push(result, remote)
    if not pushes_notes:
        notes_sync.push(ctx.repo, remote_name or remote_url)
    return result


def _raise_for_push(result: TransferResult, remote: Store) -> None:
    if result.missing:
        oid, path = result.missing[0]
        more = f" (and {len(result.missing) - 1} more)" if len(result.missing) > 1 else ""
        raise GitModelError(
            f"push stopped: {path} (object {oid[:12]}){more} is neither in the local cache nor "
            f"on remote {remote.label}; fetch it from where it is, or 'git model add' it again"
        )
    if result.failed:
        _, _, message = result.failed[0]
        more = f" (and {len(result.failed) - 1} more)" if len(result.failed) > 1 else ""
        raise GitModelError(f"push stopped: {message}{more}")
