"""Directory listings (`.gitmodel/dirs/<path>.tsv`): a tracked directory, one line per file.

Each line is `oid<TAB>size<TAB>mode<TAB>relpath` (mode `644` or `755`, the path relative to the
directory), sorted by path, each ending in a newline. The listing's SHA-256 is the directory's
oid in the manifest (a Merkle root), so `git diff` shows per-file changes with no cache at hand.

A listing is a tracked text file anyone can edit, merge or forge, and its paths are written to
on checkout, so it is checked before use: its bytes must hash to the manifest's oid and count
the manifest's files, and every line must have a valid oid, size and mode and a safe path
(`check_relpath`), in strictly increasing path order. A bad listing is refused with one line
that names it, never half-applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from .errors import ManifestError, UnsafePath
from .hashing import Oid, hash_bytes
from .manifest import Artifact, Reader
from .paths import GITMODEL_DIR, check_relpath

DIRS_PREFIX = f"{GITMODEL_DIR}/dirs/"


def _fail(what: str, detail: str) -> ManifestError:
    """A bad listing, named, with the way back to the recorded one (the manifest's own
    errors point at the manifest; a listing's at the listing)."""
    return ManifestError(f"{what}: {detail}; restore it with 'git checkout -- {what}'")


class Entry(NamedTuple):
    """One file of a tracked directory (a tuple: a listing of 100,000 files is parsed in full
    where a caller needs it whole, and a checkout parses one three times)."""

    relpath: str  # relative to the directory
    oid: Oid
    size: int
    executable: bool = False


def listing_path(artifact_path: str) -> str:
    return f"{DIRS_PREFIX}{artifact_path}.tsv"


def listing_line(relpath: str, oid: str, size: int, executable: bool) -> str:
    """One line of a listing (callers give lines in path order)."""
    return f"{oid}\t{size}\t{'755' if executable else '644'}\t{relpath}\n"


def format_listing(entries: Iterable[Entry]) -> bytes:
    lines = [
        listing_line(e.relpath, e.oid, e.size, e.executable)
        for e in sorted(entries, key=lambda e: e.relpath)
    ]
    return "".join(lines).encode("utf-8")


def listing_oid(data: bytes) -> Oid:
    return hash_bytes(data)


def iter_listing(data: bytes, what: str, *, checked: bool = False) -> Iterator[Entry]:
    """The entries of a listing one at a time, validated as they come (an error names the line).

    `checked`: these very bytes were iterated to their end before without an error, so the
    validation is skipped. Streaming: the bytes are decoded ~1 MiB of lines at a time, so only
    the listing's bytes are held, never its whole text nor its entries (at a million files the
    text alone would be another ~95 MiB).
    """
    if data and not data.endswith(b"\n"):
        raise _fail(what, "does not end with a newline")
    if checked:
        yield from _iter_checked(data)
        return
    check = LineCheck(what)
    for block in _blocks(data):
        yield from check.lines(block)


class LineCheck:
    """`iter_listing`'s checks, block after block (whole lines, without the last newline):
    line numbers and path order carry on across blocks (listingstream.py streams with it)."""

    def __init__(self, what: str) -> None:
        self.what, self.n, self.previous = what, 0, ""

    def lines(self, block: bytes) -> Iterator[Entry]:
        what, n, previous = self.what, self.n, self.previous
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(what, "not UTF-8") from None
        for line in text.split("\n"):
            n += 1
            fields = line.split("\t", 3)
            if len(fields) != 4:
                raise _fail(what, f"line {n} does not have 4 tab-separated fields")
            oid_text, size_text, mode, relpath = fields
            try:
                oid = Oid(oid_text)
            except ValueError:
                raise _fail(what, f"line {n} has a bad oid") from None
            if not (size_text.isascii() and size_text.isdigit()) or mode not in ("644", "755"):
                raise _fail(what, f"line {n} has a bad size or mode")
            try:
                check_relpath(relpath, what=f"{what} line {n}")
            except UnsafePath as e:
                raise ManifestError(str(e)) from None
            if n > 1 and relpath <= previous:
                raise _fail(what, f"line {n} is out of order or repeated")
            previous = relpath
            yield Entry(relpath, oid, int(size_text), mode == "755")
        self.n, self.previous = n, previous


def _blocks(data: bytes, block: int = 1 << 20) -> Iterator[bytes]:
    """`data` (whole lines, each ending in a newline) ~`block` bytes of lines at a time, each
    without its last newline. A line is never split, so a multi-byte character never is."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start + block)
        end = len(data) if end < 0 else end + 1
        yield data[start : end - 1]
        start = end


def _iter_checked(data: bytes) -> Iterator[Entry]:
    """`iter_listing` of bytes already validated: the oids taken as they are (no second
    regex match)."""
    make_oid, make_entry = str.__new__, tuple.__new__  # (C calls, not Python ones)
    for block in _blocks(data):
        for line in block.decode("utf-8").split("\n"):
            oid_text, size_text, mode, relpath = line.split("\t", 3)
            oid = make_oid(Oid, oid_text)
            yield make_entry(Entry, (relpath, oid, int(size_text), mode == "755"))


def parse_listing(data: bytes, what: str) -> list[Entry]:
    return list(iter_listing(data, what))


def verified_listing(read: Reader, art: Artifact) -> bytes:
    """A directory's listing bytes: they must hash to the directory's oid and have one line per
    file the manifest counts. The lines themselves are checked by `iter_listing`."""
    path = listing_path(art.path)
    data = read_recorded(read, path, art.oid)
    if data is None:
        raise ManifestError(
            f"{path} is missing for tracked directory {art.path}; "
            f"restore it with 'git checkout -- {path}'"
        )
    if listing_oid(data) != art.oid:
        raise ManifestError(
            f"{path} does not match the oid the manifest gives {art.path}; "
            f"restore both with 'git checkout -- {GITMODEL_DIR}'"
        )
    lines = data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
    if lines != art.files:
        for _ in iter_listing(data, path):  # a malformed listing: its own error first
            pass
        raise ManifestError(f"{path} lists {lines} files but the manifest says {art.files}")
    return data


def read_listing(read: Reader, art: Artifact) -> list[Entry]:
    """Read and verify a directory's listing: its hash must be the directory's oid."""
    return parse_listing(verified_listing(read, art), listing_path(art.path))


# -- sources -------------------------------------------------------------------------------------


class FallbackReader:
    """Reads from `primary`; a listing (a directory's, or a model file's tensor listing) that
    does not hash to the oid its manifest gives is also looked for in `fallbacks()` (for the
    work tree: the index, then HEAD).

    The work tree's manifest and a listing are two files, written listing first: a writer
    stopped between the two (kill -9, a full disk), or a reader that looks in between, finds
    the new listing beside the old manifest. The old manifest's listing is still in the index
    or in HEAD, and bytes that hash to the manifest's oid are that listing, wherever they are.
    """

    def __init__(self, primary: Reader, fallbacks: Callable[[], Iterable[Reader]]) -> None:
        self.primary = primary
        self.fallbacks = fallbacks

    def __call__(self, path: str) -> bytes | None:
        return self.primary(path)

    def listing(self, path: str, oid: Oid) -> bytes | None:
        """The listing at `path` that hashes to `oid`, from whichever source has it."""
        for read in self.fallbacks():
            data = read(path)
            if data is not None and listing_oid(data) == oid:
                return data
        return None


def read_recorded(read: Reader, path: str, oid: Oid) -> bytes | None:
    """The file at `path` as `read` has it; where that is not the one that hashes to `oid` and
    `read` is a FallbackReader, the one its fallbacks have (a directory's listing, a model
    file's tensor listing: each is named in the manifest by the SHA-256 of its bytes)."""
    data = read(path)
    if isinstance(read, FallbackReader) and (data is None or listing_oid(data) != oid):
        data = read.listing(path, oid) or data
    return data
