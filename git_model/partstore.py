"""Model files stored by parts: stored in one pass, rebuilt byte for byte, verified.

`store_parts` reads a recognised file once. The kernel copies each chunk of a part into a temp
file of the cache (`copy_file_range`: steadier and cheaper than a write from Python's buffers),
and what is hashed is that copy, mapped, so an object's bytes are the ones its oid was taken
from. Each chunk goes to two helper threads, one hashing the whole file (its oid: what the
manifest, versions and notes use), one each part (its digest taken at the part's end), while
this thread copies the next; on two cores the cost is about one hash of the file, not two. A
part the previous version of the file had at the same place and the cache already holds is
only hashed, not written (a fine-tune that changed 10% of its tensors writes 10% of its
bytes); if its bytes turned out to differ, that one part is copied after all. Each chunk written is started for the disk at once
(`sync_file_range`), so the one `syncfs` that flushes every new part before it is named by its
oid has little left to wait for.

`rebuild` writes the file from its parts into a new file beside its destination: the kernel
copies each part to its offset while this thread hashes the parts in order, so the cost is
about max(copy, hash). The result must hash to the file's oid before it gets its name (the
same unnamed-file and rename guarantees as any checkout: see newfiles.py); if it does not, each
part is checked and the corrupt ones are quarantined. Nothing unverified reaches the work tree.

The cache also keeps, for each file it can rebuild, its tensor listing under `recipes/` (named
by the file's oid): "do you hold these bytes?" then has an answer without git at hand (a
checkout keeping a work-tree file aside, `git model cat`).
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .cache import Cache
from .copying import SMALL_FILE, copy_some, fsync_path
from .errors import CorruptObject, GitModelError, ManifestError, MissingObject, disk_error
from .formats import Layout
from .hashing import HashThread, Oid, hash_file, update_mapped
from .linuxcalls import syncfs, write_back_starter
from .newfiles import new_file_beside, settle_new_file
from .tensors import TensorListing, format_tensors, parse_tensors, with_oids

STEP = 4 << 20  # bytes read at a time: a hand-over to the hashing thread per 4 MiB
AHEAD = 4  # chunks read ahead of the whole-file hash at most (memory: AHEAD * STEP)
Hints = dict[tuple[int, int], Oid]  # (offset, length) -> the oid that range had before


def store_parts(
    cache: Cache, path: Path, layout: Layout, hints: Hints | None = None
) -> tuple[TensorListing, Oid]:
    """Store each part of the file at `path` (of `layout`); its tensor listing and the whole
    file's oid. A file that changes meanwhile is refused (rerun)."""
    hints = hints or {}
    made: list[tuple[str, Oid]] = []  # temp files hashed, named once all are durable
    written: list[str | None] = []  # each part's temp file (None: only hashed, already held)
    whole = HashThread(AHEAD)
    each = HashThread(AHEAD)  # each part's oid (cut at its end), while this thread copies
    try:
        with open(path, "rb", buffering=0) as f:
            src = f.fileno()
            before = os.fstat(src)
            if before.st_size != layout.size:
                raise GitModelError(f"{path} changed while it was being stored; rerun")
            hinted = []
            for p in layout.parts:
                hint = hints.get((p.offset, p.length))
                if hint is not None and not cache.has(hint):
                    hint = None
                hinted.append(hint)
                written.append(
                    _feed_part(cache, src, p.offset, p.length, whole, each, hint is None)
                )
            each.close()
            oids = each.digests
            if len(oids) != len(layout.parts):
                raise GitModelError(f"{path}: its parts could not all be hashed; rerun")
            for i, (p, hint) in enumerate(zip(layout.parts, hinted, strict=True)):
                tmp, written[i] = written[i], None
                if tmp is not None:
                    made.append((tmp, oids[i]))
                elif (  # the same place, other bytes: store them after all
                    hint is not None
                    and oids[i] != hint
                    and _store_part(cache, src, p.offset, p.length, made) != oids[i]
                ):
                    raise GitModelError(f"{path} changed while it was being stored; rerun")
            oid = Oid(whole.hexdigest())
            after = os.stat(path)
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                raise GitModelError(f"{path} changed while it was being stored; rerun")
        if made and not syncfs(cache.tmp):
            for tmp, _ in made:
                fsync_path(tmp)
        while made:
            tmp, part = made.pop()
            if cache.place(tmp, part) and os.stat(cache.path(part)).st_size > SMALL_FILE:
                cache.verified.add(part)
    except OSError as e:
        raise disk_error(e, f"storing {path} in the cache") from e
    finally:
        whole.close()  # (stopped by an error: the threads drain and end)
        each.close()
        for left in [tmp for tmp, _ in made] + [tmp for tmp in written if tmp is not None]:
            with contextlib.suppress(OSError):
                os.unlink(left)
    listing = with_oids(layout, oids)
    write_recipe(cache, oid, listing)
    return listing, oid


