"""What pre-commit leaves for the post-commit hook of the same `git commit`.

Two kinds of file, under the worktree's git dir in `model/`:

- `post-commit-<git pid>.note`: post-commit has nothing to do but give HEAD this note (an
  empty file: nothing at all). The shim does it with one `git notes add` and no Python, so an
  everyday commit starts one interpreter, not two.
- `pre-commit.json`: the cases that need Python's post-commit (a partial commit, a merge being
  concluded), with what pre-commit did.

Both carry the pid of the git process running the hooks (the shim passes it on as
`GIT_MODEL_GIT_PID`), so a file left by a commit that stopped after pre-commit ('nothing to
commit', an empty message) is never taken for a later commit's. A note left behind is still
looked at once: when git was killed between making a commit and running its post-commit, HEAD
has no note and the left note is exactly HEAD's (versionnote.recover_lost_note).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from ..git import Repo

MARKER = "pre-commit.json"
NOTE_PREFIX = "post-commit-"
NOTE_SUFFIX = ".note"


def git_pid() -> int:
    """The git process running this hook (the shim passes it on; else our parent)."""
    try:
        return int(os.environ["GIT_MODEL_GIT_PID"])
    except (KeyError, ValueError):
        return os.getppid()


def _dir(repo: Repo) -> Path:
    return repo.git_dir / "model"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)


def clear(repo: Repo) -> None:
    """Forget whatever an earlier pre-commit left (run at the start of both hooks)."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(_dir(repo)):
            if entry.name == MARKER or (
                entry.name.startswith(NOTE_PREFIX) and entry.name.endswith(NOTE_SUFFIX)
            ):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def leftover_notes(repo: Repo) -> list[str]:
    """Notes that earlier commits left and no post-commit took: that commit stopped after
    pre-commit ('nothing to commit', an empty message), or git was killed after making it
    but before its post-commit ran. Empty notes (no models) are left out."""
    mine = f"{NOTE_PREFIX}{git_pid()}{NOTE_SUFFIX}"
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(_dir(repo)):
            name = entry.name
            if name.startswith(NOTE_PREFIX) and name.endswith(NOTE_SUFFIX) and name != mine:
                with contextlib.suppress(OSError, UnicodeDecodeError):
                    text = Path(entry.path).read_text("utf-8")
                    if text.strip():
                        found.append(text)
    return found


def leave_note(repo: Repo, text: str) -> None:
    """The note post-commit gives the new commit: `text` (its versions record, or nothing)
    plus the metrics that were logged for exactly those versions before the commit."""
    if text:
        import json

        from .. import pending
        from ..notes import encode

        versions = json.loads(text).get("models", {})
        lines = {text.strip(), *(encode(r) for r in pending.for_commit(repo.git_dir, versions))}
        text = "".join(line + "\n" for line in sorted(lines))
    _write(_dir(repo) / f"{NOTE_PREFIX}{git_pid()}{NOTE_SUFFIX}", text)


def leave_marker(repo: Repo, data: dict[str, Any]) -> None:
    import json

    _write(_dir(repo) / MARKER, json.dumps({**data, "git_pid": git_pid()}))


def take_marker(repo: Repo) -> dict[str, Any]:
    """pre-commit's marker ({} if none); `same_commit` tells whether it is this commit's."""
    import json

    path = _dir(repo) / MARKER
    try:
        data = json.loads(path.read_text("utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    data["same_commit"] = data.get("git_pid") == git_pid()
    return data
