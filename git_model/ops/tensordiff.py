"""Diff inside the weights: which tensors of a model file changed between two versions.

From the two tensor listings alone (git, no cache): tensors added, removed, reshaped, retyped
and modified (same name, shape and dtype, other bytes), with their sizes, and a summary of how
much of the model that is ("12 of 292 tensors changed (4.1% of parameters)"). Tensors whose
part did not change are not listed: frozen layers show as what is missing from the list.

`--stats` (`measure`) adds, for each modified float tensor (F64, F32, F16, BF16) whose two
versions are both at hand (the cache, or the work tree's file), how it moved: ‖Δ‖/‖W‖ (W the
old tensor), max |Δ| and the fraction of elements that changed. numpy is imported there only,
and each tensor is read a slice at a time, so memory stays flat.
"""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..cache import Cache
from ..formats import FLOATS, ITEMSIZE, count
from ..hashing import MAPPED_STEP
from ..tensors import TensorListing, TensorPart
from .snapshot import Snapshot

ADDED, REMOVED, RESHAPED, RETYPED, MODIFIED = "added", "removed", "reshaped", "retyped", "modified"
KINDS = (ADDED, REMOVED, RESHAPED, RETYPED, MODIFIED)
# elements of one tensor compared at a time by --stats: a slice's five buffers (~1.7 MiB in
# float64) stay in the caches between numpy's passes over them; 1 << 18 took ~1.5× as long
SLICE = 1 << 16


@dataclass
class TensorChange:
    name: str
    status: str
    old: TensorPart | None
    new: TensorPart | None
    stats: dict[str, float | None] | None = None

    @property
    def parameters(self) -> int:
        side = self.new or self.old
        assert side is not None and side.shape is not None
        return count(side.shape)

    def to_json(self) -> dict[str, Any]:
        def side(p: TensorPart | None) -> dict[str, Any] | None:
            if p is None:
                return None
            return {
                "dtype": p.dtype,
                "shape": list(p.shape or ()),
                "bytes": nbytes(p),
                "oid": p.oid,
            }

        return {
            "name": self.name,
            "status": self.status,
            "old": side(self.old),
            "new": side(self.new),
            "stats": self.stats,
        }


@dataclass
class TensorDiff:
    format: str
    tensors: int  # in the new version (the old one when the file was removed)
    parameters: int
    changes: list[TensorChange] = field(default_factory=list)

    @property
    def changed_parameters(self) -> int:
        return sum(c.parameters for c in self.changes)

    def summary(self) -> str:
        share = self.changed_parameters / self.parameters if self.parameters else 0.0
        return (
            f"{len(self.changes)} of {self.tensors} tensors changed "
            f"({100 * share:.1f}% of parameters)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "tensors": self.tensors,
            "parameters": self.parameters,
            "changed": len(self.changes),
            "changed_parameters": self.changed_parameters,
            "changes": [c.to_json() for c in self.changes],
        }


def nbytes(p: TensorPart) -> int:
    """The tensor's own bytes (its part's length where the element size is not known)."""
    size = ITEMSIZE.get(p.dtype or "")
    if size is None or p.shape is None:
        return p.length - ((p.data or p.offset) - p.offset)
    return count(p.shape) * size


def compare(old: TensorListing, new: TensorListing) -> TensorDiff:
    a = {p.name: p for p in old.parts if p.is_tensor}
    b = {p.name: p for p in new.parts if p.is_tensor}
    out = TensorDiff(new.format, len(b), sum(count(p.shape or ()) for p in b.values()))
    for name in sorted(a.keys() | b.keys()):
        x, y = a.get(name), b.get(name)
        if x is None:
            status = ADDED
        elif y is None:
            status = REMOVED
        elif x.shape != y.shape:
            status = RESHAPED
        elif x.dtype != y.dtype:
            status = RETYPED
        elif x.oid != y.oid:
            status = MODIFIED
        else:
            continue
        out.changes.append(TensorChange(name, status, x, y))
    return out


# -- --stats -------------------------------------------------------------------------------------

# a part -> (an open descriptor, where the part's first byte is in it), or None: not at hand
Opened = tuple[int, int, bool]  # descriptor, where the part starts, may it be mapped
Opener = Callable[[TensorPart], "Opened | None"]


def measure(diff: TensorDiff, old_fd: Opener, new_fd: Opener) -> None:
    """Fill in `stats` for the modified float tensors whose bytes both sides can give, one
    tensor after the other: a thread per core was slower on two cores (numpy's many short
    calls on small slices contend for the interpreter; 408 ms on one thread against 520 ms on
    two for the bench's ckpt1 → ckpt2, whole command, best of 5)."""
    import numpy as np

    for change in diff.changes:
        x, y = change.old, change.new
        if change.status != MODIFIED or x is None or y is None or x.dtype not in FLOATS:
            continue
        a = old_fd(x)
        b = new_fd(y) if a is not None else None
        try:
            if a is not None and b is not None:
                change.stats = _stats(np, x, y, a, b)
        finally:
            for opened in (a, b):
                if opened is not None:
                    os.close(opened[0])