def _feed_part(
    cache: Cache, src: int, offset: int, length: int, whole: HashThread, each: HashThread, new: bool
) -> str | None:
    """Hand the part [offset, offset+length) of `src` to both hashing threads (`each` cut at
    its end); when `new`, copy it into a temp file of the cache first (read-only, not yet
    synced), whose path is returned."""
    fd, tmp = cache.new_object() if new else (-1, "")
    try:
        for chunk in _chunks(src, offset, length, fd):
            whole.update(chunk)
            each.update(chunk)
        each.cut()
    except BaseException:
        if fd >= 0:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    if fd < 0:
        return None
    os.close(fd)
    return tmp


def _store_part(
    cache: Cache, src: int, offset: int, length: int, made: list[tuple[str, Oid]]
) -> Oid:
    """Copy the part [offset, offset+length) of `src` into a temp file of the cache and hash
    it, on this thread; the temp file goes to `made` (read-only, not yet synced)."""
    digest = hashlib.sha256()
    fd, tmp = cache.new_object()
    try:
        for chunk in _chunks(src, offset, length, fd):
            digest.update(chunk)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    oid = Oid(digest.hexdigest())
    made.append((tmp, oid))
    return oid


def _chunks(src: int, offset: int, length: int, fd: int) -> Iterator[bytes | memoryview]:
    """The part [offset, offset+length) of `src`, a chunk at a time; with a temp file `fd`
    (else -1), the kernel copies each chunk there first, its writeback started at once, and
    the chunk is the copy, mapped: what is hashed is what is stored, with no copy into
    Python's memory (see hashing.update_mapped; only the cache's own files are mapped)."""
    kick = write_back_starter() if fd >= 0 else None
    done = 0
    while done < length:
        step = min(STEP, length - done)
        chunk: bytes | memoryview
        if fd >= 0:
            n = copy_some(src, fd, step, offset + done, done)
            chunk = memoryview(mmap.mmap(fd, n, prot=mmap.PROT_READ, offset=done)) if n else b""
            if kick:
                kick(fd, done, n)
        else:
            chunk = os.pread(src, step, offset + done)
        if not chunk:
            raise GitModelError("the file became shorter while it was being stored; rerun")
        yield chunk
        done += len(chunk)


def listing_of_file(path: Path) -> TensorListing | None:
    """The tensor listing a file would get, its parts hashed but not stored (None: not a
    format git-model splits). For a work-tree file that differs from what is recorded."""
    from .formats import FormatError, recognise

    try:
        with open(path, "rb", buffering=0) as f:
            layout = recognise(f, os.fstat(f.fileno()).st_size)
            oids = []
            for p in layout.parts:
                digest = hashlib.sha256()
                done = 0
                while done < p.length:
                    chunk = os.pread(f.fileno(), min(STEP, p.length - done), p.offset + done)
                    if not chunk:
                        return None
                    digest.update(chunk)
                    done += len(chunk)
                oids.append(Oid(digest.hexdigest()))
    except (FormatError, OSError):
        return None
    return with_oids(layout, oids)


# -- rebuilding ----------------------------------------------------------------------------------


def missing_parts(cache: Cache, listing: TensorListing) -> list[Oid]:
    return [p.oid for p in listing.parts if not cache.has(p.oid)]


def rebuild(cache: Cache, listing: TensorListing, oid: Oid, dest: str, executable: bool) -> None:
    """Write the file `oid` at `dest` from its parts, verified before it gets its name.
    MissingObject if a part is not in the cache; CorruptObject (the bad parts quarantined) if
    the result is not the file."""
    name = os.path.basename(dest)
    _check_present(cache, listing, name)
    fd, tmp = new_file_beside(dest, 0o777 if executable else 0o666)
    try:
        assemble(cache, listing, oid, fd, name)
    except BaseException:
        os.close(fd)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    settle_new_file(fd, tmp, dest, large=listing.size > SMALL_FILE)


def open_rebuilt(cache: Cache, listing: TensorListing, oid: Oid, name: str) -> BinaryIO:
    """The file `oid` rebuilt from its parts into an unnamed temp file of the cache, verified,
    open for reading from its start (for readers that want the bytes, not a work-tree file)."""
    import tempfile

    _check_present(cache, listing, name)
    cache.ensure()
    f = tempfile.TemporaryFile(dir=cache.tmp)  # noqa: SIM115 (handed to the caller)
    try:
        assemble(cache, listing, oid, f.fileno(), name)
    except BaseException:
        f.close()
        raise
    f.seek(0)
    return f


