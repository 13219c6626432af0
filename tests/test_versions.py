"""A data scientist's session: declare a model, train twice, record metrics, ask what changed.

Commits are made with `git model add` first, which refreshes the manifest and versions; the
tests pass the same once the pre-commit hook does that by itself.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from typing import Any

import pytest
from conftest import Shell
from faults import FaultRecorder

import git_model


def model_repo(repo: Shell, params_name: str = "params.yaml", params: str | None = None) -> Shell:
    """One model `digits`: weights, a data directory, a params file, a code file."""
    repo.write("model.bin", b"w" * 1000)
    repo.write("data/train/a.csv", "a\n")
    repo.write("data/train/b.csv", "b\n")
    repo.write(params_name, params or "train:\n  lr: 0.01\n  epochs: 10\nseed: 1\n")
    repo.write("prep.py", "print('prep')\n")
    repo.model("add", "model.bin", "--model", "digits")
    repo.model("add", "data/train", "--model", "digits", "--kind", "data")
    repo.model("add", params_name, "--model", "digits", "--kind", "params")
    repo.model("add", "prep.py", "--model", "digits", "--kind", "code")
    repo.git("commit", "-q", "-m", "v1")
    return repo


def commit(repo: Shell, message: str, *paths: str) -> None:
    """Commit everything; `git model add` (of `paths`, else the weights) refreshes versions."""
    repo.model("add", *(paths or ("model.bin",)))
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", message)


def as_json(repo: Shell, *args: str) -> Any:
    return json.loads(repo.model(*args, "--json").stdout)


def version(repo: Shell, rev: str = "HEAD") -> str:
    return git_model.version("digits", rev, repo=repo.cwd)


@pytest.mark.parametrize(
    ("name", "v1", "v2"),
    [
        (
            "params.yaml",
            "train:\n  lr: 0.01\n  epochs: 10\n",
            "train:\n  lr: 0.001\n  epochs: 10\n",
        ),
        (
            "params.json",
            '{"train": {"lr": 0.01, "epochs": 10}}',
            '{"train": {"epochs": 10, "lr": 0.001}}',
        ),
        ("params.toml", "[train]\nlr = 0.01\nepochs = 10\n", "[train]\nepochs = 10\nlr = 0.001\n"),
    ],
)
def test_one_hyperparameter_changed_is_named_exactly(
    repo: Shell, name: str, v1: str, v2: str
) -> None:
    model_repo(repo, name, v1)
    repo.write(name, v2)
    commit(repo, "lower the learning rate")
    out = as_json(repo, "diff", "HEAD~1", "HEAD")
    (m,) = out["models"]
    assert m["status"] == "changed" and m["old_version"] != m["new_version"]
    assert m["hyperparameters"] == [
        {"key": "train.lr", "new": 0.001, "old": 0.01, "source": name, "status": "modified"}
    ]
    assert [(c["kind"], c["path"], c["status"]) for c in m["components"]] == [
        ("params", name, "modified")
    ]
    text = repo.model("diff", "HEAD~1", "HEAD").stdout
    assert "train.lr: 0.01 → 0.001" in text


def test_inline_hyperparameters_are_versioned_and_diffed(repo: Shell) -> None:
    model_repo(repo)
    before = version(repo)
    out = as_json(repo, "add", "--model", "digits", "--param", "train.epochs=20")
    assert out["params"] == {"train.epochs": 20}
    manifest = repo.read(".gitmodel/manifest.toml").decode()
    assert '[models.digits.hyperparameters]\n"train.epochs" = 20' in manifest
    commit(repo, "more epochs")
    assert version(repo) != before
    (m,) = as_json(repo, "diff", "HEAD~1")["models"]  # one rev: against the work tree
    assert m["hyperparameters"] == [
        {"key": "train.epochs", "new": 20, "old": None, "source": "inline", "status": "added"}
    ]
    repo.model("add", "--model", "digits", "--param", "train.epochs=30")
    (m,) = as_json(repo, "diff")["models"]  # no rev: HEAD against the work tree
    assert [(p["key"], p["old"], p["new"]) for p in m["hyperparameters"]] == [
        ("train.epochs", 20, 30)
    ]
    bad = repo.model("add", "--model", "digits", "--param", "x=null", check=False)
    assert bad.returncode == 2 and "null" in bad.stderr
    # with no --model, the repository's default model takes it (its only model)
    assert "set x = 1 on model digits" in repo.model("add", "--param", "x=1").stdout


def test_data_files_added_and_modified_are_listed_exactly(repo: Shell) -> None:
    model_repo(repo)
    repo.write("data/train/a.csv", "a changed\n")
    repo.write("data/train/new.csv", "new\n")
    # before committing: HEAD against the work tree, through the stat cache
    (m,) = as_json(repo, "diff")["models"]
    (data,) = [c for c in m["components"] if c["kind"] == "data"]
    assert data["files"] == {"added": ["new.csv"], "modified": ["a.csv"], "removed": []}
    commit(repo, "more data", "data/train")
    # between commits: from the listings in git alone, with no cache at all
    shutil.rmtree(repo.cwd / ".git/model/objects")
    out = as_json(repo, "diff", "HEAD~1..HEAD")
    (m,) = out["models"]
    assert m["status"] == "changed"
    (data,) = m["components"]
    assert data["path"] == "data/train" and data["status"] == "modified"
    assert data["files"] == {"added": ["new.csv"], "modified": ["a.csv"], "removed": []}
    assert data["size_delta"] == len("a changed\n") - len("a\n") + len("new\n")
    text = repo.model("diff", "HEAD~1", "HEAD").stdout
    assert "added 1 removed 0 modified 1 files" in text
    assert "+ new.csv" in text and "~ a.csv" in text


def test_weights_and_code_changes_are_explained(repo: Shell) -> None:
    model_repo(repo)
    repo.write("model.bin", b"w" * 1500)
    repo.write("prep.py", "print('prep v2')\n")
    repo.write("extra.bin", b"x")
    repo.model("add", "extra.bin", "--model", "other")  # an artifact of another model
    commit(repo, "retrain", "model.bin")
    out = as_json(repo, "diff", "HEAD~1", "HEAD")
    (m,) = [m for m in out["models"] if m["name"] == "digits"]
    changes = {c["path"]: c for c in m["components"]}
    assert set(changes) == {"model.bin", "prep.py"}
    assert changes["model.bin"]["size_delta"] == 500
    assert changes["prep.py"]["status"] == "modified" and changes["prep.py"]["kind"] == "code"
    assert m["hyperparameters"] == []
    (other,) = [m for m in out["models"] if m["name"] == "other"]  # new in this commit
    assert [(c["path"], c["status"]) for c in other["components"]] == [("extra.bin", "added")]


def test_metrics_from_python_and_cli_appear_in_diff_and_log(repo: Shell) -> None:
    model_repo(repo)
    repo.model("metrics", "set", "accuracy=0.9", "loss=0.3")
    commit_v1 = git_model.log_metrics({"f1": 0.8}, model="digits", repo=repo.cwd)
    assert commit_v1 == repo.git("rev-parse", "HEAD").stdout.strip()
    repo.write("params.yaml", "train:\n  lr: 0.001\n  epochs: 10\nseed: 1\n")
    commit(repo, "v2")
    git_model.log_metrics({"accuracy": 0.95, "eval": {"f1": 0.85}}, repo=repo.cwd)
    repo.write("metrics.json", json.dumps({"f1": 0.9, "loss": 0.2}))
    repo.model("metrics", "set", "--file", "metrics.json", "--model", "digits")
    (m,) = as_json(repo, "diff", "HEAD~1", "HEAD")["models"]
    assert m["metrics"] == [
        {"delta": 0.05, "name": "accuracy", "new": 0.95, "old": 0.9},
        {"delta": None, "name": "eval.f1", "new": 0.85, "old": None},
        {"delta": 0.1, "name": "f1", "new": 0.9, "old": 0.8},
        {"delta": -0.1, "name": "loss", "new": 0.2, "old": 0.3},
    ]
    # a commit that does not touch the model keeps its version, and its metrics
    repo.write("README.md", "# project, documented\n")
    commit(repo, "docs")
    repo.model("metrics", "set", "accuracy=0.96")
    log = as_json(repo, "log", "digits")
    assert [e["subject"] for e in log["entries"]] == ["v2", "v1"]
    assert log["entries"][0]["metrics"] == {
        "accuracy": 0.96,
        "eval.f1": 0.85,
        "f1": 0.9,
        "loss": 0.2,
    }
    assert log["entries"][1]["metrics"] == {"accuracy": 0.9, "f1": 0.8, "loss": 0.3}
    text = repo.model("log").stdout.splitlines()
    assert len(text) == 2 and "accuracy=0.96" in text[0] and "digits" in text[0]
    assert len(as_json(repo, "log", "-n", "1")["entries"]) == 1
    shown = as_json(repo, "metrics", "show", "HEAD~1")
    assert [(x["model"], x["name"]) for x in shown["metrics"]] == [
        (None, "accuracy"),
        (None, "eval.f1"),
        ("digits", "f1"),
        ("digits", "loss"),
    ]


def test_recording_twice_keeps_history_and_latest_wins(repo: Shell) -> None:
    model_repo(repo)
    repo.model("metrics", "set", "accuracy=0.9")
    repo.model("metrics", "set", "accuracy=0.91")
    shown = as_json(repo, "metrics", "show")
    assert [r["metrics"] for r in shown["records"]] == [{"accuracy": 0.9}, {"accuracy": 0.91}]
    assert [x["value"] for x in shown["metrics"]] == [0.91]
    assert "accuracy = 0.91" in repo.model("metrics", "show").stdout


def test_version_is_unchanged_when_only_metrics_change(repo: Shell) -> None:
    model_repo(repo)
    before = version(repo)
    manifest = repo.read(".gitmodel/manifest.toml")
    repo.model("metrics", "set", "accuracy=0.9", "--model", "digits")
    git_model.log_metrics({"loss": 0.1}, repo=repo.cwd)
    assert version(repo) == before == git_model.version("digits", None, repo=repo.cwd)
    assert repo.read(".gitmodel/manifest.toml") == manifest
    assert repo.git("status", "--porcelain").stdout == ""
    (m,) = as_json(repo, "diff")["models"]
    assert m["status"] == "unchanged" and m["components"] == [] and m["hyperparameters"] == []
    # the work tree holds HEAD's version, so HEAD's metrics describe it too
    assert [(x["name"], x["delta"]) for x in m["metrics"]] == [("accuracy", 0), ("loss", 0)]


def test_work_tree_version_is_the_next_commits(repo: Shell) -> None:
    model_repo(repo)
    repo.write("model.bin", b"retrained")
    pending = git_model.version("digits", None, repo=repo.cwd)
    assert pending != version(repo)
    commit(repo, "retrained", "model.bin")
    assert version(repo) == pending


def test_a_note_claiming_a_wrong_version_is_flagged(repo: Shell, fault: FaultRecorder) -> None:
    model_repo(repo)
    real = version(repo)
    wrong = "0" * 64
    record = {"format": 1, "type": "versions", "recipe": 1, "time": "2999-01-01T00:00:00Z"}
    record["models"] = {"digits": wrong}
    repo.git("notes", "--ref=refs/notes/model", "add", "-f", "-m", json.dumps(record))
    for args in (("show",), ("log",), ("diff", "HEAD~1", "HEAD")):
        out = as_json(repo, *args)
        assert any("claims model digits is version 000000000000" in w for w in out["warnings"])
        text = repo.model(*args)
        assert "warning:" in text.stderr and "trusting the manifest" in text.stderr
    assert as_json(repo, "show")["models"][0]["version"] == real
    fault.row(
        "a note claims a version the manifest disagrees with",
        "hand-written note record",
        text.stderr,
        "nothing; the manifest is trusted and the note flagged",
    )


def test_a_stale_version_in_the_manifest_is_flagged(repo: Shell) -> None:
    model_repo(repo)
    manifest = repo.read(".gitmodel/manifest.toml").decode()
    stale = re.sub(r'version = "[0-9a-f]{64}"', 'version = "' + "1" * 64 + '"', manifest)
    repo.write(".gitmodel/manifest.toml", stale)
    repo.git("commit", "-q", "--no-verify", "-am", "hand-edited manifest")
    out = as_json(repo, "show")
    assert any("components hash to" in w for w in out["warnings"])


def test_missing_artifact_in_the_work_tree(repo: Shell) -> None:
    model_repo(repo)
    (repo.cwd / "model.bin").unlink()
    out = as_json(repo, "diff")
    (m,) = out["models"]
    assert m["status"] == "changed"
    assert [(c["path"], c["status"]) for c in m["components"]] == [("model.bin", "missing")]
    assert any("git model checkout" in w for w in out["warnings"])


def test_bad_input_gets_one_line_and_the_right_exit_code(repo: Shell) -> None:
    model_repo(repo)
    cases = [
        (("metrics", "set", "accuracy=high"), 2, "not a number"),
        (("metrics", "set", "accuracy"), 2, "KEY=VALUE"),
        (("metrics", "set", "loss=NaN"), 2, "not a number"),
        (("metrics", "set"), 2, "no metrics"),
        (("metrics", "set", "a=1", "--model", "nope"), 1, "no model 'nope'"),
        (("metrics", "set", "a=1", "--file", "absent.json"), 1, "does not exist"),
        (("metrics", "show", "nope"), 2, "unknown revision"),
        (("diff", "nope"), 2, "unknown revision"),
        (("diff", "HEAD", "HEAD", "HEAD"), 2, "at most two"),
        (("log", "nope"), 1, "no model 'nope'"),
        (("show", "nope"), 2, "unknown revision"),
    ]
    for args, code, message in cases:
        out = repo.model(*args, check=False)
        assert out.returncode == code, (args, out.stderr)
        assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    with pytest.raises(git_model.errors.GitModelError, match="finite"):
        git_model.log_metrics({"loss": float("nan")}, repo=repo.cwd)


def test_show_lists_components_hyperparameters_and_metrics(repo: Shell) -> None:
    model_repo(repo)
    repo.model("add", "--model", "digits", "--param", "opt=adam")
    commit(repo, "inline optimizer")
    repo.model("metrics", "set", "accuracy=0.9", "--model", "digits")
    repo.model("metrics", "set", "wall_seconds=12")
    out = as_json(repo, "show")
    (m,) = out["models"]
    assert m["version"] == version(repo)
    assert [(c["kind"], c["path"]) for c in m["components"]] == [
        ("weights", "model.bin"),
        ("data", "data/train"),
        ("params", "params.yaml"),
        ("code", "prep.py"),
    ]
    assert m["components"][1]["files"] == 2 and m["components"][0]["size"] == 1000
    assert [(h["key"], h["source"], h["value"]) for h in m["hyperparameters"]] == [
        ("opt", "inline", "adam"),
        ("seed", "params.yaml", 1),
        ("train.epochs", "params.yaml", 10),
        ("train.lr", "params.yaml", 0.01),
    ]
    assert {k: v["value"] for k, v in m["metrics"].items()} == {"accuracy": 0.9, "wall_seconds": 12}
    assert {k: v["value"] for k, v in out["metrics"].items()} == {"wall_seconds": 12}
    text = repo.model("show").stdout
    assert "train.lr = 0.01  (params.yaml)" in text and "metric          accuracy = 0.9" in text


def test_log_follows_merges_one_line_per_version(repo: Shell) -> None:
    model_repo(repo)
    repo.git("checkout", "-q", "-b", "experiment")
    repo.write("params.yaml", "train:\n  lr: 0.5\n")
    commit(repo, "try a high learning rate")
    repo.git("checkout", "-q", "main")
    repo.model("checkout")
    repo.write("prep.py", "print('prep v2')\n")
    commit(repo, "better preprocessing")
    repo.git("merge", "-q", "--no-edit", "-s", "ours", "experiment")  # keep main's model
    subjects = sorted(e["subject"] for e in as_json(repo, "log", "digits")["entries"])
    assert subjects == ["better preprocessing", "try a high learning rate", "v1"]


def test_an_unreadable_params_file_is_a_warning_not_a_failure(repo: Shell) -> None:
    model_repo(repo)
    repo.write("params.yaml", "train: [unclosed\n")
    out = as_json(repo, "diff")
    (m,) = out["models"]
    assert [c["path"] for c in m["components"]] == ["params.yaml"]
    assert any("params.yaml at work tree" in w for w in out["warnings"])


def test_metrics_logged_before_the_commit_go_on_the_commit_that_records_the_weights(
    repo: Shell,
) -> None:
    repo.write("model.bin", b"v1")
    repo.model("add", "model.bin", "--model", "m")
    repo.git("commit", "-q", "-m", "v1")
    # a training script produces new weights and logs their accuracy before any commit
    repo.write("model.bin", b"v2")
    code = "import git_model; print(git_model.log_metrics({'accuracy': 0.9}, model='m'))"
    assert repo.run(sys.executable, "-c", code).stdout.strip() == "None"  # pending
    out = repo.model("metrics", "set", "loss=0.2", "--model", "m")
    assert "pending" in out.stdout
    assert as_json(repo, "metrics", "show")["records"] == []  # HEAD (v1) was not credited
    repo.git("commit", "-q", "-m", "unrelated", "--allow-empty")  # records v2's weights
    shown = as_json(repo, "metrics", "show")
    values = {r["metrics"].get("accuracy") or r["metrics"].get("loss") for r in shown["records"]}
    assert values == {0.9, 0.2}
    # measured on the committed weights now: straight onto HEAD
    out = repo.model("metrics", "set", "f1=0.5", "--model", "m")
    assert "recorded on" in out.stdout
    assert not (repo.cwd / ".git/model/pending-metrics.jsonl").exists()
