"""The tracked manifest (`.gitmodel/manifest.toml`).

The manifest lists every artifact (`path → oid, size[, files, executable]`) and every named model
with its components. It is written deterministically (sorted keys, POSIX paths, no timestamps)
so two branches that touch different artifacts merge line by line. A tracked directory's files
are in its listing (listing.py), whose SHA-256 is the directory's oid.

Everything read from here is validated: oids are `Oid`s, paths pass `check_relpath`, sizes are
non-negative integers. A hostile manifest is refused with one line, never half-applied.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ManifestError, UnsafePath
from .hashing import Oid
from .paths import GITMODEL_DIR, check_relpath

FORMAT = 1
MANIFEST_PATH = f"{GITMODEL_DIR}/manifest.toml"
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


# -- sources -------------------------------------------------------------------------------------


def worktree_reader(root: Path) -> Reader:
    def read(path: str) -> bytes | None:
        try:
            return (root / path).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    return read
