"""Where `man` finds git-model's page, so that `git model --help` works however it was installed.

git turns `git model --help` into `man git-model`, and man-db derives its search path from
PATH: for a directory on PATH that its configuration does not map, it searches `<dir>/../man`
and `<dir>/../share/man`. An install puts the page in `<prefix>/share/man/man1` (pyproject's
data-files; setup.py makes editable installs do it too), beside `<prefix>/bin`, and pipx (1.3
and later) links it into `~/.local/share/man` beside `~/.local/bin`. Where neither happened (an
older pipx, a `git-model` linked by hand into some bin directory), `git model init` links the
page the package carries into `<bin>/../share/man/man1`, next to the `git-model` git ran.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PAGE = "git-model.1"


def packaged_page() -> Path:
    """The page inside the package (package data: every kind of install has it)."""
    return Path(__file__).resolve().parent / "man" / "man1" / PAGE


def link_where_man_looks(script: str | None = None) -> Path | None:
    """Link the packaged page where man looks for the bin directory of `script` (the
    `git-model` that is running, as git found it on PATH), unless a page is there already.
    The link made, or None (nothing to do, or that directory cannot be written)."""
    script = os.path.abspath(script or sys.argv[0])
    if os.path.basename(script) != "git-model":
        return None  # `python -m git_model`: no bin directory to go by
    prefix = Path(script).parent.parent
    if any((prefix / d / "man1" / PAGE).exists() for d in ("share/man", "man")):
        return None
    page = packaged_page()
    if not page.is_file():
        return None
    target = prefix / "share" / "man" / "man1" / PAGE
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():  # a link to a page that is gone (an older install)
            target.unlink()
        target.symlink_to(page)
    except OSError:
        return None
    return target
