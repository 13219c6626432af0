"""The tracked manifest (`.gitmodel/manifest.toml`) and directory listings (`.gitmodel/dirs/`).

The manifest lists every artifact (`path → oid, size[, files, executable]`) and every named model
with its components. It is written deterministically (sorted keys, POSIX paths, no timestamps)
so two branches that touch different artifacts merge line by line. Each tracked directory has a
listing, `oid<TAB>size<TAB>mode<TAB>relpath` per file sorted by path, whose SHA-256 is the
directory's oid: `git diff` shows per-file changes with no cache at hand.

Everything read from here is validated: oids are `Oid`s, paths pass `check_relpath`, sizes are
non-negative integers. A hostile manifest is refused with one line, never half-applied.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ManifestError, UnsafePath
from .hashing import Oid, hash_bytes
from .paths import GITMODEL_DIR, check_relpath

FORMAT = 1
MANIFEST_PATH = f"{GITMODEL_DIR}/manifest.toml"
DIRS_PREFIX = f"{GITMODEL_DIR}/dirs/"
KINDS = ("weights", "data", "params", "code")
ARTIFACT_KINDS = ("weights", "data")
HEADER = (
    "# git-model manifest: written by `git model add` and the commit hook.\n"
    "# Merge conflicts are resolved by the git-model merge driver; see `git model --help`.\n"
)

Reader = Callable[[str], "bytes | None"]  # repo-relative path -> bytes, or None if absent


@dataclass(frozen=True)
class Artifact:
    path: str
    oid: Oid
    size: int
    files: int | None = None  # set for directories
    executable: bool = False
    layout: str | None = None  # a file stored by parts: its format (see tensors.py)
    parts: Oid | None = None  # ... and the SHA-256 of its tensor listing

    @property
    def is_dir(self) -> bool:
        return self.files is not None


@dataclass
class Model:
    name: str
    weights: list[str] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    version: Oid | None = None

    def components(self) -> Iterable[tuple[str, str]]:
        for kind in KINDS:
            for path in getattr(self, kind):
                yield kind, path


@dataclass
class Manifest:
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)

    def artifact_for(self, path: str) -> Artifact | None:
        """The artifact that is `path` or contains it."""
        for art in self.artifacts.values():
            if path == art.path or (art.is_dir and path.startswith(art.path + "/")):
                return art
        return None

    def copy(self) -> Manifest:
        return Manifest(
            dict(self.artifacts),
            {
                k: replace(
                    m,
                    weights=list(m.weights),
                    data=list(m.data),
                    params=list(m.params),
                    code=list(m.code),
                    hyperparameters=dict(m.hyperparameters),
                )
                for k, m in self.models.items()
            },
        )


# -- reading -------------------------------------------------------------------------------------


def _fail(what: str, detail: str) -> ManifestError:
    return ManifestError(
        f"{what}: {detail}; restore it with 'git checkout -- {MANIFEST_PATH}' or fix it by hand"
    )


def parse_manifest(data: bytes, what: str = MANIFEST_PATH) -> Manifest:
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise _fail(what, f"not valid TOML ({e})") from None
    fmt = doc.get("format")
    if fmt != FORMAT:
        if isinstance(fmt, int) and fmt > FORMAT:
            raise ManifestError(
                f"{what} has format {fmt}, newer than this git-model understands; "
                "upgrade git-model (pipx upgrade git-model, or pip install -U from its clone)"
            )
        raise _fail(what, f"unknown format {fmt!r}")
    manifest = Manifest()
    arts = doc.get("artifacts", {})
    if not isinstance(arts, dict):
        raise _fail(what, "[artifacts] is not a table")
    for path, entry in arts.items():
        manifest.artifacts[path] = _parse_artifact(what, path, entry)
    models = doc.get("models", {})
    if not isinstance(models, dict):
        raise _fail(what, "[models] is not a table")
    for name, entry in models.items():
        manifest.models[name] = _parse_model(what, name, entry)
    return manifest


def _parse_artifact(what: str, path: str, entry: Any) -> Artifact:
    try:
        check_relpath(path, what="artifact path")
    except UnsafePath as e:
        raise ManifestError(f"{what}: {e}") from None
    if not isinstance(entry, dict):
        raise _fail(what, f"artifact {path!r} is not a table")
    try:
        oid = Oid(str(entry.get("oid")))
    except ValueError:
        raise _fail(what, f"artifact {path!r} has a bad oid {entry.get('oid')!r}") from None
    size, files, exe = entry.get("size"), entry.get("files"), entry.get("executable", False)
    if type(size) is not int or size < 0:
        raise _fail(what, f"artifact {path!r} has a bad size {size!r}")
    if files is not None and (type(files) is not int or files < 0):
        raise _fail(what, f"artifact {path!r} has a bad file count {files!r}")
    if type(exe) is not bool:
        raise _fail(what, f"artifact {path!r} has a bad executable flag {exe!r}")
    layout, parts = entry.get("layout"), entry.get("parts")
    if (layout is None) != (parts is None) or (layout is not None and files is not None):
        raise _fail(what, f"artifact {path!r} needs both layout and parts, on a file")
    if layout is not None:
        if not isinstance(layout, str) or not layout.isascii() or not layout.isalnum():
            raise _fail(what, f"artifact {path!r} has a bad layout {layout!r}")
        try:
            parts = Oid(str(parts))
        except ValueError:
            raise _fail(what, f"artifact {path!r} has a bad parts oid {parts!r}") from None
    return Artifact(path, oid, size, files, exe, layout, parts)


def _parse_model(what: str, name: str, entry: Any) -> Model:
    if not isinstance(entry, dict) or not name or "\n" in name:
        raise _fail(what, f"model {name!r} is not a table")
    model = Model(name)
    for kind in KINDS:
        paths = entry.get(kind, [])
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise _fail(what, f"model {name!r}: {kind} is not a list of paths")
        for p in paths:
            try:
                check_relpath(p, what=f"model {name!r} {kind} path")
            except UnsafePath as e:
                raise ManifestError(f"{what}: {e}") from None
        setattr(model, kind, sorted(set(paths)))
    hp = entry.get("hyperparameters", {})
    if not isinstance(hp, dict):
        raise _fail(what, f"model {name!r}: hyperparameters is not a table")
    model.hyperparameters = hp
    if "version" in entry:
        try:
            model.version = Oid(entry["version"])
        except ValueError:
            raise _fail(what, f"model {name!r} has a bad version {entry['version']!r}") from None
    return model


def read_manifest(read: Reader, what: str = MANIFEST_PATH) -> Manifest:
    """Read the manifest through `read`; an absent manifest is an empty one."""
    data = read(MANIFEST_PATH)
    return Manifest() if data is None else parse_manifest(data, what)


# -- writing -------------------------------------------------------------------------------------


def format_manifest(manifest: Manifest) -> bytes:
    import tomli_w  # imported here: only writers pay for it

    arts: dict[str, Any] = {}
    for path in sorted(manifest.artifacts):
        a = manifest.artifacts[path]
        entry: dict[str, Any] = {"oid": str(a.oid), "size": a.size}
        if a.files is not None:
            entry["files"] = a.files
        if a.executable:
            entry["executable"] = True
        if a.layout is not None and a.parts is not None:
            entry["layout"] = a.layout
            entry["parts"] = str(a.parts)
        arts[path] = entry
    models: dict[str, Any] = {}
    for name in sorted(manifest.models):
        m = manifest.models[name]
        entry = {kind: sorted(set(getattr(m, kind))) for kind in KINDS if getattr(m, kind)}
        if m.version is not None:
            entry["version"] = str(m.version)
        if m.hyperparameters:
            entry["hyperparameters"] = dict(sorted(m.hyperparameters.items()))
        models[name] = entry
    doc: dict[str, Any] = {"format": FORMAT}
    if arts:
        doc["artifacts"] = arts
    if models:
        doc["models"] = models
    return (HEADER + "\n" + tomli_w.dumps(doc, multiline_strings=False)).encode("utf-8")


# -- directory listings --------------------------------------------------------------------------


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
    data = read(path)
    if isinstance(read, FallbackReader) and (data is None or listing_oid(data) != art.oid):
        data = read.listing(path, art.oid) or data
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
    """Reads from `primary`; a directory listing that does not hash to the oid its manifest
    gives is also looked for in `fallbacks()` (for the work tree: the index, then HEAD).

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


def worktree_reader(root: Path) -> Reader:
    def read(path: str) -> bytes | None:
        try:
            return (root / path).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    return read
