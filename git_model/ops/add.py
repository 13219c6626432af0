"""`git model add`: start tracking files and directories (or record their new bytes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import GitModelError, UsageError
from ..gitignore import ensure_ignored
from ..hyperparams import check_toml_value, parse_assignment
from ..manifest import ARTIFACT_KINDS, KINDS, MANIFEST_PATH, Model
from ..paths import GITMODEL_DIR, is_within, to_relpath
from ..versions import refresh_versions
from ..workspace import Progress
from .context import Context
from .record import record


@dataclass
class AddResult:
    added: list[str] = field(default_factory=list)  # artifacts new to the manifest
    updated: list[str] = field(default_factory=list)  # artifacts whose bytes changed
    unchanged: list[str] = field(default_factory=list)
    untracked_from_git: list[str] = field(default_factory=list)
    model: str | None = None
    kind: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # inline hyperparameters set

    def to_json(self) -> dict[str, object]:
        return {
            "params": self.params,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed_from_git_index": self.untracked_from_git,
            "model": self.model,
            "kind": self.kind,
        }


def add(
    ctx: Context,
    paths: list[str],
    *,
    model: str | None = None,
    kind: str | None = None,
    params: list[str] | None = None,
    progress: Progress | None = None,
) -> AddResult:
    """Track `paths` (as components of `model` when given) and set inline hyperparameters.

    `params` are `key=value` texts (`train.lr=0.01`): the value is JSON when it parses, else a
    string; they live in the manifest under the model and enter its version hash.
    """
    inline = dict(parse_assignment(p) for p in params or [])
    for key, value in inline.items():
        check_toml_value(key, value)
    if inline and model is None:
        raise UsageError("--param needs --model NAME: git model add --model NAME --param lr=0.01")
    if not paths and not inline:
        raise UsageError("name at least one file or directory: git model add model.pt data/")
    if kind is not None and kind not in KINDS:
        raise UsageError(f"--kind must be one of {', '.join(KINDS)}")
    if kind is not None and model is None:
        raise UsageError("--kind needs --model NAME: git model add PATH --model NAME --kind KIND")
    kind = kind or ("weights" if model else None)
    rels = [to_relpath(ctx.root, p) for p in paths]
    for rel in rels:
        if is_within(rel, GITMODEL_DIR):
            raise UsageError(f"{rel} is git-model's own metadata; it cannot be an artifact")
        if not (ctx.root / rel).exists() and not (ctx.root / rel).is_symlink():
            raise GitModelError(f"{rel} does not exist; check the path and retry")
    result = AddResult(model=model, kind=kind if rels else None, params=inline)
    with ctx.lock("git model add"):
        manifest = ctx.manifest()
        staged: list[str] = []
        if rels and kind in (None, *ARTIFACT_KINDS):
            for rel in rels:
                for other in manifest.artifacts:
                    if other != rel and (is_within(rel, other) or is_within(other, rel)):
                        raise GitModelError(
                            f"{rel} overlaps the tracked artifact {other}; "
                            f"track one or the other ('git model rm {other}' first)"
                        )
            in_git = ctx.repo.ls_files(*rels)
            if in_git:
                # the bytes move out of git from the next commit on; history keeps the old ones
                ctx.repo.git("rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *rels)
                result.untracked_from_git = sorted(
                    {r for r in rels if any(is_within(f, r) for f in in_git)}
                )
            before = dict(manifest.artifacts)
            recorded = record(ctx, manifest, rels, ctx.workspace(progress))
            staged += recorded.tracked_files
            for rel in rels:
                if rel not in before:
                    result.added.append(rel)
                elif rel in recorded.changed:
                    result.updated.append(rel)
                else:
                    result.unchanged.append(rel)
            if ensure_ignored(ctx.root, rels):
                staged.append(".gitignore")
        elif rels:
            # params and code stay in git: make sure git tracks them
            for rel in rels:
                if manifest.artifact_for(rel):
                    raise GitModelError(
                        f"{rel} is a tracked artifact; --kind {kind} is for files git keeps"
                    )
                if not (ctx.root / rel).is_file():
                    raise GitModelError(f"{rel} is not a file; --kind {kind} takes files")
            staged += rels
            result.added = rels
        if model is not None and kind is not None:
            m = manifest.models.setdefault(model, Model(model))
            current = getattr(m, kind)
            setattr(m, kind, sorted(set(current) | set(rels)))
            m.hyperparameters.update(inline)
        refresh_versions(manifest, ctx.reader(None))
        ctx.write_manifest(manifest)
        staged.append(MANIFEST_PATH)
        ctx.repo.add(sorted(set(staged)))
    return result
