"""Moving one set of objects between the cache and a remote: what transfer.py's commands
(push, fetch, the pre-push hook, a checkout's fetch) all end in.

Only missing objects move: the set is checked against the destination in batches, then moved
in parallel, largest first. Each object is all-or-nothing (see remotes.store and
Cache.store_stream), so an interrupted transfer leaves no partial object and a rerun moves
only what is still missing: nothing is sent twice. Failures do not stop the other objects;
they are collected, each naming the object and the remote, for the caller to report.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..copying import SMALL_FILE
from ..errors import DiskFull, GitModelError, disk_error
from ..hashing import Oid, hash_bytes
from ..parallel import THREAD_BYTES, batches
from ..paths import safe_target
from ..remotes.packs import OBJECT_MAX as PACK_OBJECT_MAX
from ..remotes.packs import PACK_FROM
from .context import Context
from .reachable import ObjectRef

if TYPE_CHECKING:
    from ..remotes import Store

EMPTY_OID = hash_bytes(b"")
BATCH_OBJECTS = 1000  # small objects per flush to disk: what a killed transfer may send again
BATCH_BYTES = 64 << 20


@dataclass
class Meter:
    """Progress callbacks: `start(total_bytes, objects)` once, then `advance(bytes)`."""

    start: Callable[[int, int], None]
    advance: Callable[[int], None]


@dataclass
class TransferResult:
    remote: str
    url: str
    wanted: int = 0  # objects the revisions need
    present: int = 0  # already where they had to go
    moved: int = 0  # objects moved (a count: a million oids held to be counted were ~115 MiB)
    bytes: int = 0
    stored: int = 0  # what the moved objects take on the remote (compressed where it paid)
    missing: list[tuple[Oid, str]] = field(default_factory=list)  # (oid, path): nowhere to be had
    failed: list[tuple[Oid, str, str]] = field(default_factory=list)  # (oid, path, message)
    notes_merged: list[str] = field(default_factory=list)
    notes_error: str | None = None  # notes are history: failing to bring them is a warning

    def add(self, part: TransferResult) -> None:
        """Count in another transfer's outcome (objects move a group or a chunk at a time)."""
        self.wanted += part.wanted
        self.present += part.present
        self.moved += part.moved
        self.bytes += part.bytes
        self.stored += part.stored
        self.missing += part.missing
        self.failed += part.failed

    @property
    def ok(self) -> bool:
        return not self.missing and not self.failed

    def to_json(self) -> dict[str, Any]:
        return {
            "remote": self.remote,
            "url": self.url,
            "wanted": self.wanted,
            "present": self.present,
            "transferred": self.moved,
            "bytes": self.bytes,
            "stored_bytes": self.stored,
            "missing": [{"oid": o, "path": p} for o, p in self.missing],
            "failed": [{"oid": o, "path": p, "error": m} for o, p, m in self.failed],
            "notes_merged": self.notes_merged,
            "notes_error": self.notes_error,
        }


def cumulative(meter: Meter | None) -> Meter | None:
    """A meter for transfers run one after another (a pull's chunks, a push's groups): each
    start adds to the totals."""
    if meter is None:
        return None
    done = [0, 0]

    def start(total: int, count: int) -> None:
        done[0] += total
        done[1] += count
        meter.start(done[0], done[1])

    return Meter(start, meter.advance)


def _run(
    items: list[Oid],
    work: Callable[[Oid], int],
    jobs: int,
    on_done: Callable[[Oid, int | BaseException], None],
    sizes: dict[Oid, int] | None = None,
    *,
    local: bool = False,
) -> None:
    """Run `work` over `items` in a pool, small objects handed over in groups (one hand-over
    costs more than copying 4 KiB; see parallel.batches). Ctrl-C cancels what has not started;
    what has started finishes, or leaves at most a temp file behind. `local`: the far side is
    a local folder, where small objects move faster in this thread than on threads (see
    parallel.map_batched); over a network, threads hide the latency."""
    groups = (
        batches([sizes.get(o, 1 << 30) for o in items])
        if sizes
        else [[i] for i in range(len(items))]
    )
    inline: list[list[int]] = []
    if local and sizes:
        weight = [sum(sizes.get(items[i], 1 << 30) for i in g) for g in groups]
        inline = [g for g, w in zip(groups, weight) if w < THREAD_BYTES]
        groups = [g for g, w in zip(groups, weight) if w >= THREAD_BYTES]

    def run(group: list[int]) -> list[tuple[Oid, int | BaseException]]:
        out: list[tuple[Oid, int | BaseException]] = []
        for i in group:
            try:
                out.append((items[i], work(items[i])))
            except Exception as e:  # reported per object by on_done
                out.append((items[i], e))
        return out

    pool = ThreadPoolExecutor(max(1, min(jobs, len(groups) or 1)))
    try:
        futures = [pool.submit(run, group) for group in groups]
        for group in inline:
            for oid, outcome in run(group):
                on_done(oid, outcome)
        for fut in as_completed(futures):
            for oid, outcome in fut.result():
                on_done(oid, outcome)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _batches(todo: list[Oid], wanted: dict[Oid, ObjectRef]) -> Iterator[list[Oid]]:
    """`todo` in runs that each share one flush to disk: every large object in the first run
    (each is flushed on its own anyway, and the small ones fill the pool beside them), small
    ones at most BATCH_OBJECTS and about BATCH_BYTES to a run."""
    chunk = [o for o in todo if wanted[o].size > SMALL_FILE]
    count = total = 0
    for oid in todo:
        if wanted[oid].size > SMALL_FILE:
            continue
        if count >= BATCH_OBJECTS or total + wanted[oid].size > BATCH_BYTES:
            yield chunk
            chunk, count, total = [], 0, 0
        chunk.append(oid)
        count += 1
        total += wanted[oid].size
    if chunk:
        yield chunk


