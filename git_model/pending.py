"""Metrics measured on weights that are not committed yet.

A training script usually logs its metrics before anyone commits the weights it produced.
Attaching them to HEAD would credit the previous model with the new numbers, so
`log_metrics` keeps such a record here instead, with the version hash each model has in the
work tree, and the pre-commit hook adds it to the note of the commit that records exactly
those versions. Records whose versions HEAD already has were attached by an earlier commit
and are dropped. One file per worktree: `<git-dir>/model/pending-metrics.jsonl`.
Standard library only: the commit hook reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

NAME = "pending-metrics.jsonl"
KEY = "versions"  # model name -> version hash the metrics were measured on


def _path(git_dir: Path) -> Path:
    return git_dir / "model" / NAME


def _read(git_dir: Path) -> list[dict[str, Any]]:
    try:
        lines = _path(git_dir).read_text("utf-8").split("\n")  # JSON Lines: not splitlines
    except (FileNotFoundError, UnicodeDecodeError):
        return []
    out = []
    for line in lines:
        with contextlib.suppress(ValueError):
            rec = json.loads(line)
            if isinstance(rec, dict) and isinstance(rec.get(KEY), dict):
                out.append(rec)
    return out


def _write(git_dir: Path, records: list[dict[str, Any]]) -> None:
    path = _path(git_dir)
    if not records:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(NAME + ".tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records), "utf-8")
    os.replace(tmp, path)


def add(git_dir: Path, record: dict[str, Any], head_versions: dict[str, str]) -> None:
    """Keep `record` (which carries `versions`) until a commit records those versions."""
    _write(git_dir, [*prune(git_dir, head_versions, write=False), record])


def prune(
    git_dir: Path, head_versions: dict[str, str], *, write: bool = True
) -> list[dict[str, Any]]:
    """Drop records whose versions HEAD has (an earlier commit took them); return the rest."""
    kept = [r for r in _read(git_dir) if not _matches(r, head_versions)]
    if write:
        _write(git_dir, kept)
    return kept


def for_commit(git_dir: Path, versions: dict[str, str]) -> list[dict[str, Any]]:
    """The pending records a commit with these model versions takes into its note."""
    if not _path(git_dir).exists():
        return []
    return [r for r in _read(git_dir) if _matches(r, versions)]


def _matches(record: dict[str, Any], versions: dict[str, str]) -> bool:
    wanted = record[KEY]
    return bool(wanted) and all(versions.get(name) == v for name, v in wanted.items())
