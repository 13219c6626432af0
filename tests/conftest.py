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
from collections.abc import Callable, Iterator
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

    def __init__(self, cwd: Path, base_env: dict[str, str] | None = None) -> None:
        self.cwd = cwd
        self.base_env = base_env  # a session of its own (`Templates`); None: os.environ

    def run(
        self,
        *args: str,
        check: bool = True,
        input: bytes | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        base = os.environ if self.base_env is None else self.base_env
        full_env = None if env is None and self.base_env is None else {**base, **(env or {})}
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
        return Shell(cwd, self.base_env)


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


def session_env(home: Path) -> dict[str, str]:
    """A whole hermetic environment for a session outside any test (fixtures of wider scope)."""
    env = hermetic_env(home)
    strip = set(_strip_env(env))
    return {k: v for k, v in os.environ.items() if k not in strip} | env


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


class Templates:
    """Repositories built once per session (per xdist worker) and copied into each test that
    asks: a fixture's history costs its subprocesses once, not once per test. A copy holds the
    same bytes, commit ids, notes and hooks, with the test's own inodes and HOME. Built in a
    hermetic session of its own, so a build must not count on the test's HOME."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.built: dict[str, Path] = {}

    def copy(self, name: str, build: Callable[[Shell], object], into: Shell) -> Shell:
        if name not in self.built:
            top = self.factory.mktemp(name)
            work = top / "work"
            if name == "initialized":
                work.mkdir()
            else:
                shutil.copytree(self.built["initialized"], work, symlinks=True)
            build(Shell(work, session_env(top / "home")))
            self.built[name] = work
        shutil.rmtree(into.cwd)
        shutil.copytree(self.built[name], into.cwd, symlinks=True)
        return into


def _initialize(sh: Shell) -> None:
    sh.git("init", "-q")
    sh.model("init")
    sh.write("README.md", "# project\n")
    sh.git("add", "README.md")
    sh.git("commit", "-q", "-m", "initial")


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    made = Templates(tmp_path_factory)
    made.copy("initialized", _initialize, Shell(tmp_path_factory.mktemp("unused")))
    return made


@pytest.fixture
def repo(sh: Shell, templates: Templates) -> Shell:
    """A git repository with git-model set up and one initial commit (made once per worker
    and copied: 0.24 s of subprocesses saved per test)."""
    return templates.copy("initialized", _initialize, sh)


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


def peak_rss_mib(sh: Shell, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run `git model ARGS`; also return the peak resident memory of its processes, in MiB."""
    probe = (
        "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
        "sys.exit(p.returncode)"
    )
    out = sh.run(sys.executable, "-c", probe, "git", "model", *args, check=False)
    *lines, peak = out.stderr.rstrip("\n").split("\n")
    out.stderr = "".join(line + "\n" for line in lines)
    return out, int(peak) / 1024
