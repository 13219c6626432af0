"""Settings: team defaults in `.gitmodel/config.toml`, personal overrides in `git config model.*`.

A key such as `linkType` is looked up as `git config model.linkType` first (so `git -c
model.linkType=hardlink model checkout` works), then as `link_type` in the tracked team file,
then a built-in default. Credentials never live here: they come from the environment, `~/.aws`,
the ssh agent, as each remote's library expects.
"""

from __future__ import annotations

import os
import sys

from .errors import GitModelError
from .git import run_git
from .paths import GITMODEL_DIR

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing and pathlib: not imported by the commit hook)
    from pathlib import Path
    from typing import Any

CONFIG_PATH = f"{GITMODEL_DIR}/config.toml"
GIT_CONFIG_ARGS = ("config", "-z", "--get-regexp", r"^model\.")  # every model.* value

# git config key (under model.) -> (team file key, default)
DEFAULTS: dict[str, tuple[str, Any]] = {
    "linkType": ("link_type", "copy"),
    "maxGitFileSize": ("max_git_file_size", 10 * 1024 * 1024),
    "lockTimeout": ("lock_timeout", 60),
    "jobs": ("jobs", 0),  # 0: pick from the number of cores
    "remote": ("remote", ""),  # name of the default remote
    "compress": ("compress", "auto"),  # objects on remotes: auto, off or a zstd level
    "pack": ("pack", "auto"),  # many small objects pushed in packs (remotes/packs.py): auto, off
}


def _parse_size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    mult = units.get(t[-1:], 1)
    if t[-1:] in units:
        t = t[:-1]
    return int(float(t) * mult)


def _parse_toml(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise GitModelError(
            f"{CONFIG_PATH} is not valid TOML ({e}); fix it or 'git checkout -- {CONFIG_PATH}'"
        ) from None


def _has_settings(text: str) -> bool:
    """Does a TOML text hold anything but blank lines and comments?"""
    return any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines())


def _parse_git_config(out: bytes) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in out.decode(errors="replace").split("\0"):
        if item:
            key, _, value = item.partition("\n")
            values[key] = value
    return values


def _spells(text: str, key: str) -> bool:
    """Might `text` set `key`: a line that starts with it, outside a comment (a commented-out
    default, as init writes them, does not count)."""
    return key in text and any(line.lstrip().startswith(key) for line in text.splitlines())


class Settings:
    """The settings of the work tree at `root`; `git_config`, when given, is the output of
    `git config` with GIT_CONFIG_ARGS, already read (else it is read when first needed)."""

    def __init__(self, root: str | os.PathLike[str], git_config: bytes | None = None) -> None:
        self.root = root
        self._git: dict[str, str] | None = None
        self._team: dict[str, Any] | None = None
        self._text: str | None = None
        if git_config is not None:
            self._git = _parse_git_config(git_config)

    @property
    def git(self) -> dict[str, str]:
        """Every `model.*` git config value, read in one git call (keys lower-cased by git)."""
        if self._git is None:
            self._git = _parse_git_config(
                run_git(GIT_CONFIG_ARGS, cwd=self.root, check=False).stdout
            )
        return self._git

    @property
    def team(self) -> dict[str, Any]:
        if self._team is None:
            text = self._team_text()
            # the file init writes holds only comments: no parser to import (a hook's 3 ms)
            self._team = _parse_toml(text) if _has_settings(text) else {}
        return self._team

    def _team_text(self) -> str:
        if self._text is None:
            try:
                with open(os.path.join(self.root, CONFIG_PATH), encoding="utf-8") as f:
                    self._text = f.read()
            except FileNotFoundError:
                self._text = ""
            except UnicodeDecodeError as e:
                raise GitModelError(
                    f"{CONFIG_PATH} is not UTF-8 ({e}); fix it or 'git checkout -- {CONFIG_PATH}'"
                ) from None
        return self._text

    def get(self, key: str) -> Any:
        team_key, default = DEFAULTS[key]
        raw: Any = self.git.get(f"model.{key.lower()}")
        if raw is None and _spells(self._team_text(), team_key):
            # (a key no line of the file sets needs no TOML parser: the commit hook asks for
            # maxGitFileSize on every commit, and the file names the default model)
            raw = self.team.get(team_key, default)
        elif raw is None:
            raw = default
        if isinstance(default, int) and not isinstance(raw, int):
            try:
                return _parse_size(str(raw))
            except ValueError:
                raise GitModelError(
                    f"model.{key} = {raw!r} is not a number; fix it with 'git config model.{key} N'"
                ) from None
        return raw

    @property
    def link_type(self) -> str:
        from .cache import LINK_TYPES

        value = str(self.get("linkType"))
        if value not in LINK_TYPES:
            raise GitModelError(
                f"model.linkType = {value!r}; use one of {', '.join(LINK_TYPES)} "
                "('git config model.linkType copy')"
            )
        return value

    def set_team_value(self, key: str, value: str, comment: str) -> Path:
        """Set a top-level key of the team file by editing its text, so that its comments and
        the rest of it stay as they are (`write_team` rewrites the whole file)."""
        import re
        from pathlib import Path

        import tomli_w

        path = Path(self.root, CONFIG_PATH)
        try:
            lines = path.read_text("utf-8").splitlines(keepends=True)
        except FileNotFoundError:
            lines = []
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        line = f"{tomli_w.dumps({key: value}).strip()}  # {comment}\n"
        tables = next((i for i, t in enumerate(lines) if t.lstrip().startswith("[")), len(lines))
        mine = re.compile(rf"\s*{re.escape(key)}\s*=")
        at = next((i for i in range(tables) if mine.match(lines[i])), None)
        if at is None:
            while tables > 0 and not lines[tables - 1].strip():
                tables -= 1  # before the blank line(s) that set the tables apart
            lines.insert(tables, line)
        else:
            lines[at] = line
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(lines), "utf-8")
        self._team = self._text = None
        if self.team.get(key) != value:  # (parsed back: the edit must say what it meant)
            raise GitModelError(f"could not set {key} in {CONFIG_PATH}; set it there by hand")
        return path

    def write_team(self, doc: dict[str, Any]) -> Path:
        from pathlib import Path

        import tomli_w

        path = Path(self.root, CONFIG_PATH)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tomli_w.dumps(doc), "utf-8")
        self._team = self._text = None
        return path
