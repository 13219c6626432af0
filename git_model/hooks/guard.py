"""What pre-commit checks before it records: big files bound for git, missing artifacts, merges.

The size check looks only at what this commit adds or changes in git (`git diff-index --cached`
against HEAD, honouring `GIT_INDEX_FILE`), compares work-tree sizes first (a `stat` each, no
git process), and asks git for the staged blob's size only for files that look too big, so a
Git LFS pointer or a file trimmed after staging is judged by what would really be committed.
"""

from __future__ import annotations

import os

from ..errors import GitModelError
from ..git import Repo, run_git
from ..manifest import Artifact, Manifest, Reader, listing_oid, listing_path, parse_listing
from ..ops.context import Context
from ..paths import GITMODEL_DIR
from ..workspace import Workspace

IN_PROGRESS = ("MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "rebase-merge", "rebase-apply")
_REGULAR = ("100644", "100755")


def operation_in_progress(repo: Repo) -> bool:
    """A merge, cherry-pick, revert or rebase is under way in this worktree."""
    return any((repo.git_dir / name).exists() for name in IN_PROGRESS)


def missing_message(paths: list[str]) -> str:
    shown = " ".join(paths[:5]) + (f" (and {len(paths) - 5} more)" if len(paths) > 5 else "")
    return (
        f"tracked artifact {shown} is missing from the work tree, so this commit cannot record "
        f"it; put it back with 'git model checkout', or stop tracking it with 'git model rm {paths[0]}'"
    )


def merged_in(ctx: Context, index: Manifest, head: Manifest, ws: Workspace) -> set[str]:
    """Artifacts whose index entry came from the other side of a merge (the work tree still
    holds HEAD's bytes, or nothing): the commit keeps them as the index has them."""
    keep: set[str] = set()
    read = ctx.reader("")
    for path, art in sorted(index.artifacts.items()):
        if art.is_dir:
            art = index.artifacts[path] = _from_listing(read, art)
        ours = head.artifacts.get(path)
        if ours == art:
            continue
        try:
            scanned = ws.scan(path, store=False)
        except GitModelError:
            continue  # not something we can read: recording reports it properly
        if scanned is None or (ours is not None and scanned.artifact.oid == ours.oid):
            keep.add(path)
    return keep


def _from_listing(read: Reader, art: Artifact) -> Artifact:
    """A directory as its staged listing has it: after a listing conflict resolved by hand,
    the listing is the truth and the manifest entry follows it."""
    path = listing_path(art.path)
    data = read(path)
    if data is None or listing_oid(data) == art.oid:
        return art
    entries = parse_listing(data, path)
    return Artifact(art.path, listing_oid(data), sum(e.size for e in entries), len(entries))


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def check_git_file_sizes(ctx: Context) -> None:
    """Refuse a commit that puts a file over `model.maxGitFileSize` into git itself."""
    limit = int(ctx.settings.get("maxGitFileSize"))
    if limit <= 0:
        return
    base = "HEAD"
    args = ["diff-index", "--cached", "-z", "--no-renames", "--diff-filter=AM"]
    proc = run_git([*args, base], cwd=ctx.root, check=False)
    if proc.returncode != 0:  # no commit yet: everything staged is new
        empty = run_git(["hash-object", "-t", "tree", "--stdin"], cwd=ctx.root, input=b"")
        proc = run_git([*args, empty.stdout.decode().strip()], cwd=ctx.root)
    items = proc.stdout.decode("utf-8", errors="surrogateescape").split("\0")
    suspects: dict[str, str] = {}  # path -> staged blob
    for meta, path in zip(items[::2], items[1::2]):
        fields = meta.split()
        if len(fields) < 4 or fields[1] not in _REGULAR or path.startswith(GITMODEL_DIR + "/"):
            continue
        try:
            size = os.lstat(ctx.root / path).st_size
        except OSError:
            size = limit + 1  # staged, then deleted: ask git
        if size > limit:
            suspects[path] = fields[3]
    if not suspects:
        return
    out = run_git(
        ["cat-file", "--batch-check"],
        cwd=ctx.root,
        input="".join(f"{blob}\n" for blob in suspects.values()).encode(),
    )
    sizes = {}
    for line in out.stdout.decode().splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2].isdigit():
            sizes[fields[0]] = int(fields[2])
    big = [(p, sizes[b]) for p, b in sorted(suspects.items()) if sizes.get(b, 0) > limit]
    if not big:
        return
    path, size = big[0]
    more = f" and {len(big) - 1} more file(s)" if len(big) > 1 else ""
    names = " ".join(p for p, _ in big[:5])
    raise GitModelError(
        f"{path} ({_human(size)}){more} would go into git itself, over model.maxGitFileSize "
        f"({_human(limit)}); track it with 'git model add {names}' "
        "(or raise the limit: git config model.maxGitFileSize 100M)"
    )
