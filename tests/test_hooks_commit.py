"""A training loop with plain git: every kind of commit records the artifacts it was made with."""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from conftest import Shell

MANIFEST = ".gitmodel/manifest.toml"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_at(sh: Shell, rev: str) -> dict[str, Any]:
    """The manifest in a commit (`:` for the index)."""
    spec = f":{MANIFEST}" if rev == ":" else f"{rev}:{MANIFEST}"
    return tomllib.loads(sh.git("show", spec).stdout)


def oid_at(sh: Shell, rev: str, path: str) -> str | None:
    art = manifest_at(sh, rev).get("artifacts", {}).get(path)
    return None if art is None else str(art["oid"])


def note(sh: Shell, rev: str) -> list[dict[str, Any]]:
    out = sh.git("notes", "--ref=refs/notes/model", "show", rev, check=False).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def versions_in_note(sh: Shell, rev: str) -> list[dict[str, str]]:
    return [r["models"] for r in note(sh, rev) if r["type"] == "versions"]


def status_clean(sh: Shell) -> bool:
    return sh.git("status", "--porcelain").stdout == ""


def setup_model(repo: Shell) -> None:
    repo.write("model.bin", b"weights v1")
    repo.write("params.yaml", "lr: 1\n")
    repo.model("add", "model.bin", "--model", "m")
    repo.model("add", "params.yaml", "--model", "m", "--kind", "params")
    repo.git("commit", "-q", "-m", "v1")


def test_commit_commit_a_and_artifact_only_commits(repo: Shell) -> None:
    setup_model(repo)
    m1 = manifest_at(repo, "HEAD")
    assert m1["artifacts"]["model.bin"]["oid"] == sha(b"weights v1")
    assert versions_in_note(repo, "HEAD") == [{"m": m1["models"]["m"]["version"]}]
    assert status_clean(repo)

    # retrain with new params: commit -a stages params.yaml, the hook records the weights
    repo.write("model.bin", b"weights v2")
    repo.write("params.yaml", "lr: 2\n")
    out = repo.git("commit", "-q", "-a", "-m", "v2")
    assert "recorded model.bin" in out.stderr
    m2 = manifest_at(repo, "HEAD")
    assert m2["artifacts"]["model.bin"]["oid"] == sha(b"weights v2")
    assert m2["models"]["m"]["version"] != m1["models"]["m"]["version"]
    assert versions_in_note(repo, "HEAD") == [{"m": m2["models"]["m"]["version"]}]
    assert status_clean(repo)

    # only the weights changed: git decides 'nothing to commit' before hooks run; the hook has
    # staged the change, so the same command works the second time
    repo.write("model.bin", b"weights v3")
    first = repo.git("commit", "-q", "-m", "v3", check=False)
    assert first.returncode == 1 and "run the same git commit again" in first.stderr
    repo.git("commit", "-q", "-m", "v3")
    assert oid_at(repo, "HEAD", "model.bin") == sha(b"weights v3")
    repo.write("model.bin", b"weights v4")
    assert repo.git("commit", "-q", "-a", "-m", "v4", check=False).returncode == 1
    repo.git("commit", "-q", "-a", "-m", "v4")
    assert oid_at(repo, "HEAD", "model.bin") == sha(b"weights v4")
    assert status_clean(repo)

    # nothing changed at all: the hook writes nothing and the note still comes
    repo.write("README.md", "docs")
    repo.git("commit", "-q", "-a", "-m", "docs")
    assert oid_at(repo, "HEAD", "model.bin") == sha(b"weights v4")
    assert repo.git("diff", "HEAD~1", "HEAD", "--name-only").stdout.split() == ["README.md"]
    assert versions_in_note(repo, "HEAD") == versions_in_note(repo, "HEAD~1")

    # params alone change the version (the manifest is rewritten although no artifact moved)
    before = manifest_at(repo, "HEAD")["models"]["m"]["version"]
    repo.write("params.yaml", "lr: 5\n")
    repo.git("commit", "-q", "-a", "-m", "params")
    after = manifest_at(repo, "HEAD")["models"]["m"]["version"]
    assert after != before and versions_in_note(repo, "HEAD") == [{"m": after}]
    assert status_clean(repo)


def test_partial_commit_keeps_the_real_index_in_line(repo: Shell) -> None:
    setup_model(repo)
    repo.write("model.bin", b"weights v2")
    repo.write("params.yaml", "lr: 2\n")
    repo.write("README.md", "not in this commit")
    repo.git("commit", "-q", "-m", "params only", "params.yaml")
    head = manifest_at(repo, "HEAD")
    assert head["artifacts"]["model.bin"]["oid"] == sha(b"weights v2")
    assert repo.git("show", "HEAD:README.md").stdout == "# project\n"
    # the real index agrees with HEAD: nothing staged, only README left out
    assert repo.git("diff", "--cached", "--name-only").stdout == ""
    assert repo.git("status", "--porcelain").stdout == " M README.md\n"
    assert versions_in_note(repo, "HEAD") == [{"m": head["models"]["m"]["version"]}]

    # a `git model add` left out of a partial commit stays staged, with fresh bytes
    repo.write("extra.bin", b"extra")
    repo.model("add", "extra.bin")
    repo.write("model.bin", b"weights v3")
    repo.write("params.yaml", "lr: 3\n")
    repo.git("commit", "-q", "-m", "params again", "params.yaml")
    assert oid_at(repo, "HEAD", "model.bin") == sha(b"weights v3")
    assert oid_at(repo, "HEAD", "extra.bin") is None
    assert oid_at(repo, ":", "extra.bin") == sha(b"extra")
    assert oid_at(repo, ":", "model.bin") == sha(b"weights v3")
    repo.git("commit", "-q", "-m", "extra")  # nothing reverts
    assert oid_at(repo, "HEAD", "model.bin") == sha(b"weights v3")
    assert oid_at(repo, "HEAD", "extra.bin") == sha(b"extra")
    assert repo.git("status", "--porcelain").stdout == " M README.md\n"


