"""Branches with plain git: checkout, switch, merge, pull, rebase and worktrees move the bytes."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from conftest import Shell
from test_hooks_commit import manifest_at, oid_at, sha, status_clean, versions_in_note


def commit_all(sh: Shell, message: str) -> None:
    """`git commit -a` with a run record beside it, as training runs often keep, so that git
    sees a change even when only artifacts changed (it decides 'nothing to commit' before the
    hook stages them: test_hooks_commit.py covers that case)."""
    sh.write(f"runs/{message.replace(' ', '-')}.txt", message)
    sh.git("add", "runs")
    sh.git("commit", "-q", "-a", "-m", message)


def listing_matches(sh: Shell, rev: str, path: str) -> bool:
    listing = sh.git("show", f"{rev}:.gitmodel/dirs/{path}.tsv").stdout.encode()
    return hashlib.sha256(listing).hexdigest() == oid_at(sh, rev, path)


def start(repo: Shell) -> None:
    repo.write("model.bin", b"weights v1")
    repo.write("other.bin", b"other v1")
    for i in range(1, 4):
        repo.write(f"data/f{i}.csv", f"{i}\n")
    repo.write("params.yaml", "lr: 1\n")
    repo.model("add", "model.bin", "--model", "m")
    repo.model("add", "data", "--model", "m", "--kind", "data")
    repo.model("add", "params.yaml", "--model", "m", "--kind", "params")
    repo.model("add", "other.bin", "--model", "other")
    repo.git("commit", "-q", "-m", "v1")


def test_checkout_and_switch_put_each_commits_bytes_back(repo: Shell, tmp_path: Path) -> None:
    start(repo)
    repo.git("switch", "-q", "-c", "exp")
    repo.write("model.bin", b"weights exp")
    repo.write("data/f4.csv", "4\n")
    repo.write("extra.bin", b"only on exp")
    repo.model("add", "extra.bin")
    commit_all(repo, "exp")

    repo.git("checkout", "-q", "main")
    assert repo.read("model.bin") == b"weights v1"
    assert not (repo.cwd / "data/f4.csv").exists()
    assert not (repo.cwd / "extra.bin").exists()
    assert repo.model("status", "--json").stdout.count('"unchanged"') == 3
    repo.git("switch", "-q", "exp")
    assert repo.read("model.bin") == b"weights exp"
    assert repo.read("extra.bin") == b"only on exp"
    assert repo.read("data/f4.csv") == b"4\n"
    repo.git("checkout", "-q", "HEAD~1")  # detached
    assert repo.read("model.bin") == b"weights v1"
    repo.git("switch", "-q", "exp")

    # uncommitted bytes are never lost: kept in the cache, and the message says how
    repo.write("model.bin", b"my experiment")
    out = repo.git("switch", "main")
    assert repo.read("model.bin") == b"weights v1"
    oid = re.search(r"git model cat ([0-9a-f]{64}) > model.bin", out.stderr)
    assert oid is not None and repo.model("cat", oid[1]).stdout == "my experiment"

    # a file checkout (flag 0) does not touch artifacts
    repo.write("model.bin", b"edited")
    repo.git("checkout", "--", "params.yaml")
    assert repo.read("model.bin") == b"edited"
    repo.model("checkout")

    # a missing object never fails the checkout: a warning says what to run
    exp_oid = sha(b"weights exp")
    (repo.cwd / ".git/model/objects" / exp_oid[:2] / exp_oid[2:]).unlink()
    out = repo.git("switch", "exp")
    assert out.returncode == 0
    assert "model.bin not restored" in out.stderr and "git model pull" in out.stderr

    # a new worktree gets its artifacts from the shared cache
    repo.git("worktree", "add", "-q", str(tmp_path / "wt"), "main")
    assert (tmp_path / "wt/model.bin").read_bytes() == b"weights v1"
    assert (tmp_path / "wt/data/f3.csv").read_bytes() == b"3\n"


def test_merge_of_branches_that_changed_different_things(repo: Shell) -> None:
    start(repo)
    repo.git("switch", "-q", "-c", "side")
    repo.write("model.bin", b"weights side")
    repo.write("data/f1.csv", "one, changed on side\n")
    commit_all(repo, "side")
    repo.git("switch", "-q", "main")
    repo.write("other.bin", b"other main")
    repo.write("data/f2.csv", "two, changed on main\n")
    repo.write("data/f9.csv", "nine, added on main\n")
    repo.write("params.yaml", "lr: 2\n")
    commit_all(repo, "main")

    out = repo.git("merge", "--no-edit", "side")
    assert "CONFLICT" not in out.stdout
    assert repo.read("model.bin") == b"weights side"
    assert repo.read("other.bin") == b"other main"
    assert repo.read("data/f1.csv") == b"one, changed on side\n"
    assert repo.read("data/f2.csv") == b"two, changed on main\n"
    assert repo.read("data/f9.csv") == b"nine, added on main\n"
    head = manifest_at(repo, "HEAD")
    assert head["artifacts"]["model.bin"]["oid"] == sha(b"weights side")
    assert head["artifacts"]["other.bin"]["oid"] == sha(b"other main")
    assert head["artifacts"]["data"]["files"] == 4
    assert listing_matches(repo, "HEAD", "data")
    assert status_clean(repo)
    assert repo.model("status", "--json").stdout.count('"unchanged"') == 3
    # both sides changed model m: the merge leaves its version to be computed, and the
    # merge commit's note has it
    assert "version" not in head["models"]["m"]
    (versions,) = versions_in_note(repo, "HEAD")
    assert set(versions) == {"m", "other"}
    repo.write("README.md", "after the merge")
    repo.git("commit", "-q", "-am", "next")
    assert manifest_at(repo, "HEAD")["models"]["m"]["version"] == versions["m"]


def take(text: str, side: str) -> str:
    """Resolve every conflict hunk of `text` by keeping one side."""
    pattern = re.compile(r"<<<<<<< ours\n(.*?)=======\n(.*?)>>>>>>> theirs\n", re.S)
    return pattern.sub(lambda m: m[1] if side == "ours" else m[2], text)


def test_conflicting_merge_names_the_artifact_and_the_resolution_sticks(repo: Shell) -> None:
    start(repo)
    repo.git("switch", "-q", "-c", "side")
    repo.write("model.bin", b"weights side")
    repo.write("other.bin", b"other side")
    commit_all(repo, "side")
    repo.git("switch", "-q", "main")
    repo.write("model.bin", b"weights main")
    commit_all(repo, "main")

    out = repo.git("merge", "--no-edit", "side", check=False)
    assert out.returncode == 1
    assert "conflict: artifact model.bin" in out.stderr
    assert sha(b"weights main") in out.stderr and sha(b"weights side") in out.stderr
    text = repo.read(".gitmodel/manifest.toml").decode()
    assert "<<<<<<< ours" in text and text.count("<<<<<<<") == 1  # only model.bin conflicts
    assert sha(b"other side") in text  # the rest merged
    assert repo.read("model.bin") == b"weights main"

    repo.write(".gitmodel/manifest.toml", take(text, "theirs"))
    repo.git("add", ".gitmodel")
    repo.git("commit", "-q", "--no-edit")
    assert oid_at(repo, "HEAD", "model.bin") == sha(b"weights side")
    assert oid_at(repo, "HEAD", "other.bin") == sha(b"other side")
    assert repo.read("model.bin") == b"weights side"  # post-commit brought the chosen bytes
    assert repo.read("other.bin") == b"other side"
    assert status_clean(repo)
    versions = versions_in_note(repo, "HEAD")
    models = manifest_at(repo, "HEAD")["models"]
    assert versions == [{"m": models["m"]["version"], "other": models["other"]["version"]}]


def test_directory_conflict_resolved_in_the_listing(repo: Shell) -> None:
    start(repo)
    repo.git("switch", "-q", "-c", "side")
    repo.write("data/f1.csv", "side\n")
    commit_all(repo, "side")
    repo.git("switch", "-q", "main")
    repo.write("data/f1.csv", "main\n")
    repo.write("data/f2.csv", "main two\n")
    commit_all(repo, "main")
    out = repo.git("merge", "--no-edit", "side", check=False)
    assert out.returncode == 1 and "data/f1.csv changed on both sides" in out.stderr
    listing = repo.read(".gitmodel/dirs/data.tsv").decode()
    repo.write(".gitmodel/dirs/data.tsv", take(listing, "theirs"))
    repo.write(
        ".gitmodel/manifest.toml", take(repo.read(".gitmodel/manifest.toml").decode(), "ours")
    )
    repo.git("add", ".gitmodel")
    repo.git("commit", "-q", "--no-edit")
    assert listing_matches(repo, "HEAD", "data")
    assert repo.read("data/f1.csv") == b"side\n"
    assert repo.read("data/f2.csv") == b"main two\n"
    assert status_clean(repo)


def test_pull_from_a_second_clone(repo: Shell, tmp_path: Path) -> None:
    start(repo)
    bare = tmp_path / "origin.git"
    repo.git("init", "-q", "--bare", str(bare))
    repo.git("remote", "add", "origin", str(bare))
    repo.git("push", "-q", "origin", "main")
    repo.git("push", "-q", "origin", "refs/notes/model")

    clone = repo.at(tmp_path)
    clone.git("clone", "-q", str(bare), "clone")
    clone = repo.at(tmp_path / "clone")
    # objects are shared by copying the cache (the remotes support uploads them for real)
    shutil.copytree(repo.cwd / ".git/model/objects", clone.cwd / ".git/model/objects")
    out = clone.model("init")
    assert "restored 5 artifact file(s)" in out.stdout
    assert clone.read("model.bin") == b"weights v1"

    repo.write("model.bin", b"weights v2")
    repo.write("data/f1.csv", "changed\n")
    commit_all(repo, "v2")
    repo.git("push", "-q", "origin", "main")

    out = clone.git("pull", "-q", "--no-rebase", "origin", "main")
    assert "not restored" in out.stderr and "git model pull" in out.stderr  # not in the cache
    assert clone.read("model.bin") == b"weights v1"
    shutil.copytree(
        repo.cwd / ".git/model/objects", clone.cwd / ".git/model/objects", dirs_exist_ok=True
    )
    clone.model("checkout")
    assert clone.read("model.bin") == b"weights v2"
    assert clone.read("data/f1.csv") == b"changed\n"

    # both clones commit; the pull merges the manifests and brings the other clone's bytes
    repo.write("other.bin", b"other from origin")
    commit_all(repo, "origin side")
    repo.git("push", "-q", "origin", "main")
    clone.write("model.bin", b"weights from clone")
    commit_all(clone, "clone side")
    shutil.copytree(
        repo.cwd / ".git/model/objects", clone.cwd / ".git/model/objects", dirs_exist_ok=True
    )
    clone.git("pull", "-q", "--no-rebase", "--no-edit", "origin", "main")
    assert clone.read("other.bin") == b"other from origin"
    assert clone.read("model.bin") == b"weights from clone"
    assert status_clean(clone)


def test_rebase_moves_notes_and_bytes(repo: Shell) -> None:
    start(repo)
    repo.git("switch", "-q", "-c", "topic")
    repo.write("model.bin", b"weights topic")
    repo.write("params.yaml", "lr: 3\n")
    commit_all(repo, "topic")
    metrics = '{"format":1,"metrics":{"acc":0.9},"model":"m","time":"2026-01-01T00:00:00Z","type":"metrics"}'
    repo.git("notes", "--ref=refs/notes/model", "append", "-m", metrics, "HEAD")
    repo.git("switch", "-q", "main")
    repo.write("other.bin", b"other main")
    commit_all(repo, "main moves on")
    repo.git("switch", "-q", "topic")

    repo.git("rebase", "-q", "main")
    assert repo.read("model.bin") == b"weights topic"
    assert repo.read("other.bin") == b"other main"
    head = manifest_at(repo, "HEAD")
    assert head["artifacts"]["other.bin"]["oid"] == sha(b"other main")
    records = [
        json.loads(line)
        for line in repo.git("notes", "--ref=refs/notes/model", "show", "HEAD").stdout.splitlines()
    ]
    assert [r["models"] for r in records if r["type"] == "versions"] == [
        {"m": head["models"]["m"]["version"], "other": head["models"]["other"]["version"]}
    ]
    assert [r["metrics"] for r in records if r["type"] == "metrics"] == [{"acc": 0.9}]
    assert status_clean(repo)


def test_checkout_of_a_commit_from_before_git_model(sh: Shell) -> None:
    sh.write("README.md", "before git-model\n")
    sh.git("add", "README.md")
    sh.git("commit", "-q", "-m", "old")
    sh.model("init")
    sh.write("model.bin", b"weights")
    sh.model("add", "model.bin")
    sh.git("commit", "-q", "-m", "git-model")
    sh.git("checkout", "-q", "HEAD~1")
    assert not (sh.cwd / "model.bin").exists() and not (sh.cwd / ".gitmodel").exists()
    sh.git("checkout", "-q", "main")
    assert sh.read("model.bin") == b"weights"


def test_a_switch_leaves_artifacts_the_two_commits_share_as_they_are(repo: Shell) -> None:
    # as git carries a local edit of a file that does not differ between the two commits
    start(repo)
    repo.git("switch", "-q", "-c", "b")
    repo.write("model.bin", b"weights b")
    commit_all(repo, "b")
    repo.write("other.bin", b"my local edit")  # other.bin is the same on both branches
    repo.write("data/f1.csv", "edited\n")
    (repo.cwd / "data/f3.csv").unlink()
    repo.git("switch", "-q", "main")
    assert repo.read("model.bin") == b"weights v1"  # differs: restored
    assert repo.read("other.bin") == b"my local edit"  # shared: left alone
    assert repo.read("data/f1.csv") == b"edited\n" and not (repo.cwd / "data/f3.csv").exists()
    (repo.cwd / "other.bin").unlink()  # shared but missing: put back
    repo.git("switch", "-q", "b")
    assert repo.read("other.bin") == b"other v1" and repo.read("model.bin") == b"weights b"
    status = json.loads(repo.model("status", "--json").stdout)
    states = {a["path"]: a["state"] for a in status["artifacts"]}
    assert states["data"] == "modified" and states["other.bin"] == "unchanged"
