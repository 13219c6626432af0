"""The `git-model` merge driver: the manifest and directory listings merge entry by entry.

git runs `git model hook merge-driver %O %A %B %L %P` (set up by `git model init`, selected by
`.gitattributes`) for `.gitmodel/manifest.toml`, `.gitmodel/dirs/**` and `.gitmodel/tensors/**` whenever both sides
changed one of them. Each artifact, each model and each file of a directory listing is merged
on its own: a side that left an entry as the base had it takes the other side's, so two
branches that changed different artifacts (or different files of one tracked directory) merge
cleanly. Model components merge as sets and inline hyperparameters key by key.

A directory changed on both sides gets its merged listing computed here too, so its oid in the
merged manifest is the SHA-256 of exactly the listing the listing driver writes. The three
listings are found in git by their SHA-256 (HEAD, the heads of the operation in progress, then
the history of the listing's path).

Model versions: a model one side left untouched keeps the other side's version (a version
covers components, params and code, so an untouched version means nothing of it changed on
that side). A model both sides changed gets no version rather than a wrong one: the driver
cannot see the merged params (git merges them in memory, the work tree still holds ours), git
writes a merge commit's tree before any hook runs, and readers compute a missing version from
the commit itself; the merge commit's versions note and the next commit's hook fill it in.

A model file's tensor listing changed on both sides cannot be merged into a file: its bytes
come from one side or the other, so the listing is left as ours and the conflict is named; the
manifest's conflict on that file is what the user resolves, and the commit hook then writes the
listing of the bytes the work tree holds.

A real conflict (one entry changed differently on both sides) is named on stderr with both
oids, and the file is left readable: the merged text with git's conflict markers around just
the conflicting entries, and the exit status tells git to mark the path conflicted.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Generic, TypeVar

from ..errors import GitModelError, ManifestError, UsageError
from ..git import Repo, run_git
from ..hashing import Oid
from ..listing import DIRS_PREFIX, Entry, format_listing, listing_oid, listing_path, parse_listing
from ..manifest import (
    KINDS,
    MANIFEST_PATH,
    Artifact,
    Manifest,
    Model,
    format_manifest,
    parse_manifest,
)
from ..tensors import TENSORS_PREFIX
from ..termtext import quote_path, visible
from . import say

V = TypeVar("V")
LOG = ("log", "--all", "--reflog", "--ignore-missing", "--format=", "--raw", "--no-abbrev")
HEADS = ("HEAD", "MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "REBASE_HEAD", "ORIG_HEAD")


@dataclass
class Merged(Generic[V]):
    result: dict[str, V] = field(default_factory=dict)
    conflicts: dict[str, tuple[V | None, V | None, V | None]] = field(default_factory=dict)


def merge3(base: V | None, ours: V | None, theirs: V | None) -> tuple[V | None, bool]:
    """The 3-way merge of one entry (None: absent); False when both sides changed it."""
    if ours == theirs:
        return ours, True
    if ours == base:
        return theirs, True
    if theirs == base:
        return ours, True
    return None, False


def merge_maps(base: dict[str, V], ours: dict[str, V], theirs: dict[str, V]) -> Merged[V]:
    out: Merged[V] = Merged()
    for key in sorted(base.keys() | ours.keys() | theirs.keys()):
        triple = (base.get(key), ours.get(key), theirs.get(key))
        value, ok = merge3(*triple)
        if not ok:
            out.conflicts[key] = triple
        elif value is not None:
            out.result[key] = value
    return out


def merge_sets(base: Iterable[str], ours: Iterable[str], theirs: Iterable[str]) -> list[str]:
    o, a, b = set(base), set(ours), set(theirs)
    return sorted((a & b) | (a - o) | (b - o))


# -- listings -------------------------------------------------------------------------------------


class ListingFinder:
    """Directory listings by their SHA-256, looked up in git."""

    def __init__(self, repo: Repo | None) -> None:
        self.repo = repo

    def entries(self, art: Artifact) -> list[Entry] | None:
        if self.repo is None:
            return None
        path = listing_path(art.path)
        cat = self.repo.cat_file()
        heads = [*HEADS, *(k[len("GITHEAD_") :] for k in os.environ if k.startswith("GITHEAD_"))]
        for rev in heads:
            data = cat.read(f"{rev}:{path}")
            if data is not None and listing_oid(data) == art.oid:
                return parse_listing(data, path)
        log = run_git(
            [*LOG, "--no-renames", *heads, "--", path],
            cwd=self.repo.root,
            check=False,
        )
        blobs = {f for line in log.stdout.decode().splitlines() for f in line.split()[2:4]}
        for blob in sorted(blobs):
            data = cat.read(blob) if blob.strip("0") else None
            if data is not None and listing_oid(data) == art.oid:
                return parse_listing(data, path)
        return None


def merge_directory(
    path: str, arts: tuple[Artifact | None, ...], finder: ListingFinder
) -> tuple[Artifact | None, str]:
    """Merge a directory changed on both sides file by file; (artifact, "") or (None, why)."""
    sides: list[dict[str, Entry]] = []
    for art in arts:
        if art is None:
            sides.append({})
            continue
        found = finder.entries(art)
        if found is None:
            return (
                None,
                f"the listing of {quote_path(path)} with oid {art.oid} is not in this repository",
            )
        sides.append({e.relpath: e for e in found})
    merged = merge_maps(sides[0], sides[1], sides[2])
    if merged.conflicts:
        names = ", ".join(quote_path(f"{path}/{rel}") for rel in list(merged.conflicts)[:3])
        more = f" and {len(merged.conflicts) - 3} more" if len(merged.conflicts) > 3 else ""
        return None, f"{names}{more} changed on both sides (see {quote_path(listing_path(path))})"
    listing = format_listing(merged.result.values())
    size = sum(e.size for e in merged.result.values())
    return Artifact(path, listing_oid(listing), size, len(merged.result)), ""


# -- the manifest ---------------------------------------------------------------------------------


def _definition(model: Model) -> Model:
    return replace(model, version=None)


def merge_model(base: Model | None, ours: Model, theirs: Model) -> tuple[Model | None, str]:
    """Both sides changed one model: components merge as sets, hyperparameters by key."""
    base = base or Model(ours.name)
    merged = Model(ours.name)
    for kind in KINDS:
        setattr(
            merged,
            kind,
            merge_sets(getattr(base, kind), getattr(ours, kind), getattr(theirs, kind)),
        )
    params = merge_maps(base.hyperparameters, ours.hyperparameters, theirs.hyperparameters)
    if params.conflicts:
        return (
            None,
            f"hyperparameter {visible(', '.join(params.conflicts))} set differently on both sides",
        )
    merged.hyperparameters = params.result
    return merged, ""


@dataclass
class ManifestMerge:
    result: Manifest
    sides: tuple[Manifest, Manifest, Manifest] | None  # base/ours/theirs renderings on conflict
    messages: list[str]


def _short(art: Artifact | None) -> str:
    return "deleted" if art is None else f"{art.oid} ({art.size} bytes)"


def merge_manifests(
    base: Manifest, ours: Manifest, theirs: Manifest, finder: ListingFinder
) -> ManifestMerge:
    arts = merge_maps(base.artifacts, ours.artifacts, theirs.artifacts)
    messages = []
    for path, triple in list(arts.conflicts.items()):
        o, a, b = triple
        if a is not None and b is not None and a.is_dir and b.is_dir and (o is None or o.is_dir):
            merged, why = merge_directory(path, triple, finder)
            if merged is not None:
                arts.result[path] = merged
                del arts.conflicts[path]
                continue
            messages.append(f"conflict: directory {quote_path(path)}: {why}")
        else:
            messages.append(
                f"conflict: artifact {quote_path(path)} changed on both sides: ours {_short(a)}, theirs {_short(b)}"
            )
    defs = [{n: _definition(m) for n, m in side.models.items()} for side in (base, ours, theirs)]
    models = merge_maps(*defs)
    for name, (om, am, bm) in list(models.conflicts.items()):
        if am is not None and bm is not None:
            merged_model, why = merge_model(om, am, bm)
            if merged_model is not None:
                models.result[name] = merged_model
                del models.conflicts[name]
                continue
        else:
            why = "deleted on one side and changed on the other"
        messages.append(f"conflict: model {visible(name)}: {why}")
    for name, model in models.result.items():
        model.version = _merged_version(name, base, ours, theirs, defs)
    result = Manifest(arts.result, models.result)
    if not messages:
        return ManifestMerge(result, None, [])
    sides = []
    for i in range(3):
        side = Manifest(dict(arts.result), dict(models.result))
        for path, triple in arts.conflicts.items():
            if triple[i] is not None:
                side.artifacts[path] = triple[i]  # type: ignore[assignment]
        for name, mtriple in models.conflicts.items():
            if mtriple[i] is not None:
                side.models[name] = mtriple[i]  # type: ignore[assignment]
        sides.append(side)
    return ManifestMerge(result, (sides[0], sides[1], sides[2]), messages)


def _merged_version(
    name: str,
    base: Manifest,
    ours: Manifest,
    theirs: Manifest,
    defs: list[dict[str, Model]],
) -> Oid | None:
    """A side that left a model as it was (same definition, same version: its components,
    params and code all go into the version) leaves the other side's version; when both
    changed it, the merged version is unknown until it is computed again."""
    sides = [
        (d.get(name), m.models[name].version if name in m.models else None)
        for d, m in zip(defs, (base, ours, theirs))
    ]
    if sides[1] == sides[0]:
        return sides[2][1]
    if sides[2] == sides[0] or sides[2] == sides[1]:
        return sides[1][1]
    return None


def _parse(data: bytes, what: str) -> Manifest:
    return Manifest() if not data.strip() else parse_manifest(data, what)


def merge_manifest_files(
    base: bytes, ours: bytes, theirs: bytes, marker: int, repo: Repo | None
) -> tuple[bytes, list[str]]:
    parsed = [
        _parse(d, f"{MANIFEST_PATH} ({s})")
        for d, s in zip((base, ours, theirs), ("base", "ours", "theirs"))
    ]
    merge = merge_manifests(parsed[0], parsed[1], parsed[2], ListingFinder(repo))
    if merge.sides is None:
        return format_manifest(merge.result), []
    texts = []
    for side in merge.sides:
        for model in side.models.values():
            model.version = None  # recomputed when the resolution is committed
        texts.append(format_manifest(side))
    return conflict_text(texts[0], texts[1], texts[2], marker), merge.messages


def merge_listing_files(
    base: bytes, ours: bytes, theirs: bytes, marker: int, path: str
) -> tuple[bytes, list[str]]:
    sides = [{e.relpath: e for e in parse_listing(d, path)} for d in (base, ours, theirs)]
    merged = merge_maps(sides[0], sides[1], sides[2])
    if not merged.conflicts:
        return format_listing(merged.result.values()), []
    texts = []
    for i in range(3):
        entries = dict(merged.result)
        for rel, triple in merged.conflicts.items():
            if triple[i] is not None:
                entries[rel] = triple[i]  # type: ignore[assignment]
        texts.append(format_listing(entries.values()))
    directory = path[len(DIRS_PREFIX) : -len(".tsv")]
    messages = [
        f"conflict: {directory}/{rel} changed on both sides: ours "
        f"{t[1].oid if t[1] else 'deleted'}, theirs {t[2].oid if t[2] else 'deleted'}"
        for rel, t in merged.conflicts.items()
    ]
    return conflict_text(texts[0], texts[1], texts[2], marker), messages


def conflict_text(base: bytes, ours: bytes, theirs: bytes, marker: int) -> bytes:
    """The merged text with git's conflict markers around the entries that conflict."""
    with tempfile.TemporaryDirectory(prefix="git-model-merge-") as tmp:
        names = []
        for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            (Path(tmp) / name).write_bytes(data)
            names.append(str(Path(tmp) / name))
        proc = _merge_file("-p", f"--marker-size={marker}", *names)
    return proc.stdout


