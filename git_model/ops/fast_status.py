"""`git model status` when nothing changed: the last answer, proven still true by `lstat`s.

status.py leaves its answer in the stamps (stamps.py) when every artifact was unchanged. This
module gives it again, without git, click, the manifest parser, sqlite or the cache, when:

- the repository is the plain layout (a `.git` folder above the current one, no `GIT_DIR`
  and friends, owned by this user), set up for git-model;
- the manifest and the listings have the very stat data they had when that answer was
  taken (the racy-timestamp rule applies as to every stamp);
- every artifact is as stamped for the oid the manifest gives (`Stamps.holds`: the watcher's
  word when `git model watch` runs, else its fingerprint);
- no object has left the cache since each artifact was seen complete in it.

Anything else (`None`) runs the full status, which stamps again. The output is the full
status's, byte for byte, paths quoted as git quotes them (termtext.quote_path, imported only
for a path that needs it); tests/test_stamps.py and tests/test_hostile_text.py hold the two
side by side.
"""

from __future__ import annotations

import os
import sys

from ..stamps import Stamps, files_fingerprint, removal_generation, trusted

MANIFEST_PATH = ".gitmodel/manifest.toml"  # (manifest.py's, not imported: it loads tomllib)
_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_CEILING_DIRECTORIES")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _root() -> str | None:
    """The work tree's top folder, found as git finds it in the plain layout; None for
    anything else (git then says)."""
    if any(name in os.environ for name in _ENV):
        return None
    cwd = here = os.getcwd()
    while True:
        git_dir = os.path.join(here, ".git")
        try:
            st = os.lstat(git_dir)
        except FileNotFoundError:
            parent = os.path.dirname(here)
            if parent == here:
                return None
            here = parent
            continue
        except OSError:
            return None
        import stat

        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            return None  # a worktree or submodule (`.git` file), or not ours: ask git
        if os.path.exists(os.path.join(git_dir, "commondir")):
            return None
        if os.path.relpath(cwd, here).split(os.sep)[0] == ".git":
            return None  # inside the git dir: git has its own answer
        return here


def answer(as_json: bool) -> str | None:
    """What `git model status [--json]` prints, or None when it has to be worked out."""
    root = _root()
    if root is None:
        return None
    git_dir = os.path.join(root, ".git")
    stamps = Stamps(git_dir, root)
    known = stamps.status
    if not known:
        return None
    try:
        inputs, listings, rows = known["inputs"], known["listings"], known["rows"]
        current = files_fingerprint(root, [MANIFEST_PATH, *listings])
        if not trusted(inputs, current) or not rows:
            return None
        generation = removal_generation(os.path.join(git_dir, "model"))
        for path, oid, *_ in rows:
            if stamps.cached.get(oid) != generation or not stamps.holds(path, oid):
                return None
        stamps.keep_tokens({row[0]: row[1] for row in rows})  # (walked: the watcher's word next)
    except (KeyError, TypeError, ValueError):
        return None  # a stamps file of another shape: the full status writes a new one
    if as_json:
        return _json(rows)
    return _text(rows)


def _plain(path: str) -> bool:
    """A path every output prints as it is (git's quoting leaves it alone)."""
    return path.isascii() and path.isprintable() and '"' not in path and "\\" not in path


def _text(rows: list[Any]) -> str:
    label = "unchanged"  # (every row is: ops/status.py remembers no other answer)
    if "NO_COLOR" not in os.environ and sys.stdout.isatty():
        label = f"\x1b[32m{label}\x1b[0m"  # as click.style(fg="green")
    paths = [row[0] for row in rows]
    if not all(map(_plain, paths)):  # quoted as the full status quotes them (termtext)
        from ..termtext import quote_path

        paths = list(map(quote_path, paths))
    return "".join(f"{label}  {path}\n" for path in paths)


def _json(rows: list[Any]) -> str:
    import json

    artifacts = []
    for path, oid, size, files, _executable, is_dir in rows:
        artifacts.append(
            {
                "path": path,
                "state": "unchanged",
                "oid": oid,
                "size": size,
                "current_oid": oid,
                "current_size": size,
                "in_cache": True,
                "files": files if is_dir else None,
                "added": [] if is_dir else None,
                "removed": [] if is_dir else None,
                "modified": [] if is_dir else None,
            }
        )
    document = {"format": 1, "artifacts": artifacts}  # (cli/render.py's emit_json)
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
