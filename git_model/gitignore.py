"""Keeping artifact paths in the top-level `.gitignore`, so git never sees their bytes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

MARKER = "# git-model artifacts (kept by 'git model add' and 'git model rm')"
_SPECIAL = re.compile(r"([*?\[\]\\])")


def pattern_for(relpath: str) -> str:
    """An anchored gitignore pattern matching exactly `relpath`."""
    p = _SPECIAL.sub(r"\\\1", relpath)
    if p.endswith(" "):
        p = p[:-1] + "\\ "
    return "/" + p


def _read(path: Path) -> list[str]:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return []
    # git ends a line at "\n" only: a path holding U+2028 or \x1c is one line, not two
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def ensure_ignored(root: Path, relpaths: Iterable[str]) -> bool:
    """Add a pattern for each path not yet listed; True if the file changed."""
    path = root / ".gitignore"
    lines = _read(path)
    present = set(lines)
    new = [pattern_for(p) for p in sorted(set(relpaths)) if pattern_for(p) not in present]
    if not new:
        return False
    if MARKER not in present:
        if lines and lines[-1].strip():
            lines.append("")
        lines.append(MARKER)
    # keep our block together: insert after the marker's block
    at = lines.index(MARKER) + 1
    while at < len(lines) and lines[at].startswith("/"):
        at += 1
    block = sorted(set(lines[lines.index(MARKER) + 1 : at]) | set(new))
    lines[lines.index(MARKER) + 1 : at] = block
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return True


def remove_ignored(root: Path, relpaths: Iterable[str]) -> bool:
    path = root / ".gitignore"
    lines = _read(path)
    drop = {pattern_for(p) for p in relpaths}
    kept = [line for line in lines if line not in drop]
    if kept == lines:
        return False
    path.write_text("\n".join(kept) + "\n" if kept else "", "utf-8")
    return True
