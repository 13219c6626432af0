"""Moving `refs/notes/model` between clones without losing anyone's records.

Git does not fetch or push notes by default. Each git remote gets a fetch refspec that brings
the remote's notes into a remote-tracking ref, `refs/notes/remotes/<remote>/model`, never
straight into `refs/notes/model` (a forced fetch there would overwrite local records). The
pattern form (`refs/notes/model*`) keeps `git fetch` working against a remote that has no notes
yet, where an exact refspec would fail. Fetched notes are merged with `cat_sort_uniq`: records
are sorted, unique JSON lines, so two clones' metrics on the same commit both survive.

Pushing happens from the pre-push hook with `--no-verify` (so the hook does not run itself
again); when the remote's notes moved on, they are fetched and merged first, then pushed.

Standard library and git only: the merge runs from the post-merge and post-checkout hooks.
"""

from __future__ import annotations

import contextlib
import hashlib

from ..errors import GitError
from ..git import Repo, run_git
from ..notes import NOTES_REF

MERGE_STRATEGY = "cat_sort_uniq"
_ATTEMPTS = 3


def tracking_ref(remote: str) -> str:
    return f"refs/notes/remotes/{remote}/model"


def refspec(remote: str) -> str:
    return f"+{NOTES_REF}*:refs/notes/remotes/{remote}/model*"


def git_remotes(repo: Repo) -> list[str]:
    return repo.git("remote").decode().split()


def configure_fetch(repo: Repo, remotes: list[str] | None = None) -> list[str]:
    """Add the notes fetch refspec to each git remote that lacks it; returns those changed."""
    changed = []
    for remote in git_remotes(repo) if remotes is None else remotes:
        key = f"remote.{remote}.fetch"
        current = repo.git("config", "--get-all", key, check=False).decode().splitlines()
        if refspec(remote) not in current:
            repo.config_set(key, refspec(remote), add=True)
            changed.append(remote)
    return changed


def setup(repo: Repo, *, fetch: bool = False) -> None:
    """For `git model init`: configure every git remote; in a fresh clone also bring the
    notes in now (best effort: they are history, not needed to restore artifacts)."""
    configure_fetch(repo)
    if fetch:
        with contextlib.suppress(GitError):
            pull(repo)


def upstream_remote(repo: Repo) -> str | None:
    """The git remote notes come from: the branch's upstream, else origin, else the only one."""
    branch = repo.git("symbolic-ref", "-q", "--short", "HEAD", check=False).decode().strip()
    if branch:
        remote = repo.config_get(f"branch.{branch}.remote")
        if remote and remote != ".":
            return remote
    remotes = git_remotes(repo)
    if "origin" in remotes:
        return "origin"
    return remotes[0] if len(remotes) == 1 else None


def _ref_for(repo: Repo, remote: str) -> str:
    if remote in git_remotes(repo):
        return tracking_ref(remote)
    # a URL given to `git push`: a stable private tracking ref per URL
    return tracking_ref("_url-" + hashlib.sha1(remote.encode()).hexdigest()[:12])


def fetch(repo: Repo, remote: str) -> str:
    """Fetch `remote`'s notes into their tracking ref (no error when it has none)."""
    ref = _ref_for(repo, remote)
    repo.git("fetch", "-q", "--no-write-fetch-head", remote, f"+{NOTES_REF}*:{ref}*")
    return ref


def _sha(repo: Repo, ref: str) -> str | None:
    proc = run_git(["rev-parse", "-q", "--verify", ref], cwd=repo.root, check=False)
    return proc.stdout.decode().strip() or None


def _local_sha(repo: Repo) -> str | None:
    return _sha(repo, NOTES_REF)


def merge_fetched(repo: Repo) -> list[str]:
    """Merge every fetched remote notes ref into refs/notes/model; returns the refs merged.

    Cheap when nothing moved: one for-each-ref and an ancestry check per remote.
    """
    out = repo.git("for-each-ref", "--format=%(objectname) %(refname)", "refs/notes/remotes/")
    merged = []
    for line in out.decode().splitlines():
        sha, _, ref = line.partition(" ")
        if not ref.endswith("/model"):
            continue
        local = _local_sha(repo)
        if local is not None and (
            sha == local or repo.git_ok("merge-base", "--is-ancestor", sha, local)
        ):
            continue
        repo.git("notes", f"--ref={NOTES_REF}", "merge", "-q", "-s", MERGE_STRATEGY, ref)
        merged.append(ref)
    return merged


def pull(repo: Repo, remote: str | None = None) -> list[str]:
    """Fetch the notes of `remote` (default: the upstream) and merge them in."""
    remote = remote or upstream_remote(repo)
    if remote is not None:
        fetch(repo, remote)
    return merge_fetched(repo)


def push(repo: Repo, remote: str) -> bool:
    """Push refs/notes/model to `remote`, merging the remote's first if they moved on.

    False when there is nothing to push: no local notes, or the same notes the remote had at
    the last fetch or push (its tracking ref), so an ordinary `git push` opens no second
    connection.
    """
    local = _local_sha(repo)
    tracking = _ref_for(repo, remote)
    if local is None or local == _sha(repo, tracking):
        return False  # nothing new since the last fetch or push: no second connection
    detail = ""
    for _ in range(_ATTEMPTS):
        proc = run_git(
            ["push", "-q", "--no-verify", remote, f"{NOTES_REF}:{NOTES_REF}"],
            cwd=repo.root,
            check=False,
        )
        if proc.returncode == 0:
            repo.git("update-ref", tracking, _local_sha(repo) or local)
            return True
        detail = proc.stderr.decode(errors="replace").strip()
        if not any(w in detail for w in ("rejected", "fetch first", "non-fast-forward")):
            break
        ref = fetch(repo, remote)
        repo.git("notes", f"--ref={NOTES_REF}", "merge", "-q", "-s", MERGE_STRATEGY, ref)
    last = detail.splitlines()[-1] if detail else "unknown error"
    raise GitError(
        f"could not push {NOTES_REF} (model versions and metrics) to {remote}: {last}; "
        "fix the cause and push again"
    )
