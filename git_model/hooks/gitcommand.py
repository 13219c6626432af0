"""What the `git commit` running pre-commit was asked to do, as far as git's own command line says.

git decides whether a commit has anything in it before pre-commit runs, and tells the hook
nothing of its options. Whether it will commit even so (`--amend`, `--allow-empty`) is read
from the command line of the git process running the hook (the shim passes its pid on), in
/proc. Where that cannot be read (no /proc, a hook manager between git and the shim) the
answer is "unknown", and the caller must then act as if git would commit.
"""

from __future__ import annotations

from . import handoff

# options with which git commits an index equal to HEAD (abbreviations git accepts included)
_COMMITS_ANYWAY = ("--amend", "--allow-empty")


def commits_anyway() -> bool | None:
    """True if the running `git commit` commits even with nothing staged; None if unknown."""
    try:
        with open(f"/proc/{handoff.git_pid()}/cmdline", "rb") as f:
            argv = f.read().decode("utf-8", "surrogateescape").split("\0")
    except OSError:
        return None
    if not argv or not argv[0].rsplit("/", 1)[-1].startswith("git") or "commit" not in argv:
        return None
    for arg in argv[argv.index("commit") + 1 :]:
        if arg == "--":
            break
        if len(arg) >= 4 and any(option.startswith(arg) for option in _COMMITS_ANYWAY):
            return True
    return False
