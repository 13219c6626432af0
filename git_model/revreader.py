"""Reading tracked files at a revision, with or without a git binary.

Training code runs where git is; serving images often have no git at all. `open_reader`
gives one `Reader` (path -> bytes) over a revision either way: through the `git` CLI's
long-lived `cat-file --batch` when git is installed, else through dulwich reading the object
database directly. Set GIT_MODEL_NO_GIT=1 to force the git-less path (tests do).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import GitModelError, NotARepository
from .manifest import Reader
from .registry_tags import RegistryTag


@dataclass
class RevisionFiles:
    read: Reader
    commit: str
    root: Path  # the work tree's top level
    common_dir: Path  # where the cache lives (`<common-dir>/model`)
    close: object = None


def git_available() -> bool:
    return os.environ.get("GIT_MODEL_NO_GIT") != "1" and shutil.which("git") is not None


def open_reader(repo_path: str | os.PathLike[str], rev: str) -> RevisionFiles:
    if git_available():
        return _with_git(repo_path, rev)
    return _with_dulwich(repo_path, rev)


def _with_git(repo_path: str | os.PathLike[str], rev: str) -> RevisionFiles:
    from .git import Repo

    repo = Repo.discover(repo_path)
    commit = repo.rev_parse(rev)
    if commit is None:
        raise GitModelError(f"unknown revision {rev!r}; give a commit, branch or tag")
    cat = repo.cat_file()

    def read(path: str) -> bytes | None:
        return cat.read(f"{commit}:{path}")

    return RevisionFiles(read, commit, repo.root, repo.common_dir, repo.close)


_SUFFIX = re.compile(r"(?P<base>.+?)(?P<suffix>(?:[~^]\d*)*)")
_STEP = re.compile(r"([~^])(\d*)")


def _walk_suffix(repo: Any, rev: str, parse_commit: Any) -> Any:
    """dulwich resolves names; git's `~N` and `^N` suffixes are walked here."""
    m = _SUFFIX.fullmatch(rev)
    if m is None:
        raise ValueError(rev)
    commit = parse_commit(repo, m["base"])
    for op, num in _STEP.findall(m["suffix"]):
        n = int(num) if num else 1
        if op == "~":
            for _ in range(n):
                commit = repo[commit.parents[0]]
        elif n:
            commit = repo[commit.parents[n - 1]]
    return commit


def _with_dulwich(repo_path: str | os.PathLike[str], rev: str) -> RevisionFiles:
    from dulwich.errors import NotGitRepository
    from dulwich.object_store import tree_lookup_path
    from dulwich.objects import Blob
    from dulwich.objectspec import parse_commit
    from dulwich.repo import Repo as DulwichRepo

    try:
        repo = DulwichRepo.discover(str(repo_path))
    except NotGitRepository:
        raise NotARepository(f"{repo_path} is not inside a git repository") from None
    try:
        commit = _walk_suffix(repo, rev, parse_commit)
    except (KeyError, ValueError, IndexError):
        raise GitModelError(
            f"unknown revision {rev!r} (without git, give a branch, tag or full commit id)"
        ) from None
    tree = commit.tree

    def read(path: str) -> bytes | None:
        try:
            _mode, sha = tree_lookup_path(repo.object_store.__getitem__, tree, path.encode())
            obj = repo.object_store[sha]
        except (KeyError, NotADirectoryError):
            return None
        return obj.as_raw_string() if isinstance(obj, Blob) else None

    return RevisionFiles(
        read, commit.id.decode(), Path(repo.path), Path(repo.commondir()), repo.close
    )


def dulwich_registry_tags(repo_path: str | os.PathLike[str]) -> list[RegistryTag]:
    """Registry tags read straight from the object database (for a reader with no git)."""
    from dulwich.objects import Commit, Tag
    from dulwich.repo import Repo as DulwichRepo

    from .registry_tags import RegistryTag, parse_tag_name, parse_trailers

    repo = DulwichRepo.discover(str(repo_path))
    out = []
    try:
        tags = repo.refs.as_dict(b"refs/tags")  # type: ignore[arg-type]
        for ref, sha in tags.items():
            name = ref.decode("utf-8", errors="replace")
            parsed = parse_tag_name(name)
            try:
                tag = repo[sha]
            except KeyError:
                continue
            if parsed is None or not isinstance(tag, Tag):
                continue
            target = repo.get_object(tag.object[1])
            if not isinstance(target, Commit):
                continue
            tagger = tag.tagger.decode("utf-8", errors="replace")
            author, _, email = tagger.partition(" <")
            message = tag.message.decode("utf-8", errors="replace")
            version, metrics = parse_trailers(message)
            out.append(
                RegistryTag(
                    name,
                    parsed,
                    target.id.decode(),
                    int(tag.tag_time),
                    author,
                    email.rstrip(">"),
                    message,
                    version,
                    metrics,
                )
            )
    finally:
        repo.close()
    return out
