"""A release manager's session: register versions, promote and demote them, roll back, share.

The registry is plain annotated git tags in GTO's format, so the last test reads the same
repository with GTO itself (skipped when the `gto` executable is not installed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import Shell, Templates

from git_model import notes
from git_model.git import Repo

GTO = os.environ.get("GTO_BIN") or shutil.which("gto")


def at(minute: int) -> dict[str, str]:
    """An environment that dates the next tag: GTO orders events by tag time."""
    return {"GIT_COMMITTER_DATE": f"2026-01-01T00:{minute:02d}:00Z"}


def commit_weights(sh: Shell, weights: bytes, message: str, model: str = "digits") -> str:
    sh.write(f"{model}.bin", weights)
    sh.model("add", f"{model}.bin", "--model", model)
    sh.git("commit", "-q", "-m", message)
    return sh.git("rev-parse", "HEAD").stdout.strip()


def set_metrics(sh: Shell, commit: str, metrics: dict[str, Any], minute: int = 0) -> None:
    record = {
        "format": 1,
        "type": "metrics",
        "time": f"2026-01-01T01:{minute:02d}:00Z",
        "model": "digits",
        "metrics": metrics,
    }
    notes.append_records(Repo.discover(sh.cwd), commit, [record])


def registry(sh: Shell, *args: str) -> Any:
    return json.loads(sh.model("registry", *args, "--json").stdout)


def unpinned(sh: Shell, *args: str) -> None:
    """Run `git model ARGS` on the real clock, as a script in a pipeline would."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("GIT_COMMITTER_DATE", "GIT_AUTHOR_DATE")
    }
    subprocess.run(["git", "model", *args], cwd=sh.cwd, env=env, check=True, capture_output=True)


def tag_message(sh: Shell, tag: str) -> str:
    return sh.git("tag", "-l", "--format=%(contents)", tag).stdout


@pytest.fixture
def released(sh: Shell, templates: Templates) -> Shell:
    """digits v0.0.1 (in prod) and v0.1.0 (in prod, then staging), each with metrics (built
    once per worker, copied into each test)."""
    return templates.copy("released", release, sh)


def release(repo: Shell) -> Shell:
    first = commit_weights(repo, b"weights one", "train v1")
    repo.write("data/train.csv", "x,y\n1,2\n")
    repo.model("add", "data", "--model", "digits", "--kind", "data")
    repo.git("commit", "-q", "-m", "data")
    first = repo.git("rev-parse", "HEAD").stdout.strip()
    set_metrics(repo, first, {"accuracy": 0.9})
    repo.model("tag", "digits", env=at(1))
    repo.model("promote", "digits", "prod", env=at(2))
    second = commit_weights(repo, b"weights two", "train v2")
    repo.write("data/train.csv", "x,y\n1,2\n3,4\n")
    repo.model("add", "data")
    repo.git("commit", "-q", "-m", "more data")
    second = repo.git("rev-parse", "HEAD").stdout.strip()
    set_metrics(repo, second, {"accuracy": 0.95, "loss": 0.1})
    repo.model("tag", "digits", "--bump", "minor", env=at(3))
    repo.model("promote", "digits", "prod", "v0.1.0", env=at(4))
    repo.model("promote", "digits", "staging", env=at(5))
    return repo


def test_tag_numbers_versions_and_refuses_duplicates(repo: Shell) -> None:
    first = commit_weights(repo, b"weights one", "train v1")
    out = repo.model("tag", "digits", "--json")
    tagged = json.loads(out.stdout)
    assert tagged["tag"] == "digits@v0.0.1"  # GTO's first version
    assert tagged["commit"] == first
    manifest = repo.read(".gitmodel/manifest.toml").decode()
    assert tagged["version_hash"] in manifest
    # annotated, GTO's subject line, and the hash in a trailer
    assert repo.git("cat-file", "-t", "digits@v0.0.1").stdout.strip() == "tag"
    message = tag_message(repo, "digits@v0.0.1")
    assert message.startswith("Registering artifact digits version v0.0.1\n")
    assert f"git-model-version: {tagged['version_hash']}" in message

    # the same commit again: refused, whatever the flags
    again = repo.model("tag", "digits", "--allow-duplicate", check=False)
    assert again.returncode == 1
    assert "already registered at" in again.stderr and "v0.0.1" in again.stderr

    # a commit that does not change the model: same version hash, refused unless asked
    repo.write("README.md", "# docs only\n")
    repo.git("commit", "-q", "-am", "docs")
    dup = repo.model("tag", "digits", check=False)
    assert dup.returncode == 1
    assert dup.stderr.count("\n") == 1 and "--allow-duplicate" in dup.stderr
    repo.model("tag", "digits", "--allow-duplicate")
    assert repo.git("tag", "-l", "digits@*").stdout.split() == ["digits@v0.0.1", "digits@v0.0.2"]

    commit_weights(repo, b"weights two", "train v2")
    assert "digits@v0.1.0" in repo.model("tag", "digits", "--bump", "minor").stdout
    commit_weights(repo, b"weights three", "train v3")
    assert "digits@v0.1.1" in repo.model("tag", "digits").stdout  # patch by default
    commit_weights(repo, b"weights four", "train v4")
    taken = repo.model("tag", "digits", "--version", "v0.1.1", check=False)
    assert taken.returncode == 1 and "already exists" in taken.stderr
    assert "digits@v2.0.0" in repo.model("tag", "digits", "--version", "v2.0.0").stdout

    for args, code, words in [
        (["nosuch"], 1, "no model 'nosuch'"),
        (["digits", "--version", "2.0"], 2, "not a version"),
        (["bad name!"], 2, "cannot be a registry tag"),
        (["digits", "no-such-rev"], 2, "unknown revision"),
    ]:
        bad = repo.model("tag", *args, check=False)
        assert bad.returncode == code and words in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr


