"""`git model bisect --run CMD`: evaluate one commit without touching the user's work tree.

The commit is checked out into a temporary worktree (`git worktree add --detach`, hooks off),
its artifacts restored from the cache every worktree shares (or the default remote), and CMD
run there through the shell with `GIT_MODEL_RUN_METRICS` set, so the metrics it records with
`git_model.log_metrics` are collected, then added to that commit's note. The worktree is
removed whatever happens; the user's work tree, index and HEAD are never touched.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .. import notes
from ..errors import GitModelError, UsageError
from .checkout import checkout, default_fetcher
from .context import Context
from .run import check_command, run_command


def worktree_evaluator(ctx: Context, command: str) -> Callable[[str], list[notes.Record]]:
    """Run the shell command `command` in a temporary worktree of each commit asked for; its
    metrics records go on that commit's note (and are returned)."""
    try:
        words = shlex.split(command)
    except ValueError as e:
        raise UsageError(f"--run {command!r} cannot be parsed ({e})") from None
    if words and "=" not in words[0]:
        check_command(words)  # (a command starting with VAR=value is left to the shell)
    if not words:
        raise UsageError("--run needs a command: --run 'python evaluate.py'")

    def evaluate(commit: str) -> list[notes.Record]:
        tmp = Path(tempfile.mkdtemp(prefix="git-model-bisect-"))
        tree = tmp / "worktree"
        try:
            ctx.repo.git(
                "-c", "core.hooksPath=/dev/null", "worktree", "add", "--detach", "-q",
                str(tree), commit,
            )  # fmt: skip
            with Context.open(tree, require_init=False) as sub:
                report = checkout(sub, None, fetch=default_fetcher(sub))
                if not report.ok:
                    lost = ", ".join(p for p, _ in report.missing + report.corrupt)
                    raise GitModelError(
                        f"cannot evaluate {commit[:12]}: {lost} not in the cache nor on the "
                        f"default remote; run 'git model fetch --rev {commit[:12]}'"
                    )
                code, captured = run_command(sub, ["sh", "-c", command], cwd=tree)
        finally:
            ctx.repo.git("worktree", "remove", "--force", str(tree), check=False)
            shutil.rmtree(tmp, ignore_errors=True)
            ctx.repo.git("worktree", "prune", check=False)
        if code != 0:
            raise GitModelError(
                f"the --run command exited {code} at {commit[:12]}; nothing was recorded "
                f"for it (record its metrics by hand: git model metrics set --rev {commit[:12]})"
            )
        records = [{k: v for k, v in r.items() if k != "versions"} for r in captured]
        if records:
            with ctx.lock("git model bisect"):
                notes.append_records(ctx.repo, commit, records)
        return records

    return evaluate