def line_merge(base: str, ours: str, theirs: str, marker: int) -> int:
    return 0 if _merge_file(f"--marker-size={marker}", ours, base, theirs).returncode == 0 else 1


def _merge_file(*args: str) -> subprocess.CompletedProcess[bytes]:
    """`git merge-file` with the labels git's own conflict markers use."""
    return run_git(["merge-file", "-L", "ours", "-L", "base", "-L", "theirs", *args], check=False)


def merge_driver(args: list[str]) -> int:
    if len(args) < 5:
        raise UsageError(
            "usage: git model hook merge-driver BASE OURS THEIRS MARKER_SIZE PATH "
            "(git runs it for .gitmodel/ files once 'git model init' has set it up)"
        )
    base, ours, theirs, marker_text, path = args[:5]
    marker = int(marker_text) if marker_text.isdigit() else 7
    o, a, b = (Path(p).read_bytes() for p in (base, ours, theirs))
    repo: Repo | None = None
    try:
        if path == MANIFEST_PATH:
            try:
                repo = Repo.discover()
            except GitModelError:
                repo = None  # a merge outside a work tree: no listings, no work-tree versions
            merged, messages = merge_manifest_files(o, a, b, marker, repo)
        elif path.startswith(DIRS_PREFIX) and path.endswith(".tsv"):
            merged, messages = merge_listing_files(o, a, b, marker, path)
        elif path.startswith(TENSORS_PREFIX) and path.endswith(".tsv"):
            name = path[len(TENSORS_PREFIX) : -len(".tsv")]
            conflict = f"conflict: {name} changed on both sides (its tensor listing)"
            merged, messages = a, [] if a == b else [conflict]
        else:
            return line_merge(base, ours, theirs, marker)
    except ManifestError as e:
        say(f"{quote_path(path)} cannot be merged entry by entry ({e}); merging it line by line")
        return line_merge(base, ours, theirs, marker)
    finally:
        if repo is not None:
            repo.close()
    Path(ours).write_bytes(merged)
    for message in messages:
        say(message)
    if messages:
        say(
            f"resolve {quote_path(path)}: keep one side of each conflict, then 'git add .gitmodel' and "
            "commit; the commit hook puts the chosen bytes in the work tree"
        )
    return 1 if messages else 0