def test_promote_twice_then_demote_keeps_history(released: Shell) -> None:
    sh = released
    state = registry(sh, "digits")
    assert state["latest"] == "v0.1.0"
    assert state["stages"] == {"prod": "v0.1.0", "staging": "v0.1.0"}
    # every change is a new tag; none was moved
    assert sorted(sh.git("tag", "-l", "digits#*").stdout.split()) == [
        "digits#prod#1",
        "digits#prod#2",
        "digits#staging#3",
    ]
    again = sh.model("promote", "digits", "prod", "v0.1.0", check=False)
    assert again.returncode == 1 and "already in stage prod" in again.stderr

    # taking prod from v0.1.0 alone hands it back to v0.0.1, as GTO reads it
    out = sh.model("demote", "digits", "prod", "v0.1.0", env=at(6))
    assert "prod is now held by digits v0.0.1" in out.stdout
    assert registry(sh, "digits")["stages"]["prod"] == "v0.0.1"
    # demote without a version: no version is in prod any more
    out = sh.model("demote", "digits", "prod", "--json", env=at(7))
    assert json.loads(out.stdout) == {
        "format": 1,
        "model": "digits",
        "stage": "prod",
        "removed": [{"version": "v0.0.1", "tag": "digits#prod!#5"}],
        "now": None,
    }
    state = registry(sh, "digits")
    assert state["stages"] == {"staging": "v0.1.0"}
    history = [(e["event"], e["version"], e["stage"], e["tag"]) for e in state["history"]]
    assert history == [
        ("registration", "v0.0.1", None, "digits@v0.0.1"),
        ("assignment", "v0.0.1", "prod", "digits#prod#1"),
        ("registration", "v0.1.0", None, "digits@v0.1.0"),
        ("assignment", "v0.1.0", "prod", "digits#prod#2"),
        ("assignment", "v0.1.0", "staging", "digits#staging#3"),
        ("unassignment", "v0.1.0", "prod", "digits#prod!#4"),
        ("unassignment", "v0.0.1", "prod", "digits#prod!#5"),
    ]
    assert tag_message(sh, "digits#prod!#4").startswith(
        "Unassigning stage 'prod' to artifact 'digits' version 'v0.1.0'"
    )
    gone = sh.model("demote", "digits", "prod", check=False)
    assert gone.returncode == 1 and "not in stage prod" in gone.stderr
    text = sh.model("registry", "digits").stdout
    assert "promoted      v0.0.1 to prod" in text and "demoted       v0.0.1 from prod" in text


def test_registry_json_has_hashes_and_metrics(released: Shell) -> None:
    sh = released
    sh.write("other.bin", b"another model")
    sh.model("add", "other.bin", "--model", "other")
    sh.git("commit", "-q", "-m", "a second model")
    state = registry(sh)
    assert [m["name"] for m in state["models"]] == ["digits", "other"]
    digits, other = state["models"]
    assert other["registered"] is False and other["latest"] is None and other["versions"] == []
    assert digits["latest"] == "v0.1.0"
    assert digits["stages"] == {"prod": "v0.1.0", "staging": "v0.1.0"}
    v010, v001 = digits["versions"]
    assert (v010["version"], v001["version"]) == ("v0.1.0", "v0.0.1")
    assert v010["metrics"] == {"accuracy": 0.95, "loss": 0.1}
    assert v001["metrics"] == {"accuracy": 0.9}
    assert v010["stages"] == ["prod", "staging"] and v001["stages"] == []
    for v in (v010, v001):
        at_commit = sh.git("show", f"{v['commit']}:.gitmodel/manifest.toml").stdout
        assert f'version = "{v["version_hash"]}"' in at_commit
    # metrics recorded after registration show up; the latest record wins, key by key
    set_metrics(sh, v001["commit"], {"accuracy": 0.91}, minute=30)
    assert registry(sh)["models"][0]["versions"][1]["metrics"] == {"accuracy": 0.91}
    text = sh.model("registry").stdout
    assert "digits  latest v0.1.0" in text and "accuracy=0.95 loss=0.1" in text
    assert "other  not registered: git model tag other" in text


