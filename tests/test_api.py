"""The Python API, as training and serving code would use it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from conftest import Shell


def run_python(sh: Shell, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return sh.run(sys.executable, "-c", textwrap.dedent(code), env=env)


def test_open_reads_verified_bytes_at_a_revision_and_a_registry_stage(repo: Shell) -> None:
    repo.write("model.bin", b"v1 weights")
    repo.write("data/a.csv", "1,2\n")
    repo.model("add", "model.bin", "--model", "m")
    repo.model("add", "data", "--model", "m", "--kind", "data")
    repo.git("commit", "-q", "-m", "v1")
    repo.model("tag", "m", "--version", "v1.0.0")
    repo.model("promote", "m", "prod")
    repo.write("model.bin", b"v2 weights")
    repo.model("add", "model.bin")
    repo.git("commit", "-q", "-m", "v2")
    code = """
        import git_model
        for rev in ("HEAD", "HEAD~1", "m@prod", "m@v1.0.0", "m#prod"):
            with git_model.open("model.bin", rev=rev) as f:
                print(rev, f.read().decode())
        with git_model.open("data/a.csv", rev="m@prod") as f:
            print("data", f.read().decode().strip())
    """
    expected = [
        "HEAD v2 weights",
        "HEAD~1 v1 weights",
        "m@prod v1 weights",
        "m@v1.0.0 v1 weights",
        "m#prod v1 weights",
        "data 1,2",
    ]
    assert run_python(repo, code).stdout.splitlines() == expected
    # a serving image with no git binary: dulwich reads the manifest and the tags
    assert run_python(repo, code, GIT_MODEL_NO_GIT="1").stdout.splitlines() == expected


def test_open_refuses_a_corrupt_object_and_unknown_paths(repo: Shell) -> None:
    repo.write("model.bin", b"weights")
    repo.model("add", "model.bin")
    repo.git("commit", "-q", "-m", "v1")
    for obj in (repo.cwd / ".git/model/objects").rglob("*"):
        if obj.is_file():
            obj.chmod(0o644)
            obj.write_bytes(b"tampered")
    code = """
        import git_model
        from git_model.errors import GitModelError
        for path in ("model.bin", "nope.bin", "../x"):
            try:
                git_model.open(path).read()
            except GitModelError as e:
                print(type(e).__name__, str(e).split(";")[0])
    """
    out = run_python(repo, code).stdout.splitlines()
    assert out[0].startswith("CorruptObject")
    assert out[1].startswith("GitModelError nope.bin is not a tracked artifact")
    assert out[2].startswith("UnsafePath")
    assert not any(p.is_file() for p in (repo.cwd / ".git/model/objects").rglob("*"))
    assert os.listdir(repo.cwd / ".git/model/quarantine")
