"""One state of the repository seen model by model: a commit, or the work tree as it is now.

`diff`, `show` and the Python API ask the same questions of a state: which models are there,
at which version, which bytes each component holds, which files a tracked directory lists, which
hyperparameters apply. For a commit the answers come from git alone (one long-lived `cat-file
--batch`, so no cache and no remote are needed); for the work tree they come from the files,
through the stat cache so that unchanged artifacts are never re-read.

The manifest is the source of truth for a commit's versions. Two cross-checks turn silent
disagreement into a warning: the version recorded in the manifest against the one its
components hash to, and the version a note claims against the manifest's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import notes
from ..errors import GitModelError, ManifestError, UsageError
from ..hashing import Oid
from ..hyperparams import ParamsFileError, flatten, is_params_file, parse_params_file
from ..listing import FallbackReader, listing_oid, listing_path, read_listing
from ..manifest import Manifest, Model, Reader
from ..tensors import TensorListing, read_tensors
from ..versions import RECIPE, component_oids, model_inputs, model_version
from .context import Context

INLINE = "inline"  # the source of hyperparameters kept in the manifest itself
WORK_TREE = "work tree"


@dataclass
class Snapshot:
    label: str  # what the user called it: "HEAD~1", "v1", "work tree"
    commit: str | None  # None for the work tree
    manifest: Manifest
    read: Reader
    missing: frozenset[str] = frozenset()  # artifacts absent from the work tree
    warnings: list[str] = field(default_factory=list)
    _listings: dict[str, bytes] = field(default_factory=dict)
    _tensors: dict[str, TensorListing | None] = field(default_factory=dict)
    root: Path | None = None  # the work tree's, for a work-tree snapshot
    _oids: dict[str, dict[tuple[str, str], str]] = field(default_factory=dict)

    @property
    def is_work_tree(self) -> bool:
        return self.commit is None

    def listing(self, path: str) -> bytes | None:
        """A tracked directory's listing, verified against its oid (None for a file)."""
        art = self.manifest.artifacts.get(path)
        if art is None or not art.is_dir:
            return None
        if path not in self._listings:
            data = self.read(listing_path(path))
            if isinstance(self.read, FallbackReader) and (
                data is None or listing_oid(data) != art.oid
            ):
                data = self.read.listing(listing_path(path), art.oid) or data
            if data is None or listing_oid(data) != art.oid:
                read_listing(self.read, art)  # raises the one-line error that fits
                raise ManifestError(f"{listing_path(path)} cannot be read")  # pragma: no cover
            self._listings[path] = data
        return self._listings[path]

    def tensors(self, path: str) -> TensorListing | None:
        """A model file's tensor listing: recorded (verified), or for a work-tree file that
        differs from its record, computed from the file (its parts hashed, not stored). None
        for a file of no format git-model splits, or a directory."""
        art = self.manifest.artifacts.get(path)
        if art is None or art.is_dir:
            return None
        if path not in self._tensors:
            if art.layout is not None:
                self._tensors[path] = read_tensors(self.read, art)
            elif self.root is not None:
                from ..partstore import listing_of_file

                self._tensors[path] = listing_of_file(self.root / path)
            else:
                self._tensors[path] = None
        return self._tensors[path]

    def component_oids(self, model: Model) -> dict[tuple[str, str], str]:
        """(kind, path) -> oid for every component ("-" for a file that is absent)."""
        if model.name not in self._oids:
            rows = component_oids(model, self.manifest, self.read)
            self._oids[model.name] = {(k, p): o for k, p, o in rows}
        return self._oids[model.name]

    def computed_version(self, name: str) -> Oid:
        return model_version(self.manifest.models[name], self.manifest, self.read)

    def version(self, name: str) -> Oid | None:
        """The manifest's version at a commit (computed if it has none); computed for the
        work tree, where the manifest's may be stale until the next commit refreshes it."""
        model = self.manifest.models.get(name)
        if model is None:
            return None
        if self.is_work_tree or model.version is None:
            return self.computed_version(name)
        return model.version

    def inputs(self, name: str) -> Oid | None:
        """The model's input hash (everything but its weights), computed from this state."""
        model = self.manifest.models.get(name)
        return None if model is None else model_inputs(model, self.manifest, self.read)

    def hyperparameters(self, model: Model) -> dict[tuple[str, str], Any]:
        """(source, dotted key) -> value, from inline values and every readable params file."""
        out: dict[tuple[str, str], Any] = {
            (INLINE, key): value for key, value in flatten(model.hyperparameters).items()
        }
        for path in model.params:
            out.update({(path, key): value for key, value in self.params_file(path).items()})
        return out

    def params_file(self, path: str) -> dict[str, Any]:
        """A params file's flattened keys; {} (and a warning) when it cannot be parsed."""
        if not is_params_file(path):
            return {}
        data = self.read(path)
        if data is None:
            return {}
        try:
            return parse_params_file(path, data)
        except ParamsFileError as e:
            message = f"hyperparameters of {path} at {self.label} are not shown: {e}"
            if message not in self.warnings:
                self.warnings.append(message)
            return {}


