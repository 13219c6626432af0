"""The git-model demo: version a small real model end to end, narrated like a tutorial.

Trains a scikit-learn classifier on the digits data set that ships with scikit-learn, twice
with different hyperparameters; versions weights, data, hyperparameters and preprocessing
code with git-model; records accuracy; shows `git model diff` and `git model log`; rolls back
with plain `git checkout` and checks the restored bytes; shares everything with a teammate
through a bare git remote plus a directory object store. Everything happens in a temp folder.

Run it with `scripts/demo` (which sets up the environment first), or `python scripts/demo.py
[--keep]` in an environment that has git-model[demo] installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

PROJECT_FILES = Path(__file__).resolve().parent / "demo_project"
BOLD, DIM, RESET = (
    ("\x1b[1m", "\x1b[2m", "\x1b[0m")
    if sys.stdout.isatty() and "NO_COLOR" not in os.environ
    else ("", "", "")
)


class Narrator:
    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env
        self.step = 0

    def chapter(self, title: str, text: str) -> None:
        self.step += 1
        print(f"\n{BOLD}{self.step}. {title}{RESET}")
        print(textwrap.fill(text, 92, initial_indent="   ", subsequent_indent="   "))

    def run(self, command: str, *, cwd: Path | None = None, show: bool = True) -> str:
        where = cwd or self.cwd
        if show:
            print(f"\n   {BOLD}$ {command}{RESET}")
        # one pipe for stdout and stderr: each line arrives where the command wrote it (a
        # hook's message on stderr stays with its git command, before the next one's output)
        proc = subprocess.run(
            command,
            shell=True,
            cwd=where,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output = proc.stdout.rstrip()
        if show and output:
            print(textwrap.indent(output, "     "), flush=True)
        if proc.returncode != 0:
            raise SystemExit(f"demo failed: `{command}` exited {proc.returncode}\n{output}")
        return proc.stdout


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def set_param(path: Path, key: str, value: str) -> None:
    lines = path.read_text().splitlines()
    out = [f"  {key}: {value}" if line.strip().startswith(f"{key}:") else line for line in lines]
    path.write_text("\n".join(out) + "\n")


def demo(base: Path) -> None:
    project, store, origin, teammate = (
        base / n for n in ("project", "store", "origin.git", "teammate")
    )
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ada Demo",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada Demo",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
        "GIT_CONFIG_GLOBAL": str(base / "gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "PYTHONPATH": str(project),
        "NO_COLOR": "1",
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    }
    (base / "gitconfig").write_text(
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
    )
    project.mkdir()
    for f in PROJECT_FILES.iterdir():
        if f.is_file():
            shutil.copy(f, project / f.name)
    sh = Narrator(project, env)
    py = "python"  # the environment's own: its bin folder is first on PATH

    sh.chapter(
        "A project that trains a model",
        "A git repository with preprocessing code, a training script, an evaluation script and a YAML file of hyperparameters. `git model init` sets git-model up: a manifest under .gitmodel/, a local cache inside .git/, and git hooks that do the work on every commit.",
    )
    sh.run("git init -q && git model init")
    sh.run(f"{py} prepare.py && {py} train.py")

    sh.chapter(
        "Declare the model",
        "Weights and data are artifacts: their bytes go to the cache, git gets a small manifest. Hyperparameters and code stay in git but are part of the model's version hash.",
    )
    sh.run("git model add model.npz --model digits --kind weights")
    sh.run("git model add data/train data/test --model digits --kind data")
    sh.run("git model add params.yaml --model digits --kind params")
    sh.run("git model add prepare.py train.py --model digits --kind code")
    sh.run(
        "git add -A && git commit -q -m 'digits: logistic regression, C=0.01' && git log --oneline"
    )
    sh.run(f"{py} evaluate.py")
    v1_weights = sha256(project / "model.npz")
    sh.run("git model show")

    sh.chapter(
        "Train again with another hyperparameter",
        "Change C in params.yaml and retrain. The commit hook hashes the new weights (only what changed), stores them, and records a new model version; evaluation attaches the new accuracy to the new commit.",
    )
    set_param(project / "params.yaml", "C", "1.0")
    sh.run(f"{py} train.py")
    sh.run("git model status")
    sh.run("git commit -q -am 'digits: C=1.0' && git log --oneline")
    sh.run(f"{py} evaluate.py")
    v2_weights = sha256(project / "model.npz")

    sh.chapter(
        "What changed between the two versions?",
        "git model diff names the hyperparameter that changed, the weights, and how the metrics moved; git model log lists the versions of the model through history.",
    )
    sh.run("git model diff HEAD~1 HEAD")
    sh.run("git model log digits")

    sh.chapter(
        "Roll back with plain git",
        "Checking out the first commit puts its weights back, byte for byte: the post-checkout hook restores them from the cache.",
    )
    sh.run("git checkout -q HEAD~1")
    restored = sha256(project / "model.npz")
    print(f"\n     model.npz sha256 {restored[:16]}… (v1 was {v1_weights[:16]}…)")
    if restored != v1_weights:
        raise SystemExit("demo failed: the rolled-back weights differ from v1")
    sh.run("git checkout -q main")
    if sha256(project / "model.npz") != v2_weights:
        raise SystemExit("demo failed: switching back did not restore v2's weights")
    print("     back on main: model.npz holds v2's weights again")

    sh.chapter(
        "Which commit broke it?",
        "A smaller C goes in, trained through `git model run` (the metrics evaluate.py records wait for the commit of these weights), then an unrelated commit. `git model bisect` finds the first commit on the branch where accuracy fell below 0.9, from the notes alone, and shows what changed in it. With --run 'python evaluate.py' it would evaluate commits that lack the metric in temporary worktrees, as git bisect does.",
    )
    set_param(project / "params.yaml", "C", "0.001")
    sh.run(f"git model run -- sh -c '{py} train.py && {py} evaluate.py'")
    sh.run("git commit -q -am 'digits: C=0.001, more regularisation'")
    (project / "NOTES.md").write_text("Experiments with the digits classifier.\n")
    sh.run("git add NOTES.md && git commit -q -m 'notes on experiments'")
    sh.run("git model bisect accuracy --min 0.9")

    sh.chapter(
        "Already trained",
        "Put C back to 1.0. Those exact inputs (data, params, code) were trained two commits ago, so `git model run` does not train again: it names the commit and its accuracy and restores its weights from the cache, byte for byte.",
    )
    set_param(project / "params.yaml", "C", "1.0")
    sh.run(f"git model run -- {py} train.py")
    if sha256(project / "model.npz") != v2_weights:
        raise SystemExit("demo failed: git model run did not restore the C=1.0 weights")
    print("\n     model.npz holds the C=1.0 weights again, and train.py did not run")
    sh.run("git commit -q -am 'digits: back to C=1.0'")

    sh.chapter(
        "Share it with a teammate",
        "A bare git remote carries the code, manifest and notes; a directory object store carries the bytes (S3, SSH and others work the same way). git push uploads the objects the pushed commits need before the refs move.",
    )
    sh.run(
        f"git init -q --bare {shlex.quote(str(origin))} && git remote add origin {shlex.quote(str(origin))}"
    )
    sh.run(
        f"git model remote add store {shlex.quote(str(store))} --default && git commit -q -m 'share the model store' .gitmodel/config.toml"
    )
    sh.run("git push origin main")
    sh.run(f"git clone -q {shlex.quote(str(origin))} {shlex.quote(str(teammate))}", cwd=base)
    sh.run("git model init", cwd=teammate)
    if sha256(teammate / "model.npz") != v2_weights:
        raise SystemExit("demo failed: the teammate's clone does not hold v2's weights")
    sh.run("git model log digits", cwd=teammate)
    print("\n   The teammate has the exact weights, data, hyperparameters and metrics. Done.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", action="store_true", help="keep the demo folder and print its path"
    )
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="git-model-demo-"))
    start = time.monotonic()
    try:
        demo(base)
    finally:
        if args.keep:
            print(f"\n(the demo folder is kept at {base})")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print(f"\n(demo finished in {time.monotonic() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
