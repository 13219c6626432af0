"""A new user's first hour: what they type, and what they must see (issue 16).

Real git, the installed `git-model`, hooks firing; each test reads like the session it stands for.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BIN, Shell

ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_keeps_each_commands_lines_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hook's message on stderr is shown with its git command, not after the next one."""
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    narrator = demo.Narrator(tmp_path, dict(os.environ))
    narrator.run("echo 'git-model: recorded model.npz' >&2; echo 'abc1234 train v1'; echo end >&2")
    lines = [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[-3:] == ["git-model: recorded model.npz", "abc1234 train v1", "end"]


def manifest_oid(sh: Shell, rev: str, path: str) -> str:
    import tomllib

    text = sh.git("show", f"{rev}:.gitmodel/manifest.toml").stdout
    return str(tomllib.loads(text)["artifacts"][path]["oid"])


@pytest.fixture
def trained(repo: Shell) -> Shell:
    repo.write("model.safetensors", b"weights v1")
    repo.model("add", "model.safetensors")
    repo.git("commit", "-q", "-m", "v1")
    return repo


def test_a_commit_of_only_artifacts_says_one_true_sentence(trained: Shell) -> None:
    sh = trained
    sh.write("model.safetensors", b"weights v2")
    status = sh.model("status")
    assert status.stdout.splitlines()[-1] == (
        "record the change: git model add model.safetensors && git commit"
    )

    first = sh.git("commit", "-m", "v2", check=False)
    assert first.returncode == 1
    assert first.stdout == ""  # not git's 'nothing to commit, working tree clean'
    assert first.stderr.splitlines() == [
        "git-model: model.safetensors changed and its new record is staged in "
        ".gitmodel/manifest.toml, but git had found nothing else to commit before this hook "
        "ran: run the same git commit again to commit it"
    ]
    assert sh.git("status", "--short").stdout == "M  .gitmodel/manifest.toml\n"  # visible
    sh.git("commit", "-q", "-m", "v2")
    assert len(sh.model("log").stdout.splitlines()) == 2

    # commit -a: git drops the index it staged into; the work tree's manifest keeps the record
    sh.write("model.safetensors", b"weights v3")
    first = sh.git("commit", "-q", "-a", "-m", "v3", check=False)
    assert first.returncode == 1 and first.stdout == ""
    assert "its new record is written to .gitmodel/manifest.toml" in first.stderr
    sh.git("commit", "-q", "-a", "-m", "v3")
    assert manifest_oid(sh, "HEAD", "model.safetensors") == sha(b"weights v3")

    # the command status gives records it in one go
    sh.write("model.safetensors", b"weights v4")
    command = sh.model("status").stdout.splitlines()[-1].removeprefix("record the change: ")
    sh.run("sh", "-c", command, env={"GIT_EDITOR": "echo v4 >"})
    assert manifest_oid(sh, "HEAD", "model.safetensors") == sha(b"weights v4")
    assert sh.git("log", "-1", "--format=%s").stdout.strip() == "v4"


@pytest.mark.parametrize("option", ["--amend", "--allow-empty", "--am"])
def test_commits_git_would_make_are_never_stopped(trained: Shell, option: str) -> None:
    sh = trained
    sh.write("model.safetensors", b"weights v2")
    out = sh.git("commit", "-q", option, "-m", "v2")
    assert "recorded model.safetensors" in out.stderr
    assert "run the same" not in out.stderr
    assert manifest_oid(sh, "HEAD", "model.safetensors") == sha(b"weights v2")


def test_a_merge_that_changes_only_artifacts_is_committed(trained: Shell) -> None:
    sh = trained
    sh.git("checkout", "-q", "-b", "side")
    sh.write("notes.txt", "side\n")
    sh.git("add", "notes.txt")
    sh.git("commit", "-q", "-m", "side")
    sh.git("checkout", "-q", "main")
    sh.git("merge", "-q", "-s", "ours", "--no-commit", "side")
    sh.write("model.safetensors", b"weights v2")
    sh.git("commit", "-q", "-m", "merge side")
    assert len(sh.git("log", "-1", "--format=%P").stdout.split()) == 2
    assert manifest_oid(sh, "HEAD", "model.safetensors") == sha(b"weights v2")


def sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_add_without_a_model_makes_the_repositorys_default_model(repo: Shell) -> None:
    """The promise: every commit links to a model version, with no --model to learn first."""
    repo.write("model.bin", b"\x80\x04weights")
    repo.write("data/train/a.csv", "x\n1\n")
    out = repo.model("add", "model.bin", "data/train")
    assert out.stdout.splitlines()[:3] == [
        "created model work, this repository's default model (rename it: git model rename work NEW)",
        "added model.bin to model work as weights",
        "added data/train to model work as data",
    ]
    config = repo.read(".gitmodel/config.toml").decode()
    assert "default_model = \"work\"  # the model 'git model add' fills without --model" in config
    assert "# git-model team settings" in config  # the rest of the file as it was
    repo.git("commit", "-q", "-m", "v1")
    (line,) = repo.model("log").stdout.splitlines()
    assert " work " in line

    # later adds join it; a file whose kind cannot be told is asked about in one line
    repo.write("notes.txt", "what is this\n")
    bad = repo.model("add", "notes.txt", check=False)
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "error: say what notes.txt is: git model add notes.txt --kind weights (or data, params, code)"
    ]
    repo.write("params.yaml", "lr: 0.1\n")
    repo.model("add", "params.yaml", "--kind", "params")
    repo.write("head.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{}              ")
    assert (
        "added head.safetensors to model work as weights"
        in repo.model("add", "head.safetensors").stdout
    )
    repo.git("commit", "-q", "-m", "v2")
    show = repo.model("show", "--json").stdout
    assert '"params.yaml"' in show and '"head.safetensors"' in show

    # renamed: the default follows, and the next add joins it
    assert "still the repository's default model" in repo.model("rename", "work", "digits").stdout
    assert 'default_model = "digits"' in repo.read(".gitmodel/config.toml").decode()
    repo.write("extra.pt", b"\x80\x02x")
    assert "to model digits as weights" in repo.model("add", "extra.pt").stdout
    repo.git("commit", "-q", "-m", "v3")
    assert len(repo.model("log", "digits").stdout.splitlines()) == 1  # from the rename on


