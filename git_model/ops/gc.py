"""`git model gc`: drop cache objects nothing needs, never the only copy of anything.

Needed means: any manifest of any commit reachable from a ref, a reflog entry (so `git reset`
and a dropped stash stay undoable for as long as git keeps the reflog) or the stash; any work
tree's manifest and any index's (an uncommitted `git model add`); the outputs of a run not
committed yet (`git model run`'s records, local_runs.py); any object id a note record names.
Of the rest, an object is dropped only if the default remote holds it: bytes that exist
nowhere else stay unless `--force`. Recent objects stay whatever `--force` says (default: two
weeks, as git's own prune does): they are the work-tree bytes a checkout kept before replacing
them, and the objects of an add that is about to be committed.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import GitModelError
from ..hashing import Oid, is_oid
from ..notes import NOTES_REF, parse_note
from .context import Context
from .local_runs import records
from .reachable import ObjectWalk, worktrees
from .remote_config import resolve
from .wanted import Wanted

DAY = 86400.0
TMP_MAX_AGE = DAY  # stray temp files from interrupted writes


@dataclass
class GcResult:
    dry_run: bool
    needed: int = 0
    freed: int = 0  # objects (counts: a gc of a million objects holds no million oids)
    freed_bytes: int = 0
    kept_recent: int = 0
    kept_unique: int = 0  # unneeded, but on no remote
    kept_unique_bytes: int = 0
    remote: str | None = None
    tmp_removed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "needed": self.needed,
            "freed": self.freed,
            "freed_bytes": self.freed_bytes,
            "kept_recent": self.kept_recent,
            "kept_only_copy": self.kept_unique,
            "kept_only_copy_bytes": self.kept_unique_bytes,
            "remote": self.remote,
            "tmp_removed": self.tmp_removed,
        }


def _note_oids(ctx: Context) -> set[Oid]:
    """Every object id a note record names anywhere in its values."""
    listed = ctx.repo.git("notes", f"--ref={NOTES_REF}", "list", check=False).decode()
    found: set[Oid] = set()
    cat = ctx.repo.cat_file()

    def visit(value: Any) -> None:
        if isinstance(value, str):
            if is_oid(value):
                found.add(Oid(value))
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)
        elif isinstance(value, list):
            for v in value:
                visit(v)

    for line in listed.splitlines():
        blob = line.split()[0]
        data = cat.read(blob)
        if data:
            for record in parse_note(data.decode("utf-8", errors="replace")):
                visit(record)
    return found


def needed_objects(ctx: Context) -> Wanted:
    """What refs, reflogs, the stash, work trees, indexes and the records of runs not yet
    committed need (notes apart)."""
    walk = ObjectWalk(ctx.repo, refs=False)
    heads = []
    for root, head in worktrees(ctx.repo):
        walk.add_worktree(root)
        if head and head.strip("0"):  # an unborn branch shows HEAD as zeros
            heads.append(head)
    walk.add_history(["--all", "--reflog", *heads])
    for record in records(ctx):  # the outputs of runs not committed yet
        walk.add_record(record)
    return walk.wanted


def gc(
    ctx: Context, *, dry_run: bool = False, force: bool = False, keep_days: float = 14
) -> GcResult:
    """Each group of needed oids (wanted.py: one in memory at a time) is held against the
    cache objects under its prefixes. The unneeded ones gather across groups and are checked
    on the remote and dropped together, at the end or when they reach a group's size (so a gc
    that drops a million objects holds no million of them either)."""
    result = GcResult(dry_run)
    with ctx.lock("git model gc"):
        needed = needed_objects(ctx)
        notes = _note_oids(ctx)
        cutoff = time.time() - keep_days * DAY
        candidates: dict[Oid, int] = {}
        for prefixes, group in needed.groups():
            ours = set(prefixes)
            result.needed += len(group) + sum(1 for o in notes if o[:2] in ours and o not in group)
            for oid in _cached(ctx, prefixes):
                if oid in group or oid in notes:
                    continue
                try:
                    st = os.stat(ctx.cache.path(oid))
                except FileNotFoundError:
                    continue
                if st.st_mtime > cutoff:
                    result.kept_recent += 1
                else:
                    candidates[oid] = st.st_size
            group.clear()
            if len(candidates) >= needed.limit:
                _drop(ctx, result, candidates, force=force, dry_run=dry_run)
                candidates = {}
        _drop(ctx, result, candidates, force=force, dry_run=dry_run)
        if not dry_run:
            if result.freed:
                ctx.cache.note_removal()
            result.tmp_removed = _clean_tmp(ctx)
    return result


def _drop(
    ctx: Context, result: GcResult, candidates: dict[Oid, int], *, force: bool, dry_run: bool
) -> None:
    """Drop the unneeded `candidates` (oid -> size) that the default remote holds, or all of
    them with `force`; count the rest as the only copy."""
    on_remote: set[Oid] = set()
    if candidates and not force:
        spec = resolve(ctx.settings, None)
        if spec is not None:
            from .transfer import open_remote

            result.remote = spec.name
            try:
                on_remote = open_remote(spec, ctx).existing(list(candidates), sizes=candidates)
            except GitModelError as e:
                raise GitModelError(
                    f"gc could not check which objects remote {spec.name} holds ({e}); "
                    "rerun when it is reachable, or drop them anyway with --force"
                ) from None
    for oid, size in sorted(candidates.items()):
        if force or oid in on_remote:
            if not dry_run:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(ctx.cache.path(oid))
            result.freed += 1
            result.freed_bytes += size
        else:
            result.kept_unique += 1
            result.kept_unique_bytes += size


def _cached(ctx: Context, prefixes: list[str]) -> Iterator[Oid]:
    """The cache's objects under `prefixes` (`objects/ab/`), in oid order."""
    for prefix in prefixes:
        try:
            names = sorted(os.listdir(ctx.cache.objects / prefix))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            if is_oid(prefix + name):
                yield Oid(prefix + name)


def _clean_tmp(ctx: Context) -> int:
    removed = 0
    cutoff = time.time() - TMP_MAX_AGE
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(ctx.cache.tmp):
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
    return removed
