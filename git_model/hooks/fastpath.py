"""pre-commit: the seal first (seal.py), the full work (commit.py) only when it does not hold.

The one module that knows both: commit.py makes seals and never comes back here, so the
no-change path imports neither commit.py nor what it needs.
"""

from __future__ import annotations

from .seal import nothing_to_do


def pre_commit(args: list[str]) -> int:
    if nothing_to_do():
        return 0
    from .commit import pre_commit as full

    return full(args)
