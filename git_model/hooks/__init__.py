"""Git hooks: what git-model does inside `git commit`, `checkout`, `merge`, `rebase` and `push`.

`git model hook NAME ARGS...` is what the shims (see `ops/hookinstall.py`) call. It is dispatched by
`git_model.cli.main` before click is imported, and each hook lives in its own module, imported
only when that hook runs. On the no-change path a hook uses the standard library and git
subprocesses alone: heavy libraries (tomli-w to write a manifest, fsspec to fetch) are imported
only when there is something to write or fetch. tests/test_hooks_install.py checks it.

| hook | module | work |
|---|---|---|
| pre-commit | fastpath, seal, commit | record changed artifacts into the index being committed |
| pre-merge-commit | commit | check the merged manifest against its listings |
| post-commit | shim, postcommit | the versions note; partial commits; commits git made itself |
| post-checkout, post-merge, post-rewrite | restore | artifacts follow HEAD; notes follow rewrites |
| pre-push | push | hand the pushed refs to the transfer module (uploads) |
| merge-driver | mergedriver | 3-way merge of the manifest and directory listings |

Helpers: `seal` (is the commit's manifest already right? `git_model.stamps` and one pass of
lstats), `handoff` (what
pre-commit leaves for post-commit), `sizes` (big files bound for git), `guard` (missing
artifacts, what a merge brought in), `versionnote` (the versions record on each commit).
Installing the shims and the git settings behind them is an operation (`ops/hookinstall.py`,
called by `git model init`): ops never import hooks.
"""

from __future__ import annotations

import importlib
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing costs a hook ~3 ms to import)
    from ..ops.context import Context

HANDLERS = {
    "pre-commit": ("fastpath", "pre_commit"),
    "pre-merge-commit": ("commit", "pre_merge_commit"),
    "post-commit": ("postcommit", "post_commit"),
    "post-checkout": ("restore", "post_checkout"),
    "post-merge": ("restore", "post_merge"),
    "post-rewrite": ("restore", "post_rewrite"),
    "pre-push": ("push", "pre_push"),
    "merge-driver": ("mergedriver", "merge_driver"),
}


def run_hook(args: list[str]) -> int:
    if not args or args[0] not in HANDLERS:
        from ..errors import UsageError

        raise UsageError(
            f"usage: git model hook NAME [ARGS...] with NAME one of {', '.join(HANDLERS)} "
            "(the hooks installed by 'git model init' call it)"
        )
    module, function = HANDLERS[args[0]]
    handler = getattr(importlib.import_module(f"{__name__}.{module}"), function)
    return int(handler(args[1:]))


def say(message: str) -> None:
    """A line for the person running git (hooks talk on stderr, as git does), with every
    control character from outside text made visible (paths are quoted by the caller)."""
    from ..termtext import visible_lines

    print(f"git-model: {visible_lines(message)}", file=sys.stderr)


def open_context(*, anyway: bool = False) -> Context | None:
    """The repository the hook runs in, or None where git-model is not set up (a shared
    core.hooksPath can run the shims in any repository: there they do nothing). With `anyway`
    the context comes all the same (post-checkout: git-model may have been set up before)."""
    from ..ops.context import Context
    from ..paths import GITMODEL_DIR

    ctx = Context.open(require_init=False)
    if not anyway and not (ctx.root / GITMODEL_DIR).is_dir():
        ctx.close()
        return None
    return ctx
