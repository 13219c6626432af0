"""The seal: the proof, cheap to check, that a commit needs nothing from git-model.

When pre-commit has done its full work (commit.py) it seals the state it left: the index blobs
of the manifest, of the directory listings and of every params and code component (all the
inputs of the model versions), the oid of every artifact (each with its stamp: stamps.py), and
the versions record the commit gets. The next pre-commit checks the seal with one
`git ls-files` and one pass of `lstat`s (`nothing_to_do`). If nothing differs, the manifest in
the index is already right: the hook only runs its big-file check and leaves the note for
post-commit, without parsing the manifest, opening the stat cache, or importing the modules
that do.

Anything different, unusual or unknown takes the full path: no seal, a stamp that now holds
another oid than the sealed one (`git model status` stamps what it finds), a merge or rebase
in progress, a temporary index (`git commit <paths>`), a worktree whose git dir is not `.git`.
"""

from __future__ import annotations

import os

from ..config import GIT_CONFIG_ARGS, Settings
from ..git import Spawned, operation_in_progress
from ..stamps import Stamps
from . import handoff
from .sizes import DIFF_ARGS, check_staged_sizes


def _ls_args(paths: list[str]) -> list[str]:
    return ["ls-files", "-s", "-z", "--", *paths]


def _blobs(out: bytes) -> dict[str, str]:
    blobs = {}
    for item in out.decode("utf-8", "surrogateescape").split("\0"):
        meta, _, path = item.partition("\t")
        if path:
            blobs[path] = meta.split()[1]
    return blobs


def _hook_git_dir() -> str | None:
    """The git dir of a hook git runs in the work tree's top folder (the current one),
    without asking git; None when it is not the plain layout."""
    if "GIT_DIR" in os.environ or "GIT_WORK_TREE" in os.environ:
        return None
    git_dir = os.path.join(os.getcwd(), ".git")
    if not os.path.isdir(git_dir) or os.path.exists(os.path.join(git_dir, "commondir")):
        return None
    return git_dir


def nothing_to_do() -> bool:
    """True when the seal holds: the commit's manifest is already right (the big-file check
    has run, and post-commit's note is left ready).

    Standard library and plain strings only (no Repo, pathlib or subprocess): git's three
    answers come from commands started before the artifacts' fingerprints are taken."""
    git_dir = _hook_git_dir()
    if git_dir is None or operation_in_progress(git_dir) or not Spawned.available():
        return False
    index = os.environ.get("GIT_INDEX_FILE")
    if index and os.path.basename(os.path.abspath(index)) not in ("index", "index.lock"):
        return False  # a partial commit: the full path hands post-commit what it needs
    root = os.getcwd()
    stamps = Stamps(git_dir, root)
    seal = stamps.seal
    if (
        not seal
        or not isinstance(seal.get("paths"), list)
        or not isinstance(seal.get("index"), dict)
        or not isinstance(seal.get("artifacts"), dict)
        or "note" not in seal
    ):
        return False
    # git answers these while the walk below takes the artifacts' fingerprints
    ls_files = Spawned(_ls_args(seal["paths"]))
    config = Spawned(GIT_CONFIG_ARGS)
    diff = Spawned([*DIFF_ARGS, "HEAD"])
    try:
        for path, oid in seal["artifacts"].items():
            if not stamps.holds(path, oid):
                return False
        stamps.keep_tokens(seal["artifacts"])  # (walked: the watcher's word next time)
        code, out = ls_files.result()
        if code != 0 or _blobs(out) != seal["index"]:
            return False
        if handoff.leftover_notes(git_dir) and not _has_note("HEAD"):
            return False  # an interrupted commit may have left HEAD without its note
        code, out = diff.result()
        if code != 0:
            return False
        settings = Settings(root, git_config=config.result()[1])
        check_staged_sizes(root, out, int(settings.get("maxGitFileSize")))
    finally:
        for started in (ls_files, config, diff):
            started.result()
    handoff.clear(git_dir)
    note = seal.get("note")
    if isinstance(note, tuple) and len(note) == 2:
        from ..notes import now

        text, then = note
        handoff.leave_note(git_dir, text.replace(f'"time":"{then}"', f'"time":"{now()}"', 1) + "\n")
    else:
        handoff.leave_note(git_dir, "")
    return True


def _has_note(rev: str) -> bool:
    return Spawned(["notes", "--ref=refs/notes/model", "list", rev]).result()[0] == 0
