"""Hermetic test sessions: real git, real hooks, nothing read from or written to the real HOME.

Every test gets its own HOME, XDG dirs and global git config under its tmp_path, with
`GIT_CONFIG_NOSYSTEM=1`, a fixed author and fixed dates, so runs are repeatable and no test
touches the developer's machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from git_model.cache import Cache
    from git_model.hashing import Oid

BIN = str(Path(sys.executable).parent)
pytest_plugins = ["faults"]


class Shell:
    """A user's terminal in one directory: runs git and `git model` for real."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd

    def run(
        self,
        *args: str,
        check: bool = True,
        input: bytes | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        full_env = None if env is None else {**os.environ, **env}
        proc = subprocess.run(
            list(args), cwd=self.cwd, capture_output=True, input=input, env=full_env
        )
        result = subprocess.CompletedProcess(
            proc.args,
            proc.returncode,
            proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def git(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return self.run("git", *args, **kw)  # type: ignore[arg-type]

    def model(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return self.run("git", "model", *args, **kw)  # type: ignore[arg-type]

    def write(self, rel: str, data: bytes | str) -> Path:
        path = self.cwd / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        path.write_bytes(data)
        return path

    def read(self, rel: str) -> bytes:
        return (self.cwd / rel).read_bytes()

    def at(self, cwd: Path) -> Shell:
        return Shell(cwd)


def hermetic_env(home: Path) -> dict[str, str]:
    """The environment of a session whose HOME is `home` (its .gitconfig written here)."""
    home.mkdir(exist_ok=True)
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(
        "[init]\n\tdefaultBranch = main\n"
        "[user]\n\tname = Test User\n\temail = test@example.com\n"
        "[advice]\n\tdetachedHead = false\n"
        '[protocol "file"]\n\tallow = always\n'
    )
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(gitconfig),
        "GIT_AUTHOR_NAME": "Test User",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test User",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
        "GIT_TERMINAL_PROMPT": "0",
        "NO_COLOR": "1",
        "PATH": BIN + os.pathsep + os.environ.get("PATH", ""),
    }


def _strip_env(env: dict[str, str]) -> Iterator[str]:
    """The variables of the real environment a session must not inherit."""
    return (k for k in os.environ if k.startswith(("GIT_", "AWS_")) and k not in env)


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    env = hermetic_env(home)
    for key in list(_strip_env(env)):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return home


@pytest.fixture
def sh(tmp_path: Path) -> Shell:
    """A new, empty git repository."""
    work = tmp_path / "work"
    work.mkdir()
    shell = Shell(work)
    shell.git("init", "-q")
    return shell


@pytest.fixture(scope="session")
def initialized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`git model init` and one initial commit, made once per session (per xdist worker) in a
    hermetic session of its own; `repo` copies it (0.24 s of subprocesses saved per test)."""
    top = tmp_path_factory.mktemp("initialized")
    env = hermetic_env(top / "home")
    env = {k: v for k, v in os.environ.items() if k not in set(_strip_env(env))} | env
    work = top / "work"
    work.mkdir()
    (work / "README.md").write_text("# project\n")
    for args in (
        ["git", "init", "-q"],
        ["git", "model", "init"],
        ["git", "add", "README.md"],
        ["git", "commit", "-q", "-m", "initial"],
    ):
        subprocess.run(args, cwd=work, env=env, check=True, capture_output=True)
    return work


@pytest.fixture
def repo(sh: Shell, initialized: Path) -> Shell:
    """A git repository with git-model set up and one initial commit (`initialized`, copied:
    the same bytes, commit ids and hooks, with this test's own inodes and HOME)."""
    shutil.rmtree(sh.cwd)
    shutil.copytree(initialized, sh.cwd, symlinks=True)
    return sh


def tmpfs(tmp_path: Path, size: str) -> Iterator[Path]:
    """A folder on a tmpfs of `size` (say "6m"): a small disk that fills up for real. For a
    fixture to `yield from`; skips where mounting is not allowed."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / f"tmpfs-{size}"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def stored(cache: Cache, data: bytes) -> Oid:
    """Put `data` in `cache` the way `add` does; its oid."""
    src = cache.model_dir / "src"
    src.write_bytes(data)
    oid, _ = cache.store_file(src)
    src.unlink()
    return oid
