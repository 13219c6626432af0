"""post-commit: the commit's versions note, and the cases pre-commit could not finish.

The everyday commit never gets here: pre-commit leaves the note ready and the shim adds it
(see handoff.py). Python's post-commit runs for the rest:

- a partial commit (`git commit <paths>`): git staged into a temporary index while it held the
  lock on the real one, so the real index's `.gitmodel/` files are brought in line with the
  commit now; otherwise the next commit would quietly revert them;
- a commit git made from something other than the work tree (cherry-pick, revert, a rebase
  step, concluding a merge): the bytes of the artifacts it changed go into the work tree, where
  the work tree still held the old ones (see restore.follow_commit);
- the note itself, whenever the shim could not add it.
"""

from __future__ import annotations

from ..errors import GitModelError
from ..git import Repo, run_git
from ..ops.context import Context
from . import handoff, open_context
from .commit import stage


def post_commit(args: list[str]) -> int:
    ctx = open_context()
    if ctx is None:
        return 0
    from .restore import follow_commit, warn
    from .versionnote import ensure_versions_note

    with ctx:
        try:
            marker = handoff.take_marker(ctx.repo.git_dir)
            handoff.clear(ctx.repo.git_dir)
            head = ctx.repo.head()
            if head is None:
                return 0
            partial = marker.get("partial")
            if isinstance(partial, list) and partial:
                align_index(ctx, [str(p) for p in partial], marker.get("head"))
            if not marker.get("same_commit") or marker.get("restore"):
                follow_commit(ctx)
            ensure_versions_note(ctx, head)
        except GitModelError as e:
            warn(e)
    return 0


def align_index(ctx: Context, paths: list[str], before: object) -> None:
    """After a partial commit: the real index's `.gitmodel/` files follow the new commit.

    An entry the user had not staged (equal to the commit before) takes the new commit's
    version; one the user had staged (a `git model add` left out of this commit) takes the work
    tree's, which pre-commit refreshed with the same bytes. Entries equal to HEAD's are left
    alone, so a marker from another commit changes nothing.
    """
    index = _blobs(ctx.repo, "ls-files", "-s", "-z", "--", *paths)
    head = _blobs(ctx.repo, "ls-tree", "-r", "-z", "HEAD", "--", *paths)
    old = _blobs(ctx.repo, "ls-tree", "-r", "-z", str(before), "--", *paths) if before else {}
    differ = [p for p in paths if index.get(p) != head.get(p)]
    follow = [p for p in differ if index.get(p) == old.get(p)]
    if follow:
        ctx.repo.git("reset", "-q", "HEAD", "--", *follow)
    stage(ctx, [p for p in differ if p not in follow])


def _blobs(repo: Repo, *args: str) -> dict[str, str]:
    """path -> blob id from `ls-files -s -z` or `ls-tree -z` output."""
    proc = run_git(list(args), cwd=repo.root, check=False)
    out: dict[str, str] = {}
    for item in proc.stdout.decode("utf-8", errors="surrogateescape").split("\0"):
        meta, _, path = item.partition("\t")
        if path:
            fields = meta.split()
            out[path] = fields[1] if args[0] == "ls-files" else fields[2]
    return out
