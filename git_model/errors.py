"""The one family of expected failures.

Every error a user can cause or fix is a `GitModelError` whose message is one line that says
what went wrong and what to run next. The CLI boundary turns it into that line and its exit
code; anything else is a bug and gets a traceback.
"""

from __future__ import annotations

import errno


class GitModelError(Exception):
    """An expected failure: one line for the user, exit code 1."""

    exit_code = 1


class UsageError(GitModelError):
    """The command line itself is wrong (exit 2)."""

    exit_code = 2


class NotARepository(GitModelError):
    """Not inside a git work tree."""


class NotInitialized(GitModelError):
    """git-model has not been set up in this repository."""


class UnsafePath(GitModelError):
    """A path from a manifest, listing or the command line escapes the work tree."""


class CorruptObject(GitModelError):
    """Bytes that do not hash to the oid that names them."""


class OversizedObject(CorruptObject):
    """More bytes arrived than the object has: refused without reading the rest."""


class DiskFull(GitModelError):
    """No space left where git-model was writing: the same error awaits every other write."""


class MissingObject(GitModelError):
    """An object the work tree needs is not in the cache."""


class ManifestError(GitModelError):
    """A manifest or directory listing that cannot be read."""


class LockTimeout(GitModelError):
    """Another git-model process holds the repository lock."""


class GitError(GitModelError):
    """A git command failed."""


def disk_error(e: OSError, doing: str) -> GitModelError:
    """One line for a failed write, saying what to do about it."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"no space left on device while {doing}; free some space and rerun")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return GitModelError(
            f"permission denied while {doing} ({e.filename}); fix the permissions and rerun"
        )
    return GitModelError(f"{e.strerror or e} while {doing}; rerun once the cause is fixed")
