"""A tracked directory's listing and the files found there, paired in path order, and the
small path helpers a restore needs around them (restore.py)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .listing import Entry
from .workspace import Found

Pair = tuple["Entry | None", "Found | None"]  # a listing's entry and the file there, by path


def merge(wanted: Iterator[Entry], present: Iterator[Found]) -> Iterator[Pair]:
    """Pair a listing's entries with the files there, both in path order."""
    e = next(wanted, None)
    f = next(present, None)
    while e is not None or f is not None:
        if f is None or (e is not None and e.relpath < f.rel):
            yield e, None
            e = next(wanted, None)
        elif e is None or f.rel < e.relpath:
            yield None, f
            f = next(present, None)
        else:
            yield e, f
            e, f = next(wanted, None), next(present, None)


def folders_of(entries: Iterable[Entry]) -> set[str]:
    """Every folder on the way to a listed file (a file found there is in the way, not extra)."""
    out: set[str] = set()
    for e in entries:
        folder = e.relpath.rpartition("/")[0]
        while folder and folder not in out:
            out.add(folder)
            folder = folder.rpartition("/")[0]
    return out


def absent(path: str | Path) -> bool:
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


def prune_empty_dirs(top: Path) -> None:
    for dirpath, _dirnames, _filenames in os.walk(top, topdown=False):
        if Path(dirpath) != top:
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)