def test_checkout_model_at_stage_restores_its_artifacts_and_keeps_head(released: Shell) -> None:
    sh = released
    sh.write("other.bin", b"other model v1")
    sh.model("add", "other.bin", "--model", "other")
    sh.git("commit", "-q", "-m", "other model")
    sh.model("promote", "digits", "prod", "v0.0.1", env=at(8))  # roll prod back
    head = sh.git("rev-parse", "HEAD").stdout.strip()
    sh.write("other.bin", b"other: work in progress")

    out = sh.model("checkout", "digits@prod")
    assert sh.read("digits.bin") == b"weights one"  # byte for byte
    assert sh.read("data/train.csv") == b"x,y\n1,2\n"
    assert sh.read("other.bin") == b"other: work in progress"  # another model is left alone
    assert sh.git("rev-parse", "HEAD").stdout.strip() == head
    assert "HEAD did not move" in out.stderr

    sh.model("checkout", "digits@v0.1.0")
    assert sh.read("digits.bin") == b"weights two"
    sh.model("checkout", "digits#prod")
    assert sh.read("digits.bin") == b"weights one"
    sh.model("checkout", "digits@latest")
    assert sh.read("digits.bin") == b"weights two"
    sh.model("checkout", "digits@v0.0.1", "--", "digits.bin")
    assert sh.read("digits.bin") == b"weights one"
    assert sh.read("data/train.csv") == b"x,y\n1,2\n3,4\n"
    for name, words in [
        ("digits@v9.9.9", "no registered version v9.9.9"),
        ("digits@canary", "no version of digits is in stage 'canary'"),
        ("nobody@prod", "unknown revision or model version"),
    ]:
        bad = sh.model("checkout", name, check=False)
        assert bad.returncode in (1, 2) and words in bad.stderr, bad.stderr
    assert sh.git("rev-parse", "HEAD").stdout.strip() == head


def test_stage_tags_made_within_one_second_still_read_in_order(released: Shell) -> None:
    # GTO orders stage events by tag time (whole seconds): each stage tag is dated after the last
    unpinned(released, "promote", "digits", "prod", "v0.0.1")
    unpinned(released, "demote", "digits", "prod", "v0.0.1")
    unpinned(released, "promote", "digits", "prod", "v0.0.1")
    out = released.git("for-each-ref", "--format=%(taggerdate:unix)", "refs/tags/digits#prod*")
    times = sorted(int(t) for t in out.stdout.split())[-3:]
    assert times[0] < times[1] < times[2]
    assert registry(released, "digits")["stages"]["prod"] == "v0.0.1"


def test_tags_travel_with_git_push_and_a_fresh_clone_reads_the_registry(
    released: Shell, tmp_path: Path
) -> None:
    sh = released
    bare = tmp_path / "remote.git"
    sh.git("init", "-q", "--bare", str(bare))
    sh.git("push", "-q", str(bare), "main", "--tags")
    sh.git("clone", "-q", str(bare), str(tmp_path / "clone"))
    clone = sh.at(tmp_path / "clone")
    # the clone has the tags but not the notes: metrics come from the registration snapshots
    assert clone.git("notes", "--ref=refs/notes/model", "list", check=False).stdout == ""
    assert registry(clone) == registry(sh)
    assert registry(clone, "digits") == registry(sh, "digits")


@pytest.mark.skipif(GTO is None, reason="the gto executable is not installed (pip install gto)")
def test_gto_reads_the_same_versions_and_stages(released: Shell) -> None:
    sh = released
    gto = str(GTO)
    sh.model("demote", "digits", "prod", "v0.1.0", env=at(6))
    for args in (["staging", "v0.0.1"], ["staging", "v0.1.0"], ["prod", "v0.1.0"]):
        unpinned(sh, "promote", "digits", *args)  # within a second or two, on the real clock

    def gto_json(*args: str) -> Any:
        proc = subprocess.run(
            [gto, *args, "--json"], cwd=sh.cwd, capture_output=True, text=True, check=True
        )
        return json.loads(proc.stdout)

    ours = registry(sh, "digits")
    theirs = gto_json("show")["digits"]
    assert theirs["version"] == ours["latest"]
    assert {s: v for s, v in theirs["stage"].items() if v} == ours["stages"]
    versions = gto_json("show", "digits")
    assert [(v["version"], v["commit_hexsha"]) for v in versions] == [
        (v["version"], v["commit"]) for v in ours["versions"]
    ]
    events = [
        (e["event"], e["version"], e["stage"], e["ref"]) for e in gto_json("history", "digits")
    ]
    assert events[::-1] == [
        (e["event"], e["version"], e["stage"], e["tag"]) for e in ours["history"]
    ]

    # and the other way round: a stage GTO assigns is read by git-model
    epoch = "1767229200 +0000"  # 01:00 UTC, after every tag above; dulwich reads no ISO dates
    proc = subprocess.run(
        [gto, "assign", "digits", "--version", "v0.0.1", "--stage", "canary"],
        cwd=sh.cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_COMMITTER_DATE": epoch, "GIT_AUTHOR_DATE": epoch},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert registry(sh, "digits")["stages"]["canary"] == "v0.0.1"
    assert gto_json("show")["digits"]["stage"]["canary"] == "v0.0.1"
