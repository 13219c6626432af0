"""The model registry: versions, stages and their history, read from and written as git tags.

State is rebuilt from the tags on every read (one `git for-each-ref`), with GTO's semantics so
both tools agree on what holds each stage: a (version, stage) pair is active while its latest
event is an assignment, and a stage shows the active version assigned most recently. Stage
events are ordered by their per-model counter, which GTO increments on every stage tag, so the
order holds even when several tags share the same second.

What git-model adds to GTO: each version carries its model version hash (the lineage hash from
the manifest) and its metrics (from the notes, or the snapshot in the registration tag when the
notes have not been fetched), and `resolve_model_rev` turns `NAME@v1.2.0`, `NAME@prod` or
`NAME#prod` into the commit that holds that version (for `git model checkout` and the Python
API). Changes (tag, promote, demote) live in `registry_write`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import notes
from ..errors import GitModelError, UsageError
from ..registry_tags import (
    ASSIGN,
    DEPRECATE,
    DEREGISTER,
    REGISTER,
    SHORTCUT_RE,
    UNASSIGN,
    RegistryTag,
    SemVer,
    read_tags,
    subject,
)
from ..versions import model_version
from .context import Context
from .metrics import merged


def iso_time(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


@dataclass
class Event:
    """One registry tag, read as a step in a model's history."""

    event: str  # registration, deregistration, assignment, unassignment, deprecation
    model: str
    version: str | None  # "v1.2.0"; for a stage on an unregistered commit, the commit
    stage: str | None
    commit: str
    tag: str
    time: int
    author: str
    message: str
    counter: int | None = None

    def sort_key(self) -> tuple[Any, ...]:
        rank = 0 if self.event in (REGISTER, DEREGISTER) else 1
        semver = SemVer.parse(self.version).key() if self.version and rank == 0 else ()
        return (self.time, rank, self.counter or 0, semver)

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "version": self.version,
            "stage": self.stage,
            "commit": self.commit,
            "tag": self.tag,
            "time": iso_time(self.time),
            "author": self.author,
            "message": self.message,
        }


@dataclass
class Version:
    model: str
    version: str
    commit: str
    registered: bool = False
    deregistered: bool = False
    tag: RegistryTag | None = None  # the registration tag
    version_hash: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    stages: list[str] = field(default_factory=list)  # the stages it holds now
    stage_events: dict[str, list[Event]] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return not self.deregistered

    def holds(self, stage: str) -> int | None:
        """The counter of its latest assignment to `stage` while that is in effect."""
        events = self.stage_events.get(stage)
        if not events or events[-1].event != ASSIGN:
            return None
        return events[-1].counter or 0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "commit": self.commit,
            "version_hash": self.version_hash,
            "metrics": self.metrics,
            "stages": self.stages,
            "registered": self.registered,
            "active": self.active,
            "tag": self.tag.tag if self.tag else None,
            "time": iso_time(self.tag.time) if self.tag else None,
        }


@dataclass
class ModelEntry:
    name: str
    versions: list[Version] = field(default_factory=list)  # highest version first
    stages: dict[str, Version] = field(default_factory=dict)  # stage -> the version holding it
    history: list[Event] = field(default_factory=list)  # oldest first
    counter: int = 0  # the largest counter among its tags

    @property
    def latest(self) -> Version | None:
        return next((v for v in self.versions if v.registered and v.active), None)

    @property
    def deprecated(self) -> bool:
        return bool(self.history) and self.history[-1].event == DEPRECATE

    def find(self, version: str) -> Version | None:
        return next((v for v in self.versions if v.version == version), None)

    def to_json(self, *, history: bool = False) -> dict[str, Any]:
        latest = self.latest
        return {
            "name": self.name,
            "registered": any(v.registered for v in self.versions),
            "deprecated": self.deprecated,
            "latest": latest.version if latest else None,
            "stages": {s: v.version for s, v in sorted(self.stages.items())},
            "versions": [v.to_json() for v in self.versions],
            "history": [e.to_json() for e in self.history] if history else None,
        }


@dataclass
class Registry:
    models: dict[str, ModelEntry] = field(default_factory=dict)

    def model(self, name: str) -> ModelEntry:
        entry = self.models.get(name)
        if entry is None:
            raise GitModelError(
                f"model {name!r} has no registered versions; register one with 'git model tag {name}'"
            )
        return entry


# -- reading -------------------------------------------------------------------------------------


def load_registry(ctx: Context, *, details: bool = True) -> Registry:
    """The registry as the tags say; with `details`, version hashes and metrics too."""
    registry = build_registry(read_tags(ctx.repo))
    if details:
        _fill_details(ctx, registry)
    return registry


def build_registry(tags: Iterable[RegistryTag]) -> Registry:
    """The registry state from its tags alone (no git needed: a dulwich reader can feed it)."""
    registry = Registry()
    # registrations first, so that a stage tag finds the version registered at its commit
    order = {REGISTER: 0, DEREGISTER: 1}
    for t in sorted(tags, key=lambda t: order.get(t.name.action, 2)):
        entry = registry.models.setdefault(t.name.model, ModelEntry(t.name.model))
        entry.counter = max(entry.counter, t.name.counter or 0)
        version = t.name.version or _version_at(entry, t.commit)
        event = Event(
            t.name.action,
            entry.name,
            version,
            t.name.stage,
            t.commit,
            t.tag,
            t.time,
            t.author,
            subject(t.message),
            t.name.counter,
        )
        entry.history.append(event)
        if t.name.action in (REGISTER, DEREGISTER):
            v = entry.find(version) if version else None
            if v is None:
                v = Version(entry.name, t.name.version or "", t.commit)
                entry.versions.append(v)
            if t.name.action == REGISTER:
                v.registered, v.tag, v.version_hash = True, t, t.version_hash
            else:
                v.deregistered = True
        elif t.name.action in (ASSIGN, UNASSIGN) and t.name.stage:
            v = entry.find(version) if version else None
            if v is None:  # a stage on a commit nobody registered (GTO --skip-registration)
                v = entry.find(t.commit) or Version(entry.name, t.commit, t.commit)
                if v not in entry.versions:
                    entry.versions.append(v)
                event.version = v.version  # GTO names such a version by its commit
            v.stage_events.setdefault(t.name.stage, []).append(event)
    for entry in registry.models.values():
        _settle(entry)
    return registry


