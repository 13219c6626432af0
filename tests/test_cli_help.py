"""Help as a git user looks for it: `git model --help` (a man page), `-h`, and examples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Shell

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


def test_git_model_dash_dash_help_opens_the_man_page(repo: Shell) -> None:
    if subprocess.run(["sh", "-c", "command -v man"], capture_output=True).returncode:
        pytest.skip("man is not installed")
    out = repo.git(
        "model",
        "--help",
        env={"MANPATH": f"{ROOT / 'man'}:", "MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "80"},
    )
    assert "version machine-learning models" in out.stdout
    assert "git model add" in out.stdout


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