def test_amend_records_new_bytes_and_the_note_follows(repo: Shell) -> None:
    setup_model(repo)
    repo.write("model.bin", b"weights v2")
    repo.write("params.yaml", "lr: 2\n")
    repo.git("commit", "-q", "-a", "-m", "v2")
    metrics = '{"format":1,"metrics":{"acc":0.5},"model":"m","time":"2026-01-01T00:00:00Z","type":"metrics"}'
    repo.git("notes", "--ref=refs/notes/model", "append", "-m", metrics, "HEAD")
    old_version = manifest_at(repo, "HEAD")["models"]["m"]["version"]

    repo.write("model.bin", b"weights v2, fixed")
    repo.git("commit", "-q", "-a", "--amend", "-m", "v2 fixed")
    head = manifest_at(repo, "HEAD")
    assert head["artifacts"]["model.bin"]["oid"] == sha(b"weights v2, fixed")
    assert head["models"]["m"]["version"] != old_version
    records = note(repo, "HEAD")
    # one versions record, the current one; the metrics came along from the replaced commit
    assert [r["models"] for r in records if r["type"] == "versions"] == [
        {"m": head["models"]["m"]["version"]}
    ]
    assert [r["metrics"] for r in records if r["type"] == "metrics"] == [{"acc": 0.5}]
    lines = repo.git("notes", "--ref=refs/notes/model", "show", "HEAD").stdout.splitlines()
    assert lines == sorted(set(lines))
    assert status_clean(repo)


def test_blocks_missing_artifacts_and_big_files_for_git(repo: Shell) -> None:
    setup_model(repo)
    (repo.cwd / "model.bin").unlink()
    repo.write("README.md", "change")
    out = repo.git("commit", "-q", "-am", "x", check=False)
    assert out.returncode == 1
    assert "model.bin is missing" in out.stderr and "git model checkout" in out.stderr
    repo.model("checkout")
    assert repo.read("model.bin") == b"weights v1"

    repo.git("config", "model.maxGitFileSize", "1k")
    repo.write("data.csv", b"x" * 2048)
    repo.git("add", "data.csv")
    out = repo.git("commit", "-q", "-m", "big", check=False)
    assert out.returncode == 1
    assert "data.csv (2.0 KiB)" in out.stderr and "git model add data.csv" in out.stderr
    repo.model("add", "data.csv")
    repo.git("commit", "-q", "-am", "big, tracked by git-model")
    assert "data.csv" not in repo.git("ls-tree", "-r", "--name-only", "HEAD").stdout.split()
    assert oid_at(repo, "HEAD", "data.csv") == sha(b"x" * 2048)
    # a small file and git-model's own files pass
    repo.write("small.txt", "ok")
    repo.git("add", "small.txt")
    repo.git("commit", "-q", "-m", "small")


def test_commits_git_makes_itself_bring_their_bytes(repo: Shell) -> None:
    """cherry-pick and revert run no pre-commit: post-commit restores what they changed."""
    setup_model(repo)
    repo.git("switch", "-q", "-c", "side")
    repo.write("model.bin", b"weights side")
    repo.write("params.yaml", "lr: 9\n")
    repo.git("commit", "-q", "-am", "side")
    repo.git("switch", "-q", "main")
    assert repo.read("model.bin") == b"weights v1"
    repo.git("cherry-pick", "side")
    assert repo.read("model.bin") == b"weights side"
    assert oid_at(repo, "HEAD", "model.bin") == sha(b"weights side")
    assert versions_in_note(repo, "HEAD") == [
        {"m": manifest_at(repo, "HEAD")["models"]["m"]["version"]}
    ]
    repo.git("revert", "--no-edit", "HEAD")
    assert repo.read("model.bin") == b"weights v1"
    assert status_clean(repo)


def test_drift_after_reset_and_stash_is_shown_and_repaired(repo: Shell) -> None:
    setup_model(repo)
    repo.write("model.bin", b"weights v2")
    repo.write("params.yaml", "lr: 2\n")
    repo.git("commit", "-q", "-am", "v2")
    repo.git("reset", "-q", "--hard", "HEAD~1")  # no hook fires
    states = json.loads(repo.model("status", "--json").stdout)["artifacts"]
    assert [(a["path"], a["state"]) for a in states] == [("model.bin", "modified")]
    repo.model("checkout")
    assert repo.read("model.bin") == b"weights v1"

    repo.write("model.bin", b"work in progress")
    repo.model("add", "model.bin")
    repo.git("stash", "-q")  # the manifest goes back to HEAD's, the bytes stay
    states = json.loads(repo.model("status", "--json").stdout)["artifacts"]
    assert states[0]["state"] == "modified"
    repo.model("checkout")
    assert repo.read("model.bin") == b"weights v1"
    repo.git("stash", "pop", "-q")
    assert json.loads(repo.model("status", "--json").stdout)["artifacts"][0]["state"] == "modified"
    repo.model("checkout")
    assert repo.read("model.bin") == b"work in progress"
