"""post-checkout, post-merge, post-rewrite: the work tree's artifacts follow HEAD.

Git has already moved HEAD when these run, so they never fail the command: a problem is a
warning that says what to run, and the hook exits 0. Restoring is `git model checkout` with the
old HEAD's manifest as `previous`, so artifacts the new HEAD does not have leave the work tree;
only files that differ are written, and work-tree bytes found in neither manifest are stored in
the cache first (the message says how to get them back). Objects missing from the cache are
fetched when the remotes support is installed (`git_model.ops.transfer`); otherwise, or when
fetching fails, the message names the command that fetches them.

- post-checkout: branch checkouts only (flag 1), and only when HEAD really changed.
- post-merge: from ORIG_HEAD (HEAD itself for `--squash`); a merge commit gets its note here,
  since git runs no post-commit for it.
- post-checkout and post-merge also merge the notes `git fetch`/`git pull` brought in
  (ops/notes_sync.py), so metrics recorded in other clones show up after a pull.
- post-rewrite: notes of rewritten commits are tidied (see versionnote); after a rebase the
  work tree follows the new HEAD.
"""

from __future__ import annotations

import os
import sys

from ..errors import GitModelError
from ..manifest import Manifest
from ..ops.checkout import checkout, default_fetcher
from ..ops.context import Context
from ..paths import GITMODEL_DIR
from ..restore import RestoreReport
from . import open_context, say
from .versionnote import ensure_versions_note, refresh_after_rewrite


def warn(error: Exception) -> None:
    say(f"warning: {error}")


def merge_notes(ctx: Context) -> None:
    """Notes a fetch brought in (refs/notes/remotes/*/model) join ours with cat_sort_uniq, so
    every clone's records are kept; cheap when nothing moved (one for-each-ref)."""
    from ..ops import notes_sync

    try:
        notes_sync.merge_fetched(ctx.repo)
    except GitModelError as e:
        warn(e)


def restore(ctx: Context, previous: Manifest | None) -> RestoreReport:
    report = checkout(ctx, previous=previous, fetch=default_fetcher(ctx), keep_paths=False)
    tell(report)
    return report


def tell(report: RestoreReport) -> None:
    if report.files_written or report.removed:
        removed = f", removed {len(report.removed)}" if report.removed else ""
        say(f"restored {report.files_written} artifact file(s){removed}")
    from ..termtext import quote_path, shell_quote

    for path, oid in report.saved:
        say(
            f"your version of {quote_path(path)} was kept in the cache: "
            f"git model cat {oid} > {shell_quote(path)}"
        )
    if report.missing:
        paths = ", ".join(quote_path(p) for p, _ in report.missing[:3])
        more = f" and {len(report.missing) - 3} more" if len(report.missing) > 3 else ""
        say(
            f"warning: {paths}{more} not restored: not in the cache; "
            "fetch with 'git model pull' (or 'git model fetch' then 'git model checkout')"
        )
    for path, oid in report.corrupt:
        say(
            f"warning: {quote_path(path)} not restored: cache object {oid.short} was corrupt and is "
            "quarantined; run 'git model pull'"
        )


def follow_commit(ctx: Context, old: str = "HEAD^", new: str = "HEAD") -> None:
    """After a commit git made from something other than the work tree: put in the work tree
    the bytes of every artifact the commit changed, where the work tree still holds the old
    bytes (or none). Anything else in the work tree is the user's, and stays."""
    before, after = ctx.manifest(old), ctx.manifest(new)
    ws = ctx.workspace()
    stale = []
    for path, art in sorted(after.artifacts.items()):
        was = before.artifacts.get(path)
        if was == art:
            continue
        try:
            scanned = ws.scan(path, store=False)
        except GitModelError:
            continue
        current = scanned.artifact.oid if scanned is not None else None
        if current != art.oid and (current is None or (was is not None and current == was.oid)):
            stale.append(str(ctx.root / path))
    ws.state.flush()
    if stale:
        tell(checkout(ctx, new, stale, fetch=default_fetcher(ctx)))


def _is_null(rev: str) -> bool:
    return not rev.strip("0")  # git's null oid: no commit (a new clone or worktree)


def post_checkout(args: list[str]) -> int:
    if len(args) < 3:  # the pre-commit framework passes these in its environment
        args = [
            os.environ.get(f"PRE_COMMIT_{k}", "") for k in ("FROM_REF", "TO_REF", "CHECKOUT_TYPE")
        ]
    old, new, branch = args[:3]
    if branch != "1" or old == new:
        return 0  # a file checkout, or `checkout -b` where HEAD stays: nothing moved
    ctx = open_context(anyway=True)
    if ctx is None:
        return 0
    with ctx:
        try:
            previous = None if _is_null(old) else ctx.manifest(old)
            if (ctx.root / GITMODEL_DIR).is_dir() or (previous and previous.artifacts):
                # (a commit from before git-model: the artifacts of the old one leave)
                restore(ctx, previous)
                merge_notes(ctx)
        except GitModelError as e:
            warn(e)
    return 0


def post_merge(args: list[str]) -> int:
    squash = (args[0] if args else os.environ.get("PRE_COMMIT_IS_SQUASH_MERGE", "0")) == "1"
    ctx = open_context()
    if ctx is None:
        return 0
    with ctx:
        try:
            restore(ctx, ctx.manifest("HEAD" if squash else "ORIG_HEAD"))
            merge_notes(ctx)
            head = ctx.repo.head()
            if not squash and head is not None and ctx.repo.rev_parse("HEAD^2") is not None:
                ensure_versions_note(ctx, head)
        except GitModelError as e:
            warn(e)
    return 0


def post_rewrite(args: list[str]) -> int:
    command = args[0] if args else os.environ.get("PRE_COMMIT_REWRITE_COMMAND", "")
    pairs = [] if "PRE_COMMIT_REWRITE_COMMAND" in os.environ else sys.stdin.read().splitlines()
    ctx = open_context()
    if ctx is None:
        return 0
    with ctx:
        try:
            rewritten = list(dict.fromkeys(f[1] for f in (p.split() for p in pairs) if len(f) > 1))
            if not pairs:  # no list from git (the pre-commit framework): HEAD at least
                rewritten = [h for h in [ctx.repo.head()] if h]
            for commit in rewritten:
                refresh_after_rewrite(ctx, commit)
            if command == "rebase":
                restore(ctx, _rebase_previous(ctx))
        except GitModelError as e:
            warn(e)
    return 0


def _rebase_previous(ctx: Context) -> Manifest:
    """What the work tree may hold during a rebase: the branch before it, and the commit it
    was rebased onto (the work tree followed it when the rebase started)."""
    previous = ctx.manifest("ORIG_HEAD")
    for state in ("rebase-merge", "rebase-apply"):
        onto = ctx.repo.git_dir / state / "onto"
        if onto.is_file():
            for path, art in ctx.manifest(onto.read_text().strip()).artifacts.items():
                previous.artifacts.setdefault(path, art)
    return previous
