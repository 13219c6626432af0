"""Installing the hook shims and the git settings the hooks rely on (and taking them out again).

The shim (`git_model/hookshim.sh`, the same text as `hooks/shim.sh` at the top of the project)
goes into the hooks directory git really uses: `git rev-parse --git-path hooks`, which honours
`core.hooksPath` (absolute, relative to the work tree, or `~/…`) and linked worktrees. A hook
that is already there is never overwritten: it is renamed to `NAME.pre-git-model`, the shim runs
it first, and `uninstall` renames it back, so its bytes and mode come back exactly. Running
`install` again changes nothing (or upgrades an older shim in place).

Besides the shims: `notes.rewriteRef` makes git copy the notes of a commit to its rewritten form
(amend, rebase), and the `git-model` merge driver with its `.gitattributes` lines merges the
manifest and directory listings entry by entry.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GitModelError
from ..git import Repo
from ..notes import NOTES_REF

HOOKS = (
    "pre-commit",
    "pre-merge-commit",
    "post-commit",
    "post-checkout",
    "post-merge",
    "post-rewrite",
    "pre-push",
)
CHAINED_SUFFIX = ".pre-git-model"
SHIM_MARK = b"git-model hook shim"
SHIM_FILE = Path(__file__).resolve().parent.parent / "hookshim.sh"

DRIVER = "git-model"
DRIVER_NAME = "git-model manifest and listing merge"
DRIVER_COMMAND = "git model hook merge-driver %O %A %B %L %P"
ATTRIBUTES_MARK = "# git-model: merge the manifest and listings entry by entry; keep their bytes"
ATTRIBUTES = (
    f".gitmodel/manifest.toml merge={DRIVER} -text",
    f".gitmodel/dirs/** merge={DRIVER} -text",
    f".gitmodel/tensors/** merge={DRIVER} -text",
)


@dataclass
class HookReport:
    hooks_dir: Path
    installed: list[str] = field(default_factory=list)  # new shims
    chained: list[str] = field(default_factory=list)  # an existing hook now runs first
    updated: list[str] = field(default_factory=list)  # an older shim replaced
    restored: list[str] = field(default_factory=list)  # uninstall: the original hook is back
    removed: list[str] = field(default_factory=list)  # uninstall: shim removed
    foreign: list[str] = field(default_factory=list)  # uninstall: not ours, left alone

    @property
    def put_in_place(self) -> list[str]:
        """Hooks installed, chained or updated now, in git's order."""
        done = set(self.installed) | set(self.chained) | set(self.updated)
        return [name for name in HOOKS if name in done]


def shim_text() -> bytes:
    return SHIM_FILE.read_bytes()


def hooks_dir(repo: Repo) -> Path:
    """The directory git runs hooks from (core.hooksPath honoured)."""
    out = repo.git("rev-parse", "--git-path", "hooks").decode().strip()
    path = Path(out)
    return path if path.is_absolute() else repo.root / path


def is_shim(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return SHIM_MARK in f.read(512)
    except OSError:  # absent, a directory, a dangling link
        return False


def _write_executable(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _cannot(directory: Path, e: OSError) -> GitModelError:
    return GitModelError(
        f"cannot change the hooks in {directory} ({e.strerror or e}); fix its permissions, "
        "or point core.hooksPath at a directory you own, and rerun"
    )


def install_hooks(repo: Repo) -> HookReport:
    directory = hooks_dir(repo)
    try:
        return _install(directory)
    except OSError as e:
        raise _cannot(directory, e) from e


def _install(directory: Path) -> HookReport:
    directory.mkdir(parents=True, exist_ok=True)
    report = HookReport(directory)
    shim = shim_text()
    for name in HOOKS:
        path = directory / name
        if is_shim(path):
            if path.read_bytes() != shim or not os.access(path, os.X_OK):
                _write_executable(path, shim)
                report.updated.append(name)
            continue
        if path.exists() or path.is_symlink():
            chained = directory / (name + CHAINED_SUFFIX)
            if chained.exists() or chained.is_symlink():
                raise GitModelError(
                    f"{path} is not git-model's, and {chained.name} is already taken; merge the "
                    f"two hooks by hand into {chained.name}, remove {name}, then rerun 'git model init'"
                )
            os.rename(path, chained)  # bytes, mode and links kept exactly
            report.chained.append(name)
        else:
            report.installed.append(name)
        _write_executable(path, shim)
    return report


def uninstall_hooks(repo: Repo) -> HookReport:
    directory = hooks_dir(repo)
    try:
        return _uninstall(directory)
    except OSError as e:
        raise _cannot(directory, e) from e


def _uninstall(directory: Path) -> HookReport:
    report = HookReport(directory)
    for name in HOOKS:
        path = directory / name
        chained = directory / (name + CHAINED_SUFFIX)
        if not is_shim(path):
            if chained.exists() or chained.is_symlink():
                report.foreign.append(name)
            continue
        if chained.exists() or chained.is_symlink():
            os.replace(chained, path)
            report.restored.append(name)
        else:
            path.unlink()
            report.removed.append(name)
    return report


# -- git settings ---------------------------------------------------------------------------------


def configure(repo: Repo) -> None:
    """Notes follow amend and rebase; the merge driver is known to git (both idempotent)."""
    refs = repo.git("config", "--get-all", "notes.rewriteRef", check=False).decode().split()
    if NOTES_REF not in refs:
        repo.config_set("notes.rewriteRef", NOTES_REF, add=True)
    if repo.config_get(f"merge.{DRIVER}.driver") != DRIVER_COMMAND:
        repo.config_set(f"merge.{DRIVER}.name", DRIVER_NAME)
        repo.config_set(f"merge.{DRIVER}.driver", DRIVER_COMMAND)


def unconfigure(repo: Repo) -> None:
    repo.git("config", "--unset-all", "notes.rewriteRef", f"^{NOTES_REF}$", check=False)
    repo.git("config", "--remove-section", f"merge.{DRIVER}", check=False)


def ensure_attributes(root: Path) -> bool:
    """Give the manifest and listings the merge driver in `.gitattributes`; True if changed."""
    path = root / ".gitattributes"
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        text = ""
    present = set(text.splitlines())
    missing = [line for line in ATTRIBUTES if line not in present]
    if not missing:
        return False
    block = ([] if ATTRIBUTES_MARK in present else [ATTRIBUTES_MARK]) + missing
    if text and not text.endswith("\n"):
        text += "\n"
    if text and ATTRIBUTES_MARK not in present:
        text += "\n"
    path.write_text(text + "\n".join(block) + "\n", "utf-8")
    return True


@dataclass
class Setup:
    hooks: HookReport
    attributes_changed: bool


def install(repo: Repo, *, shims: bool = True) -> Setup:
    """Everything `git model init` sets up for the hooks (the shims unless `shims` is False:
    users of the pre-commit framework add the hooks through `.pre-commit-hooks.yaml`)."""
    report = install_hooks(repo) if shims else HookReport(hooks_dir(repo))
    configure(repo)
    return Setup(report, ensure_attributes(repo.root))


def uninstall(repo: Repo) -> HookReport:
    """Take the shims out (original hooks back, byte for byte) and the local git settings.

    `.gitmodel/`, `.gitattributes` and the cache stay: they belong to the project and the
    team, and `git model init` puts the hooks back.
    """
    report = uninstall_hooks(repo)
    unconfigure(repo)
    return report
