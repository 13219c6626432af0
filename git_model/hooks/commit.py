"""pre-commit and pre-merge-commit: every commit records the bytes it was made with.

pre-commit works on the index git is committing from (`GIT_INDEX_FILE`: the real index for a
plain commit or `--amend`, `index.lock` for `commit -a`, a temporary index for `commit <paths>`).
It reads the manifest from that index, re-hashes its artifacts through the stat cache (so an
unchanged artifact costs a `stat`), stores new bytes in the cache, refreshes the listings and
model versions (params and code as that index holds them), and stages the result into that
same index. Nothing is written when nothing changed, and tomli-w is not even imported.

It blocks the commit, with one line saying what to run, when a tracked artifact is missing from
the work tree or when a file over `model.maxGitFileSize` is about to go into git itself.

git decides whether there is anything to commit before it runs the hook, so in a commit in which
only artifacts changed git would stop with 'nothing to commit, working tree clean' after the
hook staged the change. The hook stops it first (exit 1, as git would), with one line saying
what changed, where its record is, and that the same command run again commits it; unless
git's command line says it commits anyway (`--amend`, `--allow-empty`: gitcommand.py) or
cannot be read, when the commit goes on.

While a merge, cherry-pick, revert or rebase is in progress, the index holds entries that came
from the other side while the work tree still holds this side's bytes: an artifact whose index
entry differs from HEAD's and whose work-tree bytes are still HEAD's is kept as the index has
it, and post-commit then puts its bytes in the work tree. A directory whose listing conflict
was resolved by hand takes its oid from the resolved listing.

What is left for post-commit is handed over through handoff.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GitModelError
from ..git import Repo, operation_in_progress, run_git
from ..listing import listing_path, read_listing
from ..manifest import MANIFEST_PATH, Manifest, format_manifest, parse_manifest
from ..notes import encode
from ..ops.context import Context
from ..ops.record import Recorded, record
from ..ops.sealing import make_seal, versions_record_of
from ..stamps import Stamps
from ..termtext import quote_path
from ..versions import all_inputs, refresh_versions
from . import handoff, open_context, say
from .guard import merged_in, missing_message
from .sizes import check_git_file_sizes
from .versionnote import recover_lost_note


def pre_commit(args: list[str]) -> int:
    ctx = open_context()
    if ctx is None:
        return 0
    # the lock comes before the index is read: a `git model add` that stages meanwhile must
    # not be overwritten by a manifest read before it
    with ctx, ctx.lock("the pre-commit hook"):
        recovered = recover_lost_note(ctx, handoff.leftover_notes(ctx.repo.git_dir))
        if recovered:
            say(f"gave {recovered[:12]} the note its interrupted commit did not write")
        handoff.clear(ctx.repo.git_dir)
        staged = ctx.reader("")(MANIFEST_PATH)
        if staged is None:
            return 0  # the commit takes git-model out (or never had it)
        merging = operation_in_progress(ctx.repo.git_dir)
        if not merging:
            check_git_file_sizes(ctx.repo, ctx.settings)
        result = refresh_index(ctx, staged, merging=merging)
        partial = _partial_commit(ctx.repo)
        if merging or (partial and result.staged):
            handoff.leave_marker(
                ctx.repo.git_dir,
                {
                    "head": ctx.repo.head() if partial else None,
                    "partial": result.staged if partial else [],
                    "restore": bool(result.merged_in),
                },
            )
        else:
            record = versions_record_of(result.models, result.inputs)
            handoff.leave_note(ctx.repo.git_dir, "" if record is None else encode(record) + "\n")
        anyway: bool | None = True
        if result.changed and result.nothing_else:
            from .gitcommand import commits_anyway

            anyway = commits_anyway()
            if anyway is False:
                say(_rerun_message(result))
                return 1  # what git would do: it found nothing to commit
        if result.changed:
            from ..termtext import quote_path

            say(f"recorded {', '.join(map(quote_path, result.changed))}")
            if anyway is None:
                say(
                    "if git now says 'nothing to commit', it decided that before this hook "
                    "ran: run the same git commit again to record the change"
                )
    return 0


def _rerun_message(result: Refreshed) -> str:
    """One sentence for a commit in which only artifacts changed: git found nothing to commit
    before this hook ran, so it stops it (as git would have) and says what to run."""
    changed = ", ".join(quote_path(p) for p in result.changed[:3]) + (
        f" and {len(result.changed) - 3} more" if len(result.changed) > 3 else ""
    )
    index = os.path.basename(os.environ.get("GIT_INDEX_FILE", "index"))
    # `commit -a` stages into index.lock, which git drops when it stops: the record stays in
    # the work tree's manifest, and the same `commit -a` stages it
    where = "written to" if index == "index.lock" else "staged in"
    return (
        f"{changed} changed and its new record is {where} {MANIFEST_PATH}, but git had found "
        "nothing else to commit before this hook ran: run the same git commit again to commit it"
    )


def _index_is_head(repo: Repo) -> bool:
    """Is the index git is committing from the same as HEAD? (Then git has already decided
    there is nothing to commit: it checks before pre-commit runs.)"""
    proc = run_git(["diff-index", "--cached", "--quiet", "HEAD", "--"], cwd=repo.root, check=False)
    return proc.returncode == 0


@dataclass
class Refreshed:
    changed: list[str] = field(default_factory=list)  # artifacts whose bytes changed
    staged: list[str] = field(default_factory=list)  # .gitmodel files staged
    merged_in: list[str] = field(default_factory=list)  # kept as the index has them
    models: dict[str, str] = field(default_factory=dict)  # versions in the committed manifest
    nothing_else: bool = False  # git saw nothing to commit: only what this hook stages changed
    inputs: dict[str, str] = field(default_factory=dict)  # their input hashes


def refresh_index(ctx: Context, staged: bytes, *, merging: bool) -> Refreshed:
    """Record the work tree's artifacts into the manifest of the index being committed."""
    committed = parse_manifest(staged, f"{MANIFEST_PATH} in the index")
    before = committed.copy()
    keep: set[str] = set()
    if merging:
        keep = merged_in(ctx, committed, ctx.manifest("HEAD"), ctx.workspace())
    stamps = Stamps(ctx.repo.git_dir, ctx.root)
    todo = [
        p
        for p, art in sorted(committed.artifacts.items())
        if p not in keep and (merging or not stamps.unchanged(p, art.oid))
    ]
    missing = [p for p in todo if not os.path.lexists(ctx.root / p)]
    if missing:
        raise GitModelError(missing_message(missing))
    # (a file hashed or written a moment ago is hashed again, not copied into the cache: see
    # Workspace.hash_paths)
    # (record stamps each with the fingerprint `unchanged` took above, before it hashes)
    recorded = record(ctx, committed, todo, ctx.workspace(), stamps=stamps) if todo else Recorded()
    refresh_versions(committed, ctx.reader(""))
    out = Refreshed(changed=recorded.changed, merged_in=sorted(keep))
    out.models = {name: str(m.version) for name, m in sorted(committed.models.items())}
    out.inputs = all_inputs(committed, ctx.reader(""))
    listings = {listing_path(p) for p in recorded.changed if committed.artifacts[p].is_dir} | set(
        recorded.tracked_files
    )
    if committed != before or listings:
        out.nothing_else = (
            not merging and not _partial_commit(ctx.repo) and _index_is_head(ctx.repo)
        )
        out.staged = _write_and_stage(ctx, staged, committed, listings)
    seal = None
    if not merging and not _partial_commit(ctx.repo):
        seal = make_seal(ctx.repo, stamps, committed, out.inputs)
    stamps.save(keep=set(committed.artifacts), seal=seal, reseal=True)
    return out


