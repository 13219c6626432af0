"""git-model: version machine-learning models the way git versions code.

The Python API for training and serving code lives here; it never imports the CLI (no click),
only the standard library and the `git` binary:

    import git_model

    print(git_model.version("digits"))                 # the model version at HEAD
    git_model.log_metrics({"accuracy": 0.93}, model="digits")
    with git_model.open("model.npz", rev="digits@prod") as f:   # serving: verified bytes
        weights = f.read()

Every function takes `repo`, a path anywhere inside the work tree (default: the current
directory), and raises `git_model.errors.GitModelError` (one line saying what to do) on failure.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # (not at run time: the commit hook and status start here, in ~15 ms)
    from collections.abc import Mapping
    from typing import Any, BinaryIO

__version__ = "0.1.0"
__all__ = ["log_metrics", "open", "version"]

PathLike = str | os.PathLike[str]


def log_metrics(
    metrics: Mapping[str, Any],
    *,
    model: str | None = None,
    rev: str | None = None,
    repo: PathLike = ".",
) -> str | None:
    """Record metrics and return the commit they went on (None: pending, see below).

    Without `rev`, the metrics describe the weights in the work tree: they go on HEAD when
    those are HEAD's, and otherwise wait for the commit that records them (a training script
    logs before anyone commits what it produced; the commit hook adds the metrics to that
    commit's note). With `rev`, they go on that commit.

    `metrics` maps names to numbers or other JSON values; nested mappings become dotted names
    (`{"eval": {"acc": 0.9}}` records `eval.acc`), numpy/torch scalars become Python numbers,
    and NaN or infinities are refused. With `model`, the metrics describe that model (it must
    exist at `rev`); without, they describe the whole commit.

    The record is appended to the commit's note on `refs/notes/model`: the commit is not
    rewritten, recording again keeps the earlier values, and reports show the latest. Metrics
    never change the model version hash.
    """
    from .ops.context import Context
    from .ops.metrics import record_metrics

    with Context.open(repo, require_init=False) as ctx:
        commit, _ = record_metrics(ctx, metrics, model=model, rev=rev)
    return commit


def version(name: str, rev: str | None = "HEAD", repo: PathLike = ".") -> str:
    """The version hash (64 hex digits) of model `name` at `rev`.

    At a revision, this is the version its manifest records (the one the commit hook wrote).
    With `rev=None`, it is computed from the work tree as it is now (artifacts hashed through
    the stat cache, so unchanged files are not re-read): the version the next commit will have.
    """
    from .errors import GitModelError
    from .ops.context import Context
    from .ops.snapshot import at_commit, work_tree

    with Context.open(repo) as ctx:
        snap = work_tree(ctx) if rev is None else at_commit(ctx, rev)
        found = snap.version(name)
        if found is None:
            names = ", ".join(sorted(snap.manifest.models)) or "none"
            where = "the work tree" if rev is None else rev
            raise GitModelError(f"no model {name!r} at {where} (models: {names})")
        return str(found)


def open(path: str, rev: str = "HEAD", repo: PathLike = ".") -> BinaryIO:
    """Open the artifact file `path` as it was at `rev`, for reading its bytes.

    `rev` is any git revision or a registry name: `NAME@v1.2.0`, `NAME@prod`, `NAME#prod`,
    `NAME@latest`. `path` is a tracked file or a file inside a tracked directory. The bytes
    come from the local cache (fetched from the default remote when missing) and are verified
    against their SHA-256 before the file is returned. Works where no git binary is installed:
    the manifest is then read with dulwich, so a serving image can load "the model at prod".
    """
    from .api import open_artifact

    return open_artifact(path, rev, repo)