def _version_at(entry: ModelEntry, commit: str) -> str | None:
    registered = [v for v in entry.versions if v.commit == commit and v.registered]
    return registered[-1].version if registered else None


def _settle(entry: ModelEntry) -> None:
    entry.history.sort(key=Event.sort_key)
    entry.versions.sort(
        key=lambda v: (v.registered, SemVer.parse(v.version).key() if v.registered else ()),
        reverse=True,
    )
    for v in entry.versions:
        for events in v.stage_events.values():
            events.sort(key=lambda e: (e.counter or 0, e.time))
    for stage in sorted({s for v in entry.versions for s in v.stage_events}):
        # the version assigned most recently among those still in the stage (GTO's view)
        in_effect = [v for v in entry.versions if v.active and v.holds(stage) is not None]
        if in_effect:
            holder = max(in_effect, key=lambda v: v.holds(stage) or 0)
            entry.stages[stage] = holder
            holder.stages.append(stage)


def _fill_details(ctx: Context, registry: Registry) -> None:
    versions = [v for e in registry.models.values() for v in e.versions]
    records = notes.records_by_commit(ctx.repo, sorted({v.commit for v in versions}))
    for v in versions:
        if v.version_hash is None:
            v.version_hash = _hash_or_none(ctx, v.commit, v.model)
        v.metrics = metrics_for(records.get(v.commit, []), v.model)
        if not v.metrics and v.tag is not None and v.tag.metrics:
            v.metrics = dict(v.tag.metrics)  # the snapshot taken at registration


def metrics_for(records: list[notes.Record], model: str) -> dict[str, Any]:
    """A commit's metrics for one model: later records win, key by key."""
    return {name: m.value for name, m in merged(records, model).items()}


def version_hash_at(ctx: Context, commit: str, model: str) -> str:
    """The model version hash of `model` at `commit` (from the manifest, computed if absent)."""
    manifest = ctx.manifest(commit)
    m = manifest.models.get(model)
    if m is None:
        raise GitModelError(
            f"there is no model {model!r} at {commit[:10]}; declare it with "
            f"'git model add PATH --model {model}' and commit"
        )
    return str(m.version or model_version(m, manifest, ctx.reader(commit)))


def _hash_or_none(ctx: Context, commit: str, model: str) -> str | None:
    try:
        return version_hash_at(ctx, commit, model)
    except GitModelError:
        return None


def unregistered_models(ctx: Context, registry: Registry) -> list[str]:
    """Models declared in HEAD's manifest that have no registered version yet."""
    head = ctx.repo.head()
    declared = ctx.manifest(head).models if head else {}
    return sorted(n for n in declared if n not in registry.models)


# -- resolving `NAME@v1.2.0`, `NAME@prod`, `NAME#prod` -------------------------------------------


def resolve_model_rev(ctx: Context, text: str) -> tuple[str, str | None]:
    """The commit `text` names, and the model it names (None for a plain git revision).

    Accepts `NAME@vX.Y.Z`, `NAME@latest`, `NAME#STAGE` (GTO's shortcuts) and `NAME@STAGE`;
    anything else is a git revision (commit, branch, tag).
    """
    if SHORTCUT_RE.fullmatch(text):
        found = resolve_shortcut(load_registry(ctx, details=False), text)
        if found is not None:
            return found
    commit = ctx.repo.rev_parse(text)
    if commit is None:
        raise UsageError(
            f"unknown revision or model version {text!r}; give a commit, branch or tag, "
            "or NAME@v1.2.3, NAME@STAGE, NAME#STAGE ('git model registry' lists them)"
        )
    return commit, None


def resolve_shortcut(registry: Registry, text: str) -> tuple[str, str] | None:
    """(commit, model) for `NAME@vX.Y.Z`, `NAME@latest`, `NAME@STAGE` or `NAME#STAGE` when
    NAME is registered; None when `text` is not such a name (it may be a git revision)."""
    m = SHORTCUT_RE.fullmatch(text)
    entry = registry.models.get(m["name"]) if m else None
    if m is None or entry is None:
        return None
    return resolve_in(entry, m["sep"], m["ref"]).commit, entry.name


def resolve_in(entry: ModelEntry, sep: str, ref: str) -> Version:
    """The version `@vX.Y.Z`, `@latest`, `@STAGE` or `#STAGE` names in one model."""
    hint = f"'git model registry {entry.name}' lists its versions and stages"
    if sep == "@" and ref in ("latest", "greatest"):
        version = entry.latest
        if version is None:
            raise GitModelError(f"{entry.name} has no active registered version; {hint}")
        return version
    if sep == "@" and SemVer.is_valid(ref):
        version = entry.find(ref)
        if version is None or not version.registered:
            raise GitModelError(f"{entry.name} has no registered version {ref}; {hint}")
        if not version.active:
            raise GitModelError(f"{entry.name}@{ref} was deregistered; {hint}")
        return version
    holder = entry.stages.get(ref)
    if holder is None:
        raise GitModelError(f"no version of {entry.name} is in stage {ref!r}; {hint}")
    return holder
