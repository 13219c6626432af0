"""Paths that come from manifests, listings, notes and the command line.

Everything git-model writes into the work tree goes through `check_relpath` (is the text a safe,
normalised POSIX path inside the tree?) and `safe_target` (do the directories on the way there
stay inside the tree, with no symlink leading out?). A hostile manifest can name any path it
likes; it can never make git-model write outside the work tree or into `.git/`.
"""

from __future__ import annotations

import os

from .errors import UnsafePath

TYPE_CHECKING = False
if TYPE_CHECKING:  # (pathlib is imported where a function needs it: not by the commit hook)
    from pathlib import Path

GITMODEL_DIR = ".gitmodel"


def quote_path(path: str) -> str:
    """termtext.quote_path, imported only for an error message (the hooks and the fast status
    import this module on every run, and termtext's regular expressions cost them ~8 ms)."""
    from .termtext import quote_path as quote

    return quote(path)


def _utf8(path: str) -> bool:
    """No lone surrogate (surrogateescape: bytes that were not UTF-8)."""
    if path.isascii():
        return True
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_relpath(path: str, *, what: str = "path") -> str:
    """Return `path` if it is a normalised relative POSIX path inside the tree, else raise."""
    if not isinstance(path, str) or not path:
        raise UnsafePath(f"{what} is empty; fix the manifest or pass a real path")
    bad = next((c for c in ("\0", "\n", "\r", "\\") if c in path), None)
    if bad is not None:
        raise UnsafePath(
            f"{what} {quote_path(path)} contains {bad!r}; rename it (git-model refuses such names)"
        )
    if not _utf8(path):  # surrogateescape: the listings and manifest hold UTF-8 text
        raise UnsafePath(f"{what} {quote_path(path)} is not UTF-8; rename it")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise UnsafePath(
            f"{what} {quote_path(path)} is absolute; manifests hold paths relative to the work tree"
        )
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise UnsafePath(
                f"{what} {quote_path(path)} is not a normalised path inside the work tree"
            )
        if part.lower() == ".git":
            raise UnsafePath(
                f"{what} {quote_path(path)} points into .git; git-model never writes there"
            )
    return path


def to_relpath(root: Path, path: str | os.PathLike[str], cwd: Path | None = None) -> str:
    """Turn a command-line path into a checked POSIX path relative to the work tree."""
    from pathlib import Path, PurePosixPath

    p = Path(path)
    if not p.is_absolute():
        p = (cwd or Path.cwd()) / p
    absolute = Path(os.path.normpath(p))
    try:
        rel = absolute.relative_to(root)
    except ValueError:
        # the root may be reached through a symlink (e.g. /tmp -> /private/tmp)
        try:
            rel = absolute.resolve().relative_to(root.resolve())
        except ValueError:
            raise UnsafePath(
                f"{quote_path(str(path))} is outside the repository at {quote_path(str(root))}"
            ) from None
    text = PurePosixPath(*rel.parts).as_posix()
    if text in ("", "."):
        raise UnsafePath(f"{path} is the whole work tree; name the files or directories to track")
    return check_relpath(text)


def safe_target(root: Path, relpath: str) -> Path:
    """The absolute path to write `relpath` to, refusing any symlinked directory on the way.

    Each existing parent directory must be a real directory (not a symlink), so a tracked
    directory replaced by a link to /etc cannot redirect a write.
    """
    check_relpath(relpath)
    current = root
    parts = relpath.split("/")
    for part in parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise UnsafePath(
                f"{current.relative_to(root)} is a symlink; git-model will not write through it "
                "(remove the link and run 'git model checkout')"
            )
        if current.exists() and not current.is_dir():
            raise UnsafePath(
                f"{current.relative_to(root)} is a file where a directory is expected; "
                "move it away and run 'git model checkout'"
            )
    return root / relpath


def is_within(child: str, parent: str) -> bool:
    return child == parent or child.startswith(parent + "/")