def _check_present(cache: Cache, listing: TensorListing, name: str) -> None:
    missing = missing_parts(cache, listing)
    if missing:
        raise MissingObject(
            f"{len(missing)} part(s) of {name} are not in the cache "
            f"(first {missing[0].short}); run 'git model fetch' to get them"
        )


def assemble(cache: Cache, listing: TensorListing, oid: Oid, fd: int, name: str) -> None:
    """Write the parts into the empty file `fd`, each at its offset; it must then hash to
    `oid` (else CorruptObject, the bad parts quarantined, or ManifestError: the listing is
    not this file's). The cache remembers the recipe of a file it rebuilt."""
    try:
        got = _copy_parts(cache, listing, fd)
    except FileNotFoundError:
        raise MissingObject(
            f"a part of {name} left the cache meanwhile; run 'git model fetch' to get it"
        ) from None
    if got != oid:
        raise _corrupt(cache, listing, oid, name)
    write_recipe(cache, oid, listing)


def _copy_parts(cache: Cache, listing: TensorListing, fd: int) -> Oid:
    """Copy every part to its offset in `fd` (kernel copies, on a thread) while hashing them
    in order here; the SHA-256 of what the parts hold, mapped from the same page cache."""
    error: list[BaseException] = []

    def copy() -> None:
        try:
            for p in listing.parts:
                with open(cache.path(p.oid), "rb", buffering=0) as obj:
                    _copy_into(obj.fileno(), fd, p.length, p.offset)
        except BaseException as e:  # re-raised below
            error.append(e)

    worker = threading.Thread(target=copy)
    worker.start()
    digest = hashlib.sha256()
    try:
        for p in listing.parts:
            with open(cache.path(p.oid), "rb", buffering=0) as obj:
                update_mapped(digest, obj.fileno(), p.length)  # (the cache's own: mapped)
    finally:
        worker.join()
    if error:
        raise error[0]
    return Oid(digest.hexdigest())


def _copy_into(src: int, dst: int, length: int, at: int) -> None:
    """Copy `length` bytes from the start of `src` to offset `at` of `dst`."""
    if copy_some(src, dst, length, 0, at) < length:
        raise CorruptObject("a part is shorter than its listing says")


def _corrupt(cache: Cache, listing: TensorListing, oid: Oid, name: str) -> GitModelError:
    """Why the parts did not make the file: corrupt parts (quarantined), or a listing that is
    not this file's."""
    bad = [p.oid for p in listing.parts if hash_file(cache.path(p.oid), ours=True)[0] != p.oid]
    for part in bad:
        cache.quarantine(part)
    if bad:
        return CorruptObject(
            f"{len(bad)} part(s) of {name} in the cache are corrupt (first {bad[0].short}) and "
            "were quarantined; run 'git model fetch' to get good copies"
        )
    drop_recipe(cache, oid)
    return ManifestError(
        f"the tensor listing of {name} does not rebuild its bytes (sha256 {oid.short}); "
        "restore .gitmodel with 'git checkout -- .gitmodel' and retry"
    )


# -- recipes ---------------------------------------------------------------------------------------


def recipe_path(cache: Cache, oid: Oid) -> Path:
    return cache.model_dir / "recipes" / oid[:2] / oid[2:]


def write_recipe(cache: Cache, oid: Oid, listing: TensorListing) -> None:
    """Remember that the file `oid` is made of these parts (atomically; once)."""
    path = recipe_path(cache, oid)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{oid[2:]}.{os.getpid()}.tmp"
    tmp.write_bytes(format_tensors(listing))
    os.replace(tmp, path)


def drop_recipe(cache: Cache, oid: Oid) -> None:
    with contextlib.suppress(OSError):
        os.unlink(recipe_path(cache, oid))


def recipe(cache: Cache, oid: Oid) -> TensorListing | None:
    """The parts the cache knows the file `oid` is made of (None: it knows of none, or the
    record is damaged). Only a hint: a rebuild still verifies the result."""
    try:
        data = recipe_path(cache, oid).read_bytes()
        return parse_tensors(data, f"recipe {oid.short}")
    except (OSError, GitModelError):
        return None


def holds(cache: Cache, oid: Oid) -> bool:
    """Does the cache hold the file `oid`: as one object, or as all the parts of a recipe?"""
    if cache.has(oid):
        return True
    listing = recipe(cache, oid)
    return listing is not None and not missing_parts(cache, listing)


def iter_recipes(cache: Cache) -> Iterator[Oid]:
    top = cache.model_dir / "recipes"
    if not top.is_dir():
        return
    for sub in sorted(top.iterdir()):
        for item in sorted(sub.iterdir()) if sub.is_dir() else ():
            with contextlib.suppress(ValueError):
                yield Oid(sub.name + item.name)
