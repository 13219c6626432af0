"""Help as a git user looks for it: `git model --help` (a man page), `-h`, and examples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BIN, Shell

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = subprocess.run(
    [sys.executable, "-c", "from git_model.cli.app import COMMANDS; print(*sorted(COMMANDS))"],
    capture_output=True,
    text=True,
    check=True,
).stdout.split()


def test_man_page_is_current() -> None:
    out = subprocess.run(
        [sys.executable, "scripts/gen-man.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr


MAN_ENV = {"MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "80"}
needs_man = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v man"], capture_output=True).returncode != 0,
    reason="man is not installed",
)


@needs_man
def test_git_model_dash_dash_help_opens_the_man_page(
    repo: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a user runs it: through git (`git help model` -> `man git-model`), with MANPATH
    unset, so man finds the page from PATH as it does after any install."""
    monkeypatch.delenv("MANPATH", raising=False)
    out = repo.git("model", "--help", env=MAN_ENV)
    assert "version machine-learning models" in out.stdout
    assert "git model add" in out.stdout


def test_an_editable_install_puts_the_page_where_man_looks() -> None:
    """`pip install -e .` (how this test environment is installed) installs the page into
    <prefix>/share/man/man1 like a wheel does (setup.py works around setuptools)."""
    page = Path(sys.prefix, "share", "man", "man1", "git-model.1")
    assert page.is_file() and not page.is_symlink()
    assert page.read_text().startswith(".TH GIT-MODEL 1")


@needs_man
def test_init_links_the_page_beside_a_bin_dir_that_links_the_script(
    sh: Shell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pipx's layout without the man pages it links since 1.3 (or a `git-model` linked into
    ~/.local/bin by hand): `git model init` links the packaged page where man looks."""
    monkeypatch.delenv("MANPATH", raising=False)
    local = tmp_path / "home" / ".local"
    (local / "bin").mkdir(parents=True)
    (local / "bin" / "git-model").symlink_to(Path(BIN) / "git-model")
    rest = [d for d in os.environ["PATH"].split(os.pathsep) if d != BIN]
    env = {**MAN_ENV, "PATH": os.pathsep.join([str(local / "bin"), *rest])}
    assert "No manual entry" in sh.git("model", "--help", env=env, check=False).stderr
    out = sh.model("init", env=env)
    page = local / "share" / "man" / "man1" / "git-model.1"
    assert f"linked the manual page where man finds it ('git model --help'): {page}" in out.stdout
    assert page.resolve() == ROOT / "git_model" / "man" / "man1" / "git-model.1"
    assert "version machine-learning models" in sh.git("model", "--help", env=env).stdout
    assert "linked the manual page" not in sh.model("init", env=env).stdout  # once


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(repo: Shell, name: str) -> None:
    out = repo.model(name, "-h")
    assert "Usage: git model" in out.stdout
    assert "Example" in out.stdout, f"'git model {name} -h' shows no example"


def test_usage_errors_exit_2_and_unknown_commands_say_what_exists(repo: Shell) -> None:
    out = repo.model("frobnicate", check=False)
    assert out.returncode == 2 and "No such command" in out.stderr
    out = repo.model("add", "--kind", "weird", "x", check=False)
    assert out.returncode == 2


def test_the_program_ends_with_exit_handlers_run_and_output_whole(
    repo: Shell, tmp_path: Path
) -> None:
    """`git-model` ends its process without the interpreter's teardown: what a normal exit
    would do that matters still happens."""
    site, marker = tmp_path / "site", tmp_path / "handler-ran"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import atexit, pathlib\n"
        f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
    )
    for i in range(300):
        repo.write(f"data/f{i:03d}", b"%d" % i)
    repo.model("add", "data")
    out = repo.model("status", "--json", env={"PYTHONPATH": str(site)})
    assert len(json.loads(out.stdout)["artifacts"]) == 1  # all of it, flushed
    assert marker.read_text() == "yes"
    assert repo.model("nosuch", check=False, env={"PYTHONPATH": str(site)}).returncode == 2
