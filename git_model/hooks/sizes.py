"""The commit hook's guard against big files going into git itself.

Only what this commit adds or changes in git is looked at (`git diff-index --cached` against
HEAD, honouring `GIT_INDEX_FILE`). Work-tree sizes are compared first (a `stat` each, no git
process), and git is asked for the staged blob's size only for files that look too big, so a
Git LFS pointer or a file trimmed after staging is judged by what would really be committed.
Standard library and git.py only: the fast path runs it on every commit.
"""

from __future__ import annotations

import os

from ..errors import GitModelError
from ..git import run_git
from ..paths import GITMODEL_DIR

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config import Settings
    from ..git import Repo

_REGULAR = ("100644", "100755")
DIFF_ARGS = ("diff-index", "--cached", "-z", "--no-renames", "--diff-filter=AMT")  # + a base


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def check_git_file_sizes(repo: Repo, settings: Settings) -> None:
    """Refuse a commit that puts a file over `model.maxGitFileSize` into git itself."""
    limit = int(settings.get("maxGitFileSize"))
    if limit <= 0:
        return
    args = list(DIFF_ARGS)
    proc = run_git([*args, "HEAD"], cwd=repo.root, check=False)
    if proc.returncode != 0:  # no commit yet: everything staged is new
        empty = run_git(["hash-object", "-t", "tree", "--stdin"], cwd=repo.root, input=b"")
        proc = run_git([*args, empty.stdout.decode().strip()], cwd=repo.root)
    check_staged_sizes(repo.root, proc.stdout, limit)


def check_staged_sizes(root: str | os.PathLike[str], diff: bytes, limit: int) -> None:
    """The same, given what `git diff-index` (DIFF_ARGS) printed against the commit's base."""
    if limit <= 0:
        return
    items = diff.decode("utf-8", errors="surrogateescape").split("\0")
    suspects: dict[str, str] = {}  # path -> staged blob
    for meta, path in zip(items[::2], items[1::2]):
        fields = meta.split()
        if len(fields) < 4 or fields[1] not in _REGULAR or path.startswith(GITMODEL_DIR + "/"):
            continue
        try:
            size = os.lstat(os.path.join(root, path)).st_size
        except OSError:
            size = limit + 1  # staged, then deleted: ask git
        if size > limit:
            suspects[path] = fields[3]
    if not suspects:
        return
    out = run_git(
        ["cat-file", "--batch-check"],
        cwd=root,
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
    import shlex

    names = shlex.join(p for p, _ in big[:5])
    raise GitModelError(
        f"{path} ({_human(size)}){more} would go into git itself, over model.maxGitFileSize "
        f"({_human(limit)}); track it with 'git model add {names}' "
        "(or raise the limit: git config model.maxGitFileSize 100M)"
    )
