"""Hyperparameters as flat dotted keys: inline `--param` values and params files.

A model's hyperparameters come from two places: inline values kept in the manifest
(`git model add --model NAME --param train.lr=0.01`) and params files (YAML, JSON or TOML) that
git tracks. The version hash never parses anything here: params files enter it by their bytes
and inline values by canonical JSON (see `versions.py`). Parsing is only for *explaining* a
change, so `git model diff` can say `train.lr: 0.01 → 0.001` instead of "params.yaml changed".

Nested tables are flattened to dotted keys (`{"train": {"lr": 0.01}}` → `train.lr`); lists stay
values. Dates and times (YAML and TOML have them, JSON does not) become ISO-8601 strings so that
every value is plain JSON. PyYAML is imported only when a YAML file is actually read.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import sys
from collections.abc import Mapping
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import GitModelError, UsageError
from .termtext import control_character

PARAMS_SUFFIXES = (".yaml", ".yml", ".json", ".toml")


class ParamsFileError(GitModelError):
    """A params file that cannot be read as YAML, JSON or TOML."""


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (numbers, true, lists…), else the string."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return text


def _reject_constant(name: str) -> Any:
    raise ValueError(name)  # NaN and Infinity are not JSON: keep them as strings


def check_key(key: str, what: str = "hyperparameter") -> str:
    """Dotted keys such as `train.lr`: non-empty parts, nothing that would break a hash line."""
    if not key or any(not part for part in key.split(".")):
        raise UsageError(f"{what} name {key!r} is empty or has an empty part; use e.g. train.lr")
    if control_character(key):
        raise UsageError(f"{what} name {key!r} contains a control character; rename it")
    return key


def parse_assignment(text: str, what: str = "--param") -> tuple[str, Any]:
    """`key=value` from the command line, the value parsed by `parse_value`."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise UsageError(f"{what} {text!r} is not KEY=VALUE; for example {what} train.lr=0.01")
    key = check_key(key.strip(), "parameter" if what == "--param" else "metric")
    return key, parse_value(raw)


def check_toml_value(key: str, value: Any) -> Any:
    """Inline hyperparameters live in TOML: refuse what TOML cannot hold (null, NaN)."""
    if value is None:
        raise UsageError(
            f"--param {key}=null: the manifest is TOML, which has no null; "
            'leave the parameter out or give a string ("none")'
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"--param {key}: {value} is not a finite number")
    if isinstance(value, list):
        for item in value:
            check_toml_value(key, item)
    if isinstance(value, dict):
        for sub_key, item in value.items():
            check_toml_value(f"{key}.{sub_key}", item)
    return value


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys; lists and scalars are leaves (empty tables too)."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            out.update(flatten(item, name + "."))
        else:
            out[name] = plain(item)
    return out


def plain(value: Any) -> Any:
    """The JSON form of a parsed value (dates and times as ISO-8601 strings)."""
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def is_params_file(path: str) -> bool:
    return path.lower().endswith(PARAMS_SUFFIXES)


def parse_params_file(path: str, data: bytes) -> dict[str, Any]:
    """The flattened keys of a YAML, JSON or TOML file, chosen by its suffix."""
    lower = path.lower()
    try:
        text = data.decode("utf-8-sig")
        if lower.endswith((".yaml", ".yml")):
            doc = _load_yaml(text)
        elif lower.endswith(".json"):
            doc = json.loads(text)
        elif lower.endswith(".toml"):
            doc = tomllib.loads(text)
        else:
            raise ParamsFileError(f"{path}: not a .yaml, .yml, .json or .toml file")
    except ParamsFileError:
        raise
    except Exception as e:  # each parser has its own error family; all mean "cannot read it"
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ParamsFileError(f"{path} cannot be parsed ({detail}); fix the file") from None
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        return {"": plain(doc)}  # a bare list or scalar: one unnamed value
    return flatten(doc)


def _load_yaml(text: str) -> Any:
    import yaml  # only commands that explain params changes pay for PyYAML

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)
