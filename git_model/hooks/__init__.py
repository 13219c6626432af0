"""Git hooks: placeholder until the hooks land."""

from __future__ import annotations


def run_hook(args: list[str]) -> int:
    return 0
