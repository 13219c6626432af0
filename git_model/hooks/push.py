"""pre-push: before git sends commits, the objects they need go to the model remote.

Git gives the remote's name and URL as arguments and one line per ref on stdin:
`<local ref> <local sha> <remote ref> <remote sha>`. The upload itself belongs to the remotes
support (`git_model.ops.transfer.pre_push`); where it is not installed this hook does nothing.
A `GitModelError` from it blocks the push with its message.
"""

from __future__ import annotations

import importlib
import os
import sys

from . import open_context


def read_updates(lines: list[str]) -> list[tuple[str, str, str, str]]:
    out = []
    for line in lines:
        fields = line.split()
        if len(fields) == 4:
            out.append((fields[0], fields[1], fields[2], fields[3]))
    return out


def pre_push(args: list[str]) -> int:
    env = os.environ
    if "PRE_COMMIT_REMOTE_NAME" in env:  # the pre-commit framework: one ref, from its environment
        name, url = env["PRE_COMMIT_REMOTE_NAME"], env.get("PRE_COMMIT_REMOTE_URL", "")
        updates = [
            (
                env.get("PRE_COMMIT_LOCAL_BRANCH", ""),
                env.get("PRE_COMMIT_TO_REF", ""),
                env.get("PRE_COMMIT_REMOTE_BRANCH", ""),
                env.get("PRE_COMMIT_FROM_REF", ""),
            )
        ]
    else:
        name = args[0] if args else ""
        url = args[1] if len(args) > 1 else name
        updates = read_updates(sys.stdin.read().splitlines())
    try:
        transfer = importlib.import_module("git_model.ops.transfer")
    except ImportError:
        return 0
    ctx = open_context()
    if ctx is None:
        return 0
    with ctx:
        result = transfer.pre_push(ctx, name, url, updates)
    if result is not None and result.moved:
        from ..termtext import visible
        from . import say

        mib = result.bytes / (1 << 20)
        say(f"uploaded {result.moved} object(s), {mib:.1f} MiB, to {visible(result.remote)}")
    return 0