def test_a_repository_from_before_keeps_what_it_recorded(repo: Shell) -> None:
    """Artifacts recorded in no model stay so (no silent regrouping) until added again."""
    manifest = repo.cwd / ".gitmodel" / "manifest.toml"
    repo.write("old.bin", b"old weights")
    repo.model("add", "old.bin")
    # what an older git-model wrote: the artifact, in no model, and no default model
    text = manifest.read_text()
    manifest.write_text(text[: text.index("[models")].rstrip() + "\n")
    repo.write(".gitmodel/config.toml", "")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "old")
    repo.write("new.bin", b"new weights")
    repo.model("add", "new.bin")
    repo.git("commit", "-q", "-m", "new")
    show = repo.model("show", "--json").stdout
    assert '"new.bin"' in show and '"old.bin"' not in show.split('"models"')[1]
    out = repo.model("add", "old.bin")
    assert "unchanged old.bin (now in model work as weights)" in out.stdout


def test_mv_moves_an_artifact_with_its_model_and_kind(repo: Shell) -> None:
    repo.write("model.bin", b"weights")
    for i in range(3):
        repo.write(f"data/f{i}.csv", f"{i}\n")
    repo.model("add", "model.bin", "data")
    repo.git("commit", "-q", "-m", "v1")

    out = repo.model("mv", "model.bin", "models/")
    assert out.stdout.startswith("moved model.bin to models/model.bin")
    repo.model("mv", "data", "datasets/train")
    assert not (repo.cwd / "model.bin").exists() and repo.read("models/model.bin") == b"weights"
    assert sorted(p.name for p in (repo.cwd / "datasets/train").iterdir()) == [
        "f0.csv",
        "f1.csv",
        "f2.csv",
    ]
    status = repo.git("status", "--porcelain").stdout.splitlines()
    assert sorted(status) == [
        "M  .gitignore",
        "M  .gitmodel/manifest.toml",
        "R  .gitmodel/dirs/data.tsv -> .gitmodel/dirs/datasets/train.tsv",
    ]
    gitignore = repo.read(".gitignore").decode().splitlines()
    assert "/models/model.bin" in gitignore and "/datasets/train" in gitignore
    assert "/model.bin" not in gitignore and "/data" not in gitignore
    repo.git("commit", "-q", "-m", "moved")
    assert repo.model("status").stdout.split() == [
        "unchanged",
        "datasets/train",
        "unchanged",
        "models/model.bin",
    ]
    (model,) = json.loads(repo.model("show", "--json").stdout)["models"]
    kinds = {c["path"]: c["kind"] for c in model["components"]}
    assert kinds == {"models/model.bin": "weights", "datasets/train": "data"}

    # a params file (git keeps it) moves with git mv and stays a component
    repo.write("params.yaml", "lr: 1\n")
    repo.model("add", "params.yaml", "--kind", "params")
    repo.git("commit", "-q", "-m", "params")
    repo.model("mv", "params.yaml", "conf/params.yaml")
    repo.git("commit", "-q", "-m", "conf")
    (model,) = json.loads(repo.model("show", "--json").stdout)["models"]
    assert {c["path"]: c["kind"] for c in model["components"]}["conf/params.yaml"] == "params"
    repo.git("checkout", "-q", "HEAD~2")

    # back in time and forth: the hooks restore each commit's paths
    repo.git("checkout", "-q", "HEAD~1")
    assert repo.read("model.bin") == b"weights" and (repo.cwd / "data/f0.csv").exists()
    assert not (repo.cwd / "models/model.bin").exists()
    repo.git("checkout", "-q", "main")
    assert repo.read("models/model.bin") == b"weights"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope.bin", "x.bin"), "nope.bin is not tracked by git-model"),
        (("a.bin", "b.bin"), "b.bin is a tracked artifact; 'git model rm b.bin' first"),
        (("a.bin", "README.md"), "README.md already exists"),
        (("a.bin", ".gitmodel/a.bin"), "inside git-model's own metadata"),
        (("gone.bin", "x/gone.bin"), "gone.bin is not in the work tree; put it back first"),
    ],
)
def test_mv_refuses_in_one_line(repo: Shell, args: tuple[str, str], message: str) -> None:
    repo.write("a.bin", b"a")
    repo.write("b.bin", b"b")
    repo.write("gone.bin", b"g")
    repo.model("add", "a.bin", "b.bin", "gone.bin")
    (repo.cwd / "gone.bin").unlink()
    out = repo.model("mv", *args, check=False)
    assert out.returncode != 0 and len(out.stderr.splitlines()) == 1 and message in out.stderr
    assert repo.read("a.bin") == b"a" and repo.read("b.bin") == b"b"
    assert not (repo.cwd / "x").exists()  # nothing half-done


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_pip_install_from_a_git_url_gives_git_model_and_its_manual(
    sh: Shell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's install from a git URL (a file:// one here: no network), as a wheel:
    `git model` works from the installed bin directory and `git model --help` finds the page."""
    source = tmp_path / "git-model-src"
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for rel in filter(None, files.split("\0")):
        if (ROOT / rel).is_file():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, source / rel)
    src = sh.at(source)
    src.git("init", "-q")
    src.git("add", "-A")
    src.git("commit", "-q", "-m", "git-model")
    prefix = tmp_path / "prefix"
    sh.run(
        sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--ignore-installed",
        "--no-index", "--prefix", str(prefix), f"git-model @ git+file://{source}",
    )  # fmt: skip
    assert (prefix / "share/man/man1/git-model.1").is_file()
    (site,) = prefix.glob("lib/python*/site-packages")
    rest = [d for d in os.environ["PATH"].split(os.pathsep) if d != BIN]
    env = {
        "PATH": os.pathsep.join([str(prefix / "bin"), *rest]),
        "PYTHONPATH": str(site),
        "MANPAGER": "cat",
        "MANWIDTH": "80",
    }
    monkeypatch.delenv("MANPATH", raising=False)
    out = sh.run(sys.executable, "-c", "import git_model; print(git_model.__file__)", env=env)
    assert out.stdout.startswith(str(site))
    init = sh.model("init", env=env)
    assert "linked the manual page" not in init.stdout  # the install put it there
    assert "version machine-learning models" in sh.git("model", "--help", env=env).stdout


def test_mv_of_a_file_changed_before_the_move_records_the_new_bytes(repo: Shell) -> None:
    """mv carries the stat cache's record only while it still describes the file."""
    repo.write("model.bin", b"weights v1")
    repo.model("add", "model.bin")
    repo.git("commit", "-q", "-m", "v1")
    repo.write("model.bin", b"weights v2")  # same size, not recorded yet
    repo.model("mv", "model.bin", "final.bin")
    repo.git("commit", "-q", "-m", "moved")
    assert manifest_oid(repo, "HEAD", "final.bin") == sha(b"weights v2")
    repo.model("mv", "final.bin", "again.bin")  # unchanged: its record moves with it
    repo.git("commit", "-q", "-m", "again")
    assert manifest_oid(repo, "HEAD", "again.bin") == sha(b"weights v2")
    assert repo.model("status").stdout.split() == ["unchanged", "again.bin"]


def test_a_repository_with_one_named_model_makes_it_the_default(repo: Shell) -> None:
    repo.write("model.bin", b"w")
    repo.model("add", "model.bin", "--model", "digits")
    repo.git("commit", "-q", "-m", "v1")
    repo.write("data/a.csv", "1\n")
    out = repo.model("add", "data")
    assert "created model" not in out.stdout
    assert "added data to model digits as data" in out.stdout
    assert 'default_model = "digits"' in repo.read(".gitmodel/config.toml").decode()


def test_new_output_quotes_paths_as_git_does(repo: Shell) -> None:
    name = "e\x1b]0;pwn\x07.bin"
    repo.write(name, b"w")
    out = repo.model("add", name)
    assert '"e\\033]0;pwn\\a.bin"' in out.stdout and "\x1b" not in out.stdout
    out = repo.model("mv", name, "clean.bin")
    assert 'moved "e\\033]0;pwn\\a.bin" to clean.bin' in out.stdout