def known_size(oid: Oid, size: int) -> int | None:
    """An object's size as the manifests give it, or None where it is not known (callers
    that only know paths pass 0; only the empty object really has size 0)."""
    return size if size > 0 or oid == EMPTY_OID else None


def _work_tree_path(ctx: Context, ref: ObjectRef) -> str | None:
    """Where in the work tree a file using the object goes (None if that is not safe)."""
    if ref.size <= SMALL_FILE or ref.part:  # (a part is not the file: see partstore.py)
        return None
    try:
        return os.fspath(safe_target(ctx.root, ref.path))
    except GitModelError:
        return None


def _in_cache(ctx: Context, oids: Iterable[Oid]) -> set[Oid]:
    """Which of `oids` the cache holds: one directory listing per prefix, not a stat each."""
    by_prefix: dict[str, list[Oid]] = {}
    for oid in oids:
        by_prefix.setdefault(oid[:2], []).append(oid)
    found: set[Oid] = set()
    for prefix, group in by_prefix.items():
        if len(group) == 1:
            found.update(o for o in group if ctx.cache.has(o))
            continue
        try:
            names = set(os.listdir(ctx.cache.objects / prefix))
        except FileNotFoundError:
            continue
        found.update(o for o in group if o[2:] in names)
    return found


def move_objects(
    ctx: Context,
    remote: Store,
    wanted: dict[Oid, ObjectRef],
    *,
    upload: bool,
    jobs: int,
    meter: Meter | None,
    for_checkout: bool = False,
) -> TransferResult:
    """Move the objects of `wanted` that the far side lacks. `for_checkout`: a checkout will
    write these objects into the work tree next, so a large one is also written there while
    it downloads (see prepared.py)."""
    result = TransferResult(remote.name, remote.url, wanted=len(wanted))
    jobs = jobs or remote.default_jobs
    local = _in_cache(ctx, wanted)
    sizes = {o: size for o, ref in wanted.items() if (size := known_size(o, ref.size)) is not None}
    if upload:
        there = remote.existing(wanted, jobs, sizes, for_upload=True)
        todo = [o for o in wanted if o not in there and o in local]
        result.missing = [(o, wanted[o].path) for o in wanted if o not in there and o not in local]
        result.present = len(there)
    else:
        todo = [o for o in wanted if o not in local]
        result.present = len(local)
    todo.sort(key=lambda o: -wanted[o].size)  # largest first: the pool drains evenly
    if meter:
        meter.start(sum(wanted[o].size for o in todo), len(todo))
    lock = threading.Lock()
    stored: dict[Oid, int] = getattr(remote, "stored", {})  # (a store with no codec has none)
    took: dict[Oid, int] = {}  # what the objects of the run in hand took (taken out of `stored`)
    advance = meter.advance if meter else None
    # (a checkout that links work-tree files to the cache has no use for a copy)
    for_checkout = for_checkout and ctx.settings.link_type not in ("hardlink", "symlink")

    def work(oid: Oid) -> int:
        if upload:
            return remote.upload(ctx.cache, oid, advance)
        size = sizes.get(oid)
        tee_to = _work_tree_path(ctx, wanted[oid]) if for_checkout and size else None
        return remote.download(ctx.cache, oid, advance, size, tee_to)

    def done(oid: Oid, outcome: int | BaseException) -> None:
        with lock:
            if isinstance(outcome, DiskFull):
                raise outcome  # every other object would meet it too: stop, one line
            if isinstance(outcome, FileNotFoundError) and not upload:
                result.missing.append((oid, wanted[oid].path))
            elif isinstance(outcome, GitModelError):
                result.failed.append((oid, wanted[oid].path, str(outcome)))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                result.moved += 1
                result.bytes += outcome
                took[oid] = stored.pop(oid, outcome)  # (else the store's dict grows an entry
                result.stored += took[oid]  # an object: ~100 MiB at a million)

    # small objects go in batches that share one flush to disk (each whole or not there when
    # a transfer is killed: a batch is bounded, so a rerun has little to send again)
    where = f"writing objects to remote {remote.label}" if upload else "storing objects"
    try:
        if upload and remote.packing:  # many small objects: a few packs, not a PUT each
            small = sorted(o for o in todo if wanted[o].size <= PACK_OBJECT_MAX)
            if len(small) >= PACK_FROM:  # (in oid order: a fetch of a range reads neighbours)
                larger = set(remote.upload_packed(ctx.cache, small, advance, done))
                packed = set(small) - larger
                todo = [o for o in todo if o not in packed]
                took.clear()
        elif not upload and remote.plan_packed(todo, sizes):
            # what the remote holds in packs, all at once: a ranged read a run of neighbours
            with ctx.cache.batch():
                handled = remote.fetch_packed(ctx.cache, sizes, jobs, advance, done)
            todo = [o for o in todo if o not in handled]
            took.clear()
        for chunk in _batches(todo, wanted):  # (no second dict of sizes: 100,000 objects)
            remote.plan(chunk, sizes, upload=upload, jobs=jobs)  # (LFS: the hrefs, in batches)
            if not upload:
                with ctx.cache.batch():
                    _run(chunk, work, jobs, done, sizes, local=remote.local)
                took.clear()
                continue
            with remote.batch() as late:
                _run(chunk, work, jobs, done, sizes, local=remote.local)
            for oid, size, message in late:  # written, but could not take its name
                result.moved -= 1
                result.bytes -= size
                result.stored -= took.get(oid, size)
                result.failed.append((oid, wanted[oid].path, message))
            took.clear()
        if upload:
            remote.finish_uploads()
    except OSError as e:
        raise disk_error(e, where) from e
    result.missing.sort()
    result.failed.sort()
    return result