def _slices(opened: Opened, start: int, size: int, itemsize: int) -> Iterator[bytes | memoryview]:
    """The tensor's bytes a slice at a time: views of a mapping where the file is the cache's
    (nothing else truncates it; a mapped file cut short under a reader kills it), which spares
    the copy a read makes (a third of the work here), else read."""
    fd, _, mappable = opened
    step = SLICE * itemsize
    done = 0
    if mappable and size and os.fstat(fd).st_size >= start + size:  # (short: read, and fail)
        window = step * max(1, MAPPED_STEP // step)  # mapped at a time: memory stays flat
        for at in range(0, size, window):
            first = start + at - (start + at) % mmap.ALLOCATIONGRANULARITY
            end = start + min(at + window, size)
            view = memoryview(mmap.mmap(fd, end - first, prot=mmap.PROT_READ, offset=first))
            for done in range(start + at - first, end - first, step):
                yield view[done : min(done + step, end - first)]
            del view  # (unmapped once the last slice handed out is let go)
        return
    while done < size:
        chunk = os.pread(fd, min(step, size - done), start + done)
        if not chunk:
            raise OSError("a tensor's bytes ended early")
        done += len(chunk)
        yield chunk


def _stats(
    np: Any,
    x: TensorPart,
    y: TensorPart,
    a: Opened,
    b: Opened,
    wide: bool = False,
) -> dict[str, float | None]:
    """The figures for one tensor. Floats up to 4 bytes are worked in float32: half of
    float64's bytes through each pass, and no conversion at all for F32 and bf16 (the top half
    of a float32). It holds 2-byte floats and their differences exactly, and an F32 difference
    to within half a float32 step (exactly where the two values are within a factor of two of
    each other, as small updates are); each slice's sums are added up in float64. A sum that
    overflows float32 (squares of elements past ~1e19) or underflows it (changes below ~1e-19
    summing to 0) is worked again in float64 (`wide`), before anything is called NaN."""
    dtype = x.dtype or ""
    itemsize, size = ITEMSIZE[dtype], nbytes(x)
    work = np.float64 if wide or itemsize > 4 else np.float32
    # buffers made once and filled slice by slice: a fresh array per slice cost ~5× the
    # arithmetic (each one new pages from the kernel)
    n = min(SLICE, size // itemsize or 1)
    old, new, diff = (np.empty(n, work) for _ in range(3))
    sq_diff = sq_old = 0.0
    max_abs = 0.0
    changed = 0
    start_a, start_b = a[1] + (x.data or 0) - x.offset, b[1] + (y.data or 0) - y.offset
    with np.errstate(all="ignore"):  # NaN and infinities are counted below, not warned of
        for ca, cb in zip(_slices(a, start_a, size, itemsize), _slices(b, start_b, size, itemsize)):
            wa, wb = _floats(np, ca, dtype, old), _floats(np, cb, dtype, new)
            d = diff[: len(wa)]
            np.subtract(wb, wa, out=d)
            sq_diff += float(np.dot(d, d))
            sq_old += float(np.dot(wa, wa))
            if d.size:
                max_abs = max(max_abs, float(np.abs(d, out=d).max()))
            changed += int(np.count_nonzero(ca_ne(np, ca, cb, itemsize)))
    elements = size // itemsize
    # a NaN or infinite element on either side makes a sum NaN or infinite: the two figures
    # then mean nothing (None), and the elements are counted instead
    finite = math.isfinite(sq_diff) and math.isfinite(sq_old)
    if work is not np.float64 and (not finite or (changed and not sq_diff)):
        return _stats(np, x, y, a, b, wide=True)
    return {
        "relative_change": (sq_diff**0.5) / (sq_old**0.5) if sq_old and finite else None,
        "max_abs_change": max_abs if finite else None,
        "fraction_changed": changed / elements if elements else 0.0,
        "non_finite_old": 0 if finite else _non_finite(np, a, start_a, size, dtype, old),
        "non_finite_new": 0 if finite else _non_finite(np, b, start_b, size, dtype, new),
    }


def _non_finite(np: Any, opened: Opened, start: int, size: int, dtype: str, buf: Any) -> int:
    """How many of a tensor's elements are NaN or infinite (read again: only ever asked when
    its sums came out so)."""
    count = 0
    for raw in _slices(opened, start, size, ITEMSIZE[dtype]):
        values = _floats(np, raw, dtype, buf)
        count += len(values) - int(np.count_nonzero(np.isfinite(values)))
    return count


def ca_ne(np: Any, a: bytes | memoryview, b: bytes | memoryview, itemsize: int) -> Any:
    """Which elements differ bit for bit (NaNs and -0.0 included)."""
    kind = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[itemsize]
    return np.frombuffer(a, kind) != np.frombuffer(b, kind)


def _floats(np: Any, raw: bytes | memoryview, dtype: str, out: Any) -> Any:
    """Little-endian floats in the dtype of `out` (float32 or float64), written into its front
    (bf16: shifted into the top half of each 32-bit word, which is that float32)."""
    n = len(raw) // ITEMSIZE[dtype]
    into = out[:n]
    if dtype == "F32" and into.dtype == np.float32:
        return np.frombuffer(raw, "<f4")  # (read only: the bytes themselves, no copy)
    if dtype == "BF16":
        if into.dtype == np.float32:
            bits = into.view(np.uint32)
            bits[...] = np.frombuffer(raw, "<u2")
            bits <<= 16
        else:
            into[...] = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        into[...] = np.frombuffer(raw, {"F64": "<f8", "F32": "<f4", "F16": "<f2"}[dtype])
    return into


def opener(cache: Cache, snap: Snapshot, path: str) -> Opener:
    """Where a snapshot's tensor bytes are: the work tree's file (for the work tree), else
    the part's object in the cache (read for figures only, not verified)."""

    def open_part(p: TensorPart) -> Opened | None:
        try:
            if snap.root is not None:
                return os.open(snap.root / path, os.O_RDONLY), p.offset, False
            return os.open(cache.path(p.oid), os.O_RDONLY), 0, True
        except OSError:
            return None

    return open_part


def add_stats(cache: Cache, old: Snapshot, new: Snapshot, changes: list[Any]) -> None:
    """`measure` every component change that has a tensor diff (ComponentChange of diff.py)."""
    for change in changes:
        if change.tensors is not None:
            path = change.path
            measure(change.tensors, opener(cache, old, path), opener(cache, new, path))
