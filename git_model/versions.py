"""The model version hash: one SHA-256 over everything that defines a model.

Recipe 1 (versioned; a new recipe gets a new number and old versions stay readable):

    sha256("git-model version 1\\n" + lines)

with one line `kind<TAB>path<TAB>oid\\n` per component, sorted by (kind, path), where `oid` is
the SHA-256 of the file (or of the directory listing), and one line
`hyperparameters<TAB>key<TAB>canonical-json-value\\n` per inline hyperparameter, sorted by key.
Canonical JSON: `json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`.
Metrics are outcomes, not inputs: they never enter the hash.

Input recipe 1 (the **input hash**: what a training run starts from, everything but the weights
it produces; `git model run` finds a version already trained from the same inputs by it):

    inputs = sha256("git-model inputs 1\n" + lines)

with the same lines as the version recipe minus the `weights` ones: data, params and code
components and the inline hyperparameters.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .hashing import Oid
from .manifest import KINDS, Manifest, Model, Reader

RECIPE = 1
PREFIX = b"git-model version 1\n"
INPUTS_RECIPE = 1
INPUTS_PREFIX = b"git-model inputs 1\n"
INPUT_KINDS = ("data", "params", "code")
MISSING = "-"  # a component file that does not exist at this revision


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def component_oids(
    model: Model, manifest: Manifest, read: Reader, kinds: tuple[str, ...] = KINDS
) -> list[tuple[str, str, str]]:
    """(kind, path, oid) for every component of `kinds`, sorted by (kind, path)."""
    rows: list[tuple[str, str, str]] = []
    for kind in kinds:
        for path in getattr(model, kind):
            art = manifest.artifacts.get(path)
            if art is not None:
                rows.append((kind, path, str(art.oid)))
                continue
            data = read(path)
            rows.append(
                (kind, path, hashlib.sha256(data).hexdigest() if data is not None else MISSING)
            )
    rows.sort()
    return rows


def version_lines(
    model: Model, manifest: Manifest, read: Reader, kinds: tuple[str, ...] = KINDS
) -> bytes:
    lines = [f"{k}\t{p}\t{o}\n" for k, p, o in component_oids(model, manifest, read, kinds)]
    lines += [
        f"hyperparameters\t{key}\t{canonical_json(model.hyperparameters[key])}\n"
        for key in sorted(model.hyperparameters)
    ]
    return "".join(lines).encode("utf-8")


def model_version(model: Model, manifest: Manifest, read: Reader) -> Oid:
    return Oid(hashlib.sha256(PREFIX + version_lines(model, manifest, read)).hexdigest())


def model_inputs(model: Model, manifest: Manifest, read: Reader) -> Oid:
    """The input hash: the version recipe over everything but the weights."""
    lines = version_lines(model, manifest, read, INPUT_KINDS)
    return Oid(hashlib.sha256(INPUTS_PREFIX + lines).hexdigest())


def all_inputs(manifest: Manifest, read: Reader) -> dict[str, str]:
    """Model name -> input hash, for every model of `manifest`."""
    return {
        name: str(model_inputs(model, manifest, read))
        for name, model in sorted(manifest.models.items())
    }


def refresh_versions(manifest: Manifest, read: Reader) -> list[str]:
    """Recompute every model's version in place; return the names whose version changed."""
    changed = []
    for name, model in manifest.models.items():
        version = model_version(model, manifest, read)
        if version != model.version:
            model.version = version
            changed.append(name)
    return changed
