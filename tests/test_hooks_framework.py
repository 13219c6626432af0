"""git-model's hooks run by the pre-commit framework (from PyPI), with a local repo config."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import Shell

STAGES = ("pre-commit", "post-commit", "post-checkout", "post-merge", "post-rewrite", "pre-push")

CONFIG = "repos:\n  - repo: local\n    hooks:\n" + "".join(
    f"      - id: git-model-{stage}\n"
    f"        name: git-model {stage}\n"
    f"        entry: git-model hook {stage}\n"
    "        language: system\n"
    "        pass_filenames: false\n"
    "        always_run: true\n"
    f"        stages: [{stage}]\n"
    for stage in STAGES
)


def test_the_pre_commit_framework_runs_the_hooks(sh: Shell) -> None:
    if shutil.which("pre-commit") is None:
        pytest.skip("the pre-commit framework is not installed (pip install pre-commit)")
    sh.model("init", "--no-hooks")
    sh.write(".pre-commit-config.yaml", CONFIG)
    sh.run("pre-commit", "install", *(f"--hook-type={s}" for s in STAGES))
    sh.write("model.bin", b"v1")
    sh.model("add", "model.bin", "--model", "m")
    sh.git("add", ".pre-commit-config.yaml")
    sh.git("commit", "-q", "-m", "v1")
    sh.write("model.bin", b"v2 weights")
    sh.write("train.py", "print('train')\n")
    sh.git("add", "train.py")
    sh.git("commit", "-q", "-m", "v2")  # the framework's pre-commit records the new bytes
    manifest = sh.git("show", "HEAD:.gitmodel/manifest.toml").stdout
    assert "size = 10" in manifest  # len(b"v2 weights")
    note = sh.git("notes", "--ref=refs/notes/model", "show", "HEAD").stdout
    assert json.loads(note.splitlines()[0])["type"] == "versions"  # post-commit through it
    sh.git("checkout", "-q", "HEAD~1")  # the framework's post-checkout restores the bytes
    assert sh.read("model.bin") == b"v1"
    sh.git("checkout", "-q", "main")
    assert sh.read("model.bin") == b"v2 weights"
