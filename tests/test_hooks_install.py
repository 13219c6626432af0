"""Installing the hooks: shims, chained hooks, core.hooksPath, uninstall, and the hook's imports."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from conftest import Shell

from git_model.ops.hookinstall import HOOKS

ROOT = Path(__file__).resolve().parent.parent


def test_shim_in_the_package_is_the_one_in_hooks() -> None:
    assert (ROOT / "hooks/shim.sh").read_bytes() == (ROOT / "git_model/hookshim.sh").read_bytes()


def test_pre_commit_framework_manifest_is_valid() -> None:
    clientlib = pytest.importorskip("pre_commit.clientlib")
    hooks = clientlib.load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))
    stages = {stage for hook in hooks for stage in hook["stages"]}
    assert stages == {
        "pre-commit",
        "post-commit",
        "post-checkout",
        "post-merge",
        "post-rewrite",
        "pre-push",
    }
    assert all(h["entry"].startswith("git-model hook ") for h in hooks)


def test_init_installs_every_hook_and_is_idempotent(sh: Shell) -> None:
    out = sh.model("init").stdout
    assert "installed hooks" in out
    hooks = sh.cwd / ".git/hooks"
    shim = (ROOT / "hooks/shim.sh").read_bytes()
    for name in HOOKS:
        assert (hooks / name).read_bytes() == shim
        assert os.access(hooks / name, os.X_OK)
    assert sh.git("config", "notes.rewriteRef").stdout.strip() == "refs/notes/model"
    assert "merge-driver" in sh.git("config", "merge.git-model.driver").stdout
    attributes = sh.read(".gitattributes").decode()
    assert ".gitmodel/manifest.toml merge=git-model" in attributes
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in hooks.iterdir()}
    out = sh.model("init").stdout
    assert "installed hooks" not in out
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in hooks.iterdir()} == before
    assert sh.read(".gitattributes").decode() == attributes
    assert sh.git("config", "--get-all", "notes.rewriteRef").stdout.split() == ["refs/notes/model"]


def test_init_without_hooks_for_the_pre_commit_framework(sh: Shell) -> None:
    out = sh.model("init", "--no-hooks").stdout
    assert "installed hooks" not in out
    assert not (sh.cwd / ".git/hooks/pre-commit").exists()
    assert "merge-driver" in sh.git("config", "merge.git-model.driver").stdout
    # the hooks as the framework runs them: its own process, no shim, refs in the environment
    sh.write("model.bin", b"v1")
    sh.model("add", "model.bin")
    sh.run("git-model", "hook", "pre-commit")
    sh.git("commit", "-q", "--no-verify", "-m", "one")
    sh.write("model.bin", b"v2")
    sh.run("git-model", "hook", "pre-commit")
    sh.git("commit", "-q", "--no-verify", "-m", "two")
    head = sh.git("rev-parse", "HEAD").stdout.strip()
    env = {"PRE_COMMIT_FROM_REF": head, "PRE_COMMIT_TO_REF": "HEAD~1"}
    sh.git("checkout", "-q", "HEAD~1")
    sh.run("git-model", "hook", "post-checkout", env={**env, "PRE_COMMIT_CHECKOUT_TYPE": "1"})
    assert sh.read("model.bin") == b"v1"


def test_existing_hooks_keep_running_and_uninstall_restores_them(sh: Shell) -> None:
    hooks = sh.cwd / ".git/hooks"
    hooks.mkdir(exist_ok=True)
    log = sh.cwd.parent / "chained.log"
    originals = {
        "pre-commit": f'#!/bin/sh\necho "pre-commit" >> {log}\n[ ! -e BLOCK ]\n',
        "post-checkout": f'#!/bin/sh\necho "post-checkout $*" >> {log}\n',
        "post-rewrite": f'#!/bin/sh\necho "post-rewrite $1 $(cat)" >> {log}\n',
    }
    for name, text in originals.items():
        (hooks / name).write_text(text)
        (hooks / name).chmod(0o750)
    out = sh.model("init").stdout
    assert "your existing pre-commit hook still runs first" in out
    for name, text in originals.items():
        assert (hooks / f"{name}.pre-git-model").read_text() == text
        assert b"git-model hook shim" in (hooks / name).read_bytes()

    sh.write("model.bin", b"weights v1")
    sh.model("add", "model.bin")
    sh.git("commit", "-q", "-m", "one")
    assert "pre-commit" in log.read_text()
    assert "model.bin" in sh.git("show", "HEAD:.gitmodel/manifest.toml").stdout

    # a failing chained pre-commit hook still stops the commit
    sh.write("BLOCK", "")
    sh.write("README.md", "x")
    sh.git("add", "README.md")
    assert sh.git("commit", "-q", "-m", "blocked", check=False).returncode != 0
    (sh.cwd / "BLOCK").unlink()

    # hooks that read stdin both get it
    old = sh.git("rev-parse", "HEAD").stdout.strip()
    sh.git("commit", "-q", "--amend", "-m", "two")
    new = sh.git("rev-parse", "HEAD").stdout.strip()
    assert f"post-rewrite amend {old} {new}" in log.read_text()
    sh.git("checkout", "-q", "-b", "other")
    assert f"post-checkout {new} {new} 1" in log.read_text()

    out = sh.model("uninstall").stdout
    assert "restored your earlier hooks" in out
    for name, text in originals.items():
        assert (hooks / name).read_text() == text
        assert stat.S_IMODE((hooks / name).stat().st_mode) == 0o750
        assert not (hooks / f"{name}.pre-git-model").exists()
    for name in set(HOOKS) - set(originals):
        assert not (hooks / name).exists()
    assert sh.git("config", "merge.git-model.driver", check=False).returncode != 0
    assert sh.git("config", "notes.rewriteRef", check=False).returncode != 0


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_core_hooks_path_is_honoured(sh: Shell, tmp_path: Path, where: str) -> None:
    target = ".githooks" if where == "relative" else str(tmp_path / "shared-hooks")
    sh.git("config", "core.hooksPath", target)
    sh.model("init")
    directory = sh.cwd / target if where == "relative" else Path(target)
    assert all((directory / name).is_file() for name in HOOKS)
    assert not (sh.cwd / ".git/hooks/pre-commit").exists()
    sh.write("model.bin", b"v1")
    sh.model("add", "model.bin")
    sh.git("commit", "-q", "-m", "one")
    sh.write("model.bin", b"v2")
    sh.write("README.md", "readme")
    sh.git("add", "README.md")
    sh.git("commit", "-q", "-m", "two")  # the hook from core.hooksPath recorded v2
    assert sh.model("status", "--json").stdout.count('"unchanged"') == 1
    sh.git("checkout", "-q", "HEAD~1")
    assert sh.read("model.bin") == b"v1"


def test_without_git_model_installed_only_the_guarding_hooks_stop_git(repo: Shell) -> None:
    git_dir = str(Path(shutil.which("git") or "/usr/bin/git").parent)
    env = {"PATH": os.pathsep.join([git_dir, "/usr/bin", "/bin"]), "PYTHONPATH": ""}
    if shutil.which("git-model", path=env["PATH"]):
        pytest.skip("git-model is installed system-wide")
    repo.write("README.md", "changed")
    out = repo.git("commit", "-q", "-am", "x", env=env, check=False)
    assert out.returncode == 1
    assert "pipx install ./git-model" in out.stderr and "--no-verify" in out.stderr
    out = repo.git("commit", "-q", "--no-verify", "-am", "x", env=env)
    assert "git-model is not installed" in out.stderr  # from post-commit: a warning only
    out = repo.git("checkout", "-q", "-b", "elsewhere", "HEAD~1", env=env)
    assert out.returncode == 0 and "git model checkout" in out.stderr


def test_hook_imports_only_the_standard_library_when_nothing_changed(repo: Shell) -> None:
    repo.write("model.bin", b"weights")
    repo.model("add", "model.bin")
    repo.git("commit", "-q", "-m", "one")
    heavy = {"click", "tomli_w", "tqdm", "fsspec", "dulwich", "git", "yaml", "numpy"}

    def imported(*args: str) -> set[str]:
        out = repo.git(*args, env={"PYTHONPROFILEIMPORTTIME": "1"})
        names = set()
        for line in out.stderr.splitlines():
            if line.startswith("import time:") and "|" in line:
                names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
        assert "git_model" in names  # the hooks did run in a profiled interpreter
        return names

    repo.write("README.md", "no artifact changed")
    assert not imported("commit", "-q", "-am", "code only") & heavy
    repo.write("model.bin", b"new weights")
    repo.write("README.md", "artifact changed")
    changed = imported("commit", "-q", "-am", "weights")
    assert "tomli_w" in changed  # a new manifest was written
    assert not changed & (heavy - {"tomli_w"})
    assert not imported("checkout", "-q", "HEAD~1") & (heavy - {"tomli_w"})