def _write_and_stage(
    ctx: Context, staged: bytes, committed: Manifest, listings: set[str]
) -> list[str]:
    data = format_manifest(committed)
    worktree = ctx.reader(None)(MANIFEST_PATH)
    stage(ctx, sorted(listings))
    if worktree == staged:
        ctx.write_file(MANIFEST_PATH, data)
        stage(ctx, [MANIFEST_PATH])
    else:
        # the work tree's manifest is not the one being committed (a partial commit after
        # `git model add`, or edits left unstaged): stage the blob, refresh the file apart
        _stage_blob(ctx.repo, MANIFEST_PATH, data)
        _refresh_worktree_manifest(ctx, worktree, committed)
    return sorted(listings | {MANIFEST_PATH})


def stage(ctx: Context, paths: list[str]) -> None:
    """Stage our own files into the index git is using (deleted ones are unstaged)."""
    present = [p for p in paths if (ctx.root / p).exists()]
    gone = [p for p in paths if p not in present]
    if present:
        ctx.repo.git("add", "-f", "--", *present)
    if gone:
        ctx.repo.git("rm", "-q", "--cached", "--ignore-unmatch", "--", *gone)


def _stage_blob(repo: Repo, path: str, data: bytes) -> None:
    blob = repo.git("hash-object", "-w", "--stdin", f"--path={path}", input=data).decode().strip()
    repo.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")


def _refresh_worktree_manifest(ctx: Context, data: bytes | None, committed: Manifest) -> None:
    if data is None:
        return
    try:
        manifest = parse_manifest(data)
    except GitModelError:
        return  # a hand edit in progress: leave it to its author
    for path in manifest.artifacts:
        if path in committed.artifacts:
            manifest.artifacts[path] = committed.artifacts[path]
    refresh_versions(manifest, ctx.reader(None))
    ctx.write_manifest(manifest)


def pre_merge_commit(args: list[str]) -> int:
    """A merge git commits by itself: check that the merged manifest and listings agree.

    git writes the merge commit's tree before this hook runs, so unlike pre-commit it cannot
    change what is committed; when they disagree it stops the merge commit, and `git commit`
    (whose pre-commit hook repairs the manifest from the listings) concludes the merge.
    """
    ctx = open_context()
    if ctx is None:
        return 0
    with ctx:
        read = ctx.reader("")
        staged = read(MANIFEST_PATH)
        if staged is None:
            return 0
        manifest = parse_manifest(staged, f"merged {MANIFEST_PATH}")
        for art in manifest.artifacts.values():
            if art.is_dir:
                try:
                    read_listing(read, art)
                except GitModelError as e:
                    raise GitModelError(
                        f"{e}; conclude the merge with 'git commit': its hook recomputes "
                        f"{art.path} from the merged listing"
                    ) from None
    return 0


def _partial_commit(repo: Repo) -> bool:
    """True when git commits from a temporary index (`git commit <paths>`)."""
    index = os.environ.get("GIT_INDEX_FILE")
    if not index:
        return False
    path = Path(os.path.abspath(index))
    real = Path(os.path.abspath(repo.git_dir))
    return path.parent != real or path.name not in ("index", "index.lock")
