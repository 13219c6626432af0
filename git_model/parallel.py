"""Running per-file work on a thread pool, in batches.

Hashing and copying release the GIL, so threads use every core; but handing one task to a
pool costs ~20 µs, more than hashing a 4 KiB file. Files go to the threads in batches of up to
BATCH_FILES files or about BATCH_BYTES bytes, so 10,000 small files cost ~160 hand-overs and a
large file still gets a thread of its own. A directory of many files is worked through in
chunks of CHUNK files (`chunked`), so memory does not grow with the number of files.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

BATCH_FILES = 64
BATCH_BYTES = 16 << 20
CHUNK = 4096  # files a large directory is worked through by: bounds memory, not parallelism


def default_jobs() -> int:
    return max(2, min(16, (os.cpu_count() or 2) * 2))


def batches(sizes: Sequence[int]) -> list[list[int]]:
    """Indexes into `sizes`, split into batches of up to BATCH_FILES files or ~BATCH_BYTES."""
    out: list[list[int]] = []
    batch: list[int] = []
    nbytes = 0
    for i, size in enumerate(sizes):
        if batch and (len(batch) >= BATCH_FILES or nbytes + size > BATCH_BYTES):
            out.append(batch)
            batch, nbytes = [], 0
        batch.append(i)
        nbytes += size
    if batch:
        out.append(batch)
    return out


def map_batched(work: Callable[[int], T], sizes: Sequence[int], jobs: int) -> list[T]:
    """`[work(i) for i in range(len(sizes))]`, run on up to `jobs` threads in batches.

    The first exception raised by `work` propagates (after the running batches finish).
    """
    groups = batches(sizes)

    def run(batch: list[int]) -> list[T]:
        return [work(i) for i in batch]

    if len(groups) > 1 and jobs > 1:
        from concurrent.futures import ThreadPoolExecutor  # imported only when used

        with ThreadPoolExecutor(min(jobs, len(groups))) as pool:
            done = list(pool.map(run, groups))
    else:
        done = [run(batch) for batch in groups]
    return [result for group in done for result in group]


def chunked(items: Iterable[T], size: int = 0) -> Iterator[list[T]]:
    """`items` in lists of `size` (CHUNK by default; the last one shorter): a long stream a
    piece at a time."""
    it = iter(items)
    while chunk := list(itertools.islice(it, size or CHUNK)):
        yield chunk
