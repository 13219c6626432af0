"""`git model add`: start tracking files and directories (or record their new bytes)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from ..config import CONFIG_PATH
from ..errors import GitModelError, UsageError
from ..gitignore import ensure_ignored
from ..hyperparams import check_toml_value, parse_assignment
from ..kinds import infer_kind
from ..manifest import ARTIFACT_KINDS, KINDS, MANIFEST_PATH, Manifest, Model
from ..paths import GITMODEL_DIR, is_within, to_relpath
from ..stamps import Stamps
from ..termtext import control_character, quote_path
from ..versions import refresh_versions
from ..workspace import Progress
from .context import Context
from .record import record
from .sealing import seal_after_add


@dataclass
class AddResult:
    added: list[str] = field(default_factory=list)  # artifacts new to the manifest
    updated: list[str] = field(default_factory=list)  # artifacts whose bytes changed
    unchanged: list[str] = field(default_factory=list)
    untracked_from_git: list[str] = field(default_factory=list)
    model: str | None = None
    kinds: dict[str, str] = field(default_factory=dict)  # path -> kind, for paths joining `model`
    created_model: bool = False  # `model` is the repository's default model, made just now
    params: dict[str, Any] = field(default_factory=dict)  # inline hyperparameters set

    @property
    def kind(self) -> str | None:
        """The kind the paths joined the model as, when they all joined as one."""
        kinds = set(self.kinds.values())
        return kinds.pop() if len(kinds) == 1 else None

    def to_json(self) -> dict[str, object]:
        return {
            "params": self.params,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed_from_git_index": self.untracked_from_git,
            "model": self.model,
            "kind": self.kind,
            "kinds": self.kinds,
            "created_model": self.created_model,
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
    """Track `paths` as components of `model` and set inline hyperparameters.

    Without `model`, paths that no model has yet join the repository's default model (made on
    first use: see `default_model`); paths already in a model stay where they are. Without
    `kind`, each path's kind is inferred (kinds.py) and a path whose kind cannot be is refused.
    `params` are `key=value` texts (`train.lr=0.01`): the value is JSON when it parses, else a
    string; they live in the manifest under the model and enter its version hash.
    """
    if model is not None and control_character(model):
        raise UsageError(f"model name {model!r} contains a control character; choose another")
    inline = dict(parse_assignment(p) for p in params or [])
    for key, value in inline.items():
        check_toml_value(key, value)
    if not paths and not inline:
        raise UsageError("name at least one file or directory: git model add model.pt data/")
    if kind is not None and kind not in KINDS:
        raise UsageError(f"--kind must be one of {', '.join(KINDS)}")
    rels = [to_relpath(ctx.root, p) for p in paths]
    for rel in rels:
        if is_within(rel, GITMODEL_DIR):
            raise UsageError(
                f"{quote_path(rel)} is git-model's own metadata; it cannot be an artifact"
            )
        if not (ctx.root / rel).exists() and not (ctx.root / rel).is_symlink():
            raise GitModelError(f"{quote_path(rel)} does not exist; check the path and retry")
    result = AddResult(model=model, params=inline)
    with ctx.lock("git model add"):
        stamps = Stamps(ctx.repo.git_dir, ctx.root)
        manifest = ctx.manifest()
        members = {p for m in manifest.models.values() for _, p in m.components()}
        joining = rels if model is not None else [r for r in rels if r not in members]
        result.kinds = _kinds(ctx, joining, kind)
        staged: list[str] = []
        if model is None and (joining or inline):
            result.model, result.created_model = default_model(ctx, manifest)
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
            recorded = record(ctx, manifest, rels, ctx.workspace(progress), stamps=stamps)
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
        if result.model is not None:
            m = manifest.models.setdefault(result.model, Model(result.model))
            for rel, k in result.kinds.items():
                setattr(m, k, sorted({*getattr(m, k), rel}))
            m.hyperparameters.update(inline)
        if model is None and result.model and "default_model" not in ctx.settings.team:
            # the default model's name, recorded on its first use
            ctx.settings.set_team_value("default_model", result.model, DEFAULT_MODEL_COMMENT)
            staged.append(CONFIG_PATH)
        refresh_versions(manifest, ctx.reader(None))
        ctx.write_manifest(manifest)
        staged.append(MANIFEST_PATH)
        ctx.repo.add(sorted(set(staged)))
        seal_after_add(ctx, manifest, stamps)  # the commit that follows needs no full hook
    return result


DEFAULT_MODEL_COMMENT = "the model 'git model add' fills without --model"


def _kinds(ctx: Context, rels: list[str], kind: str | None) -> dict[str, str]:
    """The kind each path joins its model as: `kind`, else inferred; one line if it can't be."""
    if kind is not None:
        return dict.fromkeys(rels, kind)
    kinds = {rel: infer_kind(str(ctx.root / rel)) for rel in rels}
    unknown = [rel for rel, k in kinds.items() if k is None]
    if unknown:
        names = " ".join(shlex.quote(r) if quote_path(r) == r else quote_path(r) for r in unknown)
        shown = " and ".join(quote_path(r) for r in unknown)
        raise UsageError(
            f"say what {shown} {'is' if len(unknown) == 1 else 'are'}: "
            f"git model add {names} --kind weights (or data, params, code)"
        )
    return {rel: k for rel, k in kinds.items() if k is not None}


def default_model(ctx: Context, manifest: Manifest) -> tuple[str, bool]:
    """The repository's default model, which `git model add` without `--model` fills: named by
    `default_model` in .gitmodel/config.toml; the first time, the repository's only model if it
    has exactly one, else a new one named after the repository's folder (recorded there by
    `add`). True when the model is made just now."""
    name = ctx.settings.team.get("default_model")
    if not isinstance(name, str) or not name:
        # a repository with one model already (named with --model before there was a
        # default): that one, rather than a second model beside it
        only = list(manifest.models)
        name = only[0] if len(only) == 1 else _model_name(ctx.root.name)
    return name, name not in manifest.models


def _model_name(folder: str) -> str:
    """A folder's name as a model name the registry's tags accept (letters, digits, - and _)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", folder).strip("-_")
    return name or "model"
