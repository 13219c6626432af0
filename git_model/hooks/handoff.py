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

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # (the commit hook's no-change path imports neither)
    from typing import Any

    GitDir = str | os.PathLike[str]

MARKER = "pre-commit.json"
NOTE_PREFIX = "post-commit-"
NOTE_SUFFIX = ".note"
PENDING = (
    "pending-metrics.jsonl"  # pending.NAME (not imported: pathlib, json; a test holds them equal)
)


def git_pid() -> int:
    """The git process running this hook (the shim passes it on; else our parent)."""
    try:
        return int(os.environ["GIT_MODEL_GIT_PID"])
    except (KeyError, ValueError):
        return os.getppid()


def _dir(git_dir: GitDir) -> str:
    return os.path.join(git_dir, "model")


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _entries(git_dir: GitDir) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(_dir(git_dir)) as it:
            return list(it)
    except FileNotFoundError:
        return []


def _ours(name: str) -> bool:
    return name.startswith(NOTE_PREFIX) and name.endswith(NOTE_SUFFIX)


def clear(git_dir: GitDir) -> None:
    """Forget whatever an earlier pre-commit left (run at the start of both hooks)."""
    for entry in _entries(git_dir):
        if entry.name == MARKER or _ours(entry.name):
            try:  # noqa: SIM105 (contextlib: ~1 ms more on every commit)
                os.unlink(entry.path)
            except FileNotFoundError:
                pass


def leftover_notes(git_dir: GitDir) -> list[str]:
    """Notes that earlier commits left and no post-commit took: that commit stopped after
    pre-commit ('nothing to commit', an empty message), or git was killed after making it
    but before its post-commit ran. Empty notes (no models) are left out."""
    mine = f"{NOTE_PREFIX}{git_pid()}{NOTE_SUFFIX}"
    found = []
    for entry in _entries(git_dir):
        if _ours(entry.name) and entry.name != mine:
            try:
                with open(entry.path, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError):
                continue
            if text.strip():
                found.append(text)
    return found


def leave_note(git_dir: GitDir, text: str) -> None:
    """The note post-commit gives the new commit: `text` (its versions record, or nothing)
    plus the metrics that were logged for exactly those versions before the commit."""
    if text and os.path.exists(os.path.join(_dir(git_dir), PENDING)):
        import json
        from pathlib import Path

        from .. import pending
        from ..notes import encode

        versions = json.loads(text).get("models", {})
        records = pending.for_commit(Path(git_dir), versions)
        lines = {text.strip(), *(encode(r) for r in records)}
        text = "".join(line + "\n" for line in sorted(lines))
    _write(os.path.join(_dir(git_dir), f"{NOTE_PREFIX}{git_pid()}{NOTE_SUFFIX}"), text)


def leave_marker(git_dir: GitDir, data: dict[str, Any]) -> None:
    import json

    _write(os.path.join(_dir(git_dir), MARKER), json.dumps({**data, "git_pid": git_pid()}))


def take_marker(git_dir: GitDir) -> dict[str, Any]:
    """pre-commit's marker ({} if none); `same_commit` tells whether it is this commit's."""
    import json

    try:
        with open(os.path.join(_dir(git_dir), MARKER), encoding="utf-8") as f:
            data = json.load(f)
    except (FileNotFoundError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    data["same_commit"] = data.get("git_pid") == git_pid()
    return data