def memo(read: Reader) -> Reader:
    """Read each path once: versions and hyperparameters both need params and code files."""
    seen: dict[str, bytes | None] = {}

    def cached(path: str) -> bytes | None:
        if path not in seen:
            seen[path] = read(path)
        return seen[path]

    return FallbackReader(cached, read.fallbacks) if isinstance(read, FallbackReader) else cached


def resolve(ctx: Context, rev: str) -> str:
    commit = ctx.repo.rev_parse(rev)
    if commit is None:
        if rev == "HEAD":
            raise GitModelError("there is no commit yet; commit first ('git commit')")
        raise UsageError(f"unknown revision {rev!r}; give a commit, branch or tag")
    return commit


def at_commit(ctx: Context, rev: str, commit: str | None = None) -> Snapshot:
    """The state recorded in a commit, from git objects only."""
    commit = commit or resolve(ctx, rev)
    read = memo(ctx.reader(commit))
    manifest = ctx.manifest(commit)
    return Snapshot(rev, commit, manifest, read)


def empty(label: str) -> Snapshot:
    """Before the first commit: no models, no artifacts."""
    return Snapshot(label, None, Manifest(), lambda path: None)


def work_tree(ctx: Context) -> Snapshot:
    """The work tree now: artifacts as their files hash today, versions recomputed."""
    manifest = ctx.manifest(None).copy()
    ws = ctx.workspace()
    listings: dict[str, bytes] = {}
    missing = set()
    for path in sorted(manifest.artifacts):
        scanned = ws.scan(path, store=False)
        if scanned is None:
            missing.add(path)
            del manifest.artifacts[path]  # its version then hashes the "-" of an absent file
            continue
        recorded = manifest.artifacts[path]
        if recorded.layout is not None and scanned.artifact.oid == recorded.oid:
            # the bytes recorded: their recorded tensor listing holds
            manifest.artifacts[path] = replace(recorded, executable=scanned.artifact.executable)
        else:
            manifest.artifacts[path] = scanned.artifact
        if scanned.listing is not None:
            listings[path] = scanned.listing
    ws.state.flush()
    snap = Snapshot(WORK_TREE, None, manifest, memo(ctx.reader(None)), frozenset(missing))
    snap.root = ctx.root
    snap._listings.update(listings)
    snap.warnings += [
        f"{p} is missing from the work tree; 'git model checkout' puts it back"
        for p in sorted(missing)
    ]
    return snap


# -- cross-checks --------------------------------------------------------------------------------


def stale_versions(snap: Snapshot) -> list[str]:
    """Models whose recorded version is not what their components hash to (commits only)."""
    out = []
    for name, model in sorted(snap.manifest.models.items()):
        if snap.is_work_tree or model.version is None:
            continue
        computed = snap.computed_version(name)
        if computed != model.version:
            out.append(
                f"at {snap.label}, model {name} records version {model.version.short} but its "
                f"components hash to {computed.short}; the commit was made without the hook "
                "('git model add' or a new commit refreshes it)"
            )
    return out


def note_disagreements(
    commit: str, records: list[notes.Record], versions: dict[str, Oid | None]
) -> list[str]:
    """A versions note that claims what the manifest does not: reported, never trusted.

    Only the latest versions record counts (an amended commit also carries the note copied
    from the commit it replaced); records of another recipe cannot be compared and are skipped.
    """
    claims = [
        r
        for r in notes.latest(records, "versions")
        if r.get("recipe") == RECIPE and isinstance(r.get("models"), dict)
    ]
    if not claims:
        return []
    newest = max(str(r.get("time", "")) for r in claims)
    current = [r for r in claims if str(r.get("time", "")) == newest]
    out = []
    for name in sorted({n for r in current for n in r["models"]}):
        # (a claim that is not a string is no version: skipped, as unreadable records are)
        claimed = {v for r in current if isinstance(v := r["models"].get(name), str)}
        actual = versions.get(name)
        if not claimed or actual in claimed:
            continue
        shown = ", ".join(str(c)[:12] for c in sorted(claimed, key=str) if c is not None)
        out.append(
            f"the note on {commit[:12]} claims model {name} is version {shown} but the manifest "
            f"records {actual.short if actual else 'no such model'}; trusting the manifest"
        )
    return out
