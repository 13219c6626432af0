"""`git model remote add|list|remove`, and finding the remote a command should use.

Where remotes live:
- The default remote's name and URL are team settings, tracked in `.gitmodel/config.toml`
  (`remote = "NAME"` and `[remotes.NAME] url = "…"`), so a fresh clone knows where the bytes
  are: `git clone URL && git model init` restores HEAD's artifacts with no other set-up.
- Other remotes, and every option (`model.remote.NAME.endpointurl`, `.profile`, `.port`…), are
  personal: `git config model.remote.NAME.*`, never tracked. `git config model.remote NAME`
  picks a personal default over the team's.
- Credentials are never written by git-model: the backends find them in the environment,
  `~/.aws`, the ssh agent. A URL with a password in it is refused for the tracked file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..config import CONFIG_PATH, Settings
from ..errors import GitModelError, UsageError
from ..remotes.options import protocol_of
from .context import Context

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_SECRET = re.compile(r"key|secret|token|password|credential|sas|connectionstring", re.I)


@dataclass(frozen=True)
class RemoteSpec:
    name: str
    url: str
    options: dict[str, str] = field(default_factory=dict)  # raw git config values, minus url
    default: bool = False
    tracked: bool = False  # its URL comes from .gitmodel/config.toml

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "default": self.default,
            "tracked": self.tracked,
            "options": {k: ("***" if _SECRET.search(k) else v) for k, v in self.options.items()},
        }


def _git_remotes(settings: Settings) -> dict[str, dict[str, str]]:
    """`model.remote.NAME.KEY` values by NAME (git keeps NAME's case, lower-cases KEY)."""
    out: dict[str, dict[str, str]] = {}
    for key, value in settings.git.items():
        if key.startswith("model.remote."):
            name, _, opt = key[len("model.remote.") :].rpartition(".")
            if name and opt:
                out.setdefault(name, {})[opt] = value
    return out


def _team_remotes(settings: Settings) -> dict[str, str]:
    table = settings.team.get("remotes", {})
    if not isinstance(table, dict):
        raise GitModelError(f"[remotes] in {CONFIG_PATH} is not a table; fix it by hand")
    out = {}
    for name, entry in table.items():
        if isinstance(entry, dict) and isinstance(entry.get("url"), str):
            out[name] = entry["url"]
    return out


def default_name(settings: Settings) -> str | None:
    return str(settings.get("remote") or "") or None


def list_remotes(settings: Settings) -> list[RemoteSpec]:
    git, team = _git_remotes(settings), _team_remotes(settings)
    default = default_name(settings)
    specs = []
    for name in sorted(set(team) | {n for n, opts in git.items() if "url" in opts}):
        opts = git.get(name, {})
        url = opts.get("url") or team[name]
        options = {k: v for k, v in opts.items() if k != "url"}
        specs.append(RemoteSpec(name, url, options, name == default, "url" not in opts))
    return specs


def resolve(settings: Settings, name_or_url: str | None) -> RemoteSpec | None:
    """The remote a command uses: a name, a URL or directory given as is, or the default
    (None when no default is set)."""
    remotes = {spec.name: spec for spec in list_remotes(settings)}
    if name_or_url is None:
        name = default_name(settings)
        if name is None:
            return None
        if name not in remotes:
            raise GitModelError(
                f"the default remote {name!r} has no URL; "
                f"run 'git model remote add {name} URL --default'"
            )
        return remotes[name]
    if name_or_url in remotes:
        return remotes[name_or_url]
    if "://" in name_or_url or os.sep in name_or_url or name_or_url.startswith("."):
        return RemoteSpec(name_or_url, name_or_url)
    raise UsageError(
        f"no remote named {name_or_url!r}; 'git model remote list' shows them, "
        f"'git model remote add {name_or_url} URL' adds one"
    )


def require(settings: Settings, name_or_url: str | None) -> RemoteSpec:
    spec = resolve(settings, name_or_url)
    if spec is None:
        raise GitModelError(
            "no default remote: run 'git model remote add NAME URL --default' "
            "(s3://bucket/path, ssh://host/path, a directory…) or name one"
        )
    return spec


def _normalise_url(url: str) -> str:
    from ..remotes import is_lfs

    if is_lfs(url):  # a Git LFS endpoint: `lfs`, `lfs:GITREMOTE` or http(s)://
        return url
    if protocol_of(url) == "file":
        return os.path.abspath(url.removeprefix("file://"))
    return url


def add_remote(ctx: Context, name: str, url: str, *, default: bool = False) -> RemoteSpec:
    if not _NAME.match(name):
        raise UsageError(f"{name!r} is not a remote name: use letters, digits, '.', '_', '-'")
    if not url:
        raise UsageError("give the remote's URL: git model remote add NAME s3://bucket/path")
    url = _normalise_url(url)
    existing = {s.name: s for s in list_remotes(ctx.settings)}
    if name in existing and existing[name].url != url:
        raise GitModelError(
            f"remote {name} already points at {existing[name].url}; "
            f"'git model remote remove {name}' first"
        )
    if not default:
        ctx.repo.config_set(f"model.remote.{name}.url", url)
    else:
        if urlsplit(url).password:
            raise GitModelError(
                "the URL holds a password and the default remote is tracked in git; "
                "drop it from the URL (the backend finds credentials in the usual places)"
            )
        ctx.repo.git("config", "--unset", f"model.remote.{name}.url", check=False)
        doc = dict(ctx.settings.team)
        remotes = dict(doc.get("remotes") or {})
        remotes[name] = {"url": url}
        doc["remotes"] = remotes
        doc["remote"] = name
        ctx.settings.write_team(doc)
        ctx.repo.add([CONFIG_PATH])
    ctx.settings = Settings(ctx.repo.root)  # re-read on next use
    return next(s for s in list_remotes(ctx.settings) if s.name == name)


def remove_remote(ctx: Context, name: str) -> RemoteSpec:
    spec = next((s for s in list_remotes(ctx.settings) if s.name == name), None)
    if spec is None:
        raise GitModelError(f"no remote named {name!r}; 'git model remote list' shows them")
    ctx.repo.git("config", "--remove-section", f"model.remote.{name}", check=False)
    if ctx.settings.git.get("model.remote") == name:
        ctx.repo.git("config", "--unset", "model.remote", check=False)
    doc = dict(ctx.settings.team)
    remotes = dict(doc.get("remotes") or {})
    if name in remotes or doc.get("remote") == name:
        remotes.pop(name, None)
        doc["remotes"] = remotes
        if not remotes:
            doc.pop("remotes")
        if doc.get("remote") == name:
            doc.pop("remote")
        ctx.settings.write_team(doc)
        ctx.repo.add([CONFIG_PATH])
    ctx.settings = Settings(ctx.repo.root)
    return spec
