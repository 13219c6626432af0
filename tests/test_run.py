"""The training loop: input hashes, `git model run` (the run cache) and `git model bisect`.

A data scientist trains the scikit-learn demo project twice with the same inputs (the second
run restores the weights instead of training), changes a hyperparameter (it trains), checks a
script for determinism, and finds the commit of a 30-commit history that made accuracy drop,
from notes alone and by evaluating commits in temporary worktrees.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import Shell, Templates, stored

from git_model.cache import Cache
from git_model.manifest import MANIFEST_PATH, Artifact, format_manifest, parse_manifest
from git_model.versions import refresh_versions

DEMO = Path(__file__).resolve().parents[1] / "scripts" / "demo_project"
PY = sys.executable


def note_records(sh: Shell, rev: str = "HEAD") -> list[dict[str, object]]:
    text = sh.git("notes", "--ref=refs/notes/model", "show", rev, check=False).stdout
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# -- the demo project ----------------------------------------------------------------------------


@pytest.fixture
def digits(repo: Shell) -> Shell:
    """The demo project with its data prepared and the model declared (no weights yet)."""
    if importlib.util.find_spec("sklearn") is None:  # (not imported here: 1.3 s per worker)
        pytest.skip("scikit-learn is not installed (pip install -e '.[test]')")
    for f in DEMO.iterdir():
        if f.is_file():
            shutil.copy(f, repo.cwd / f.name)
    repo.run(PY, "prepare.py")
    repo.model("add", "data/train", "data/test", "--model", "digits", "--kind", "data")
    repo.model("add", "params.yaml", "--model", "digits", "--kind", "params")
    repo.model("add", "prepare.py", "train.py", "--model", "digits", "--kind", "code")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "digits: data, params, code")
    return repo


def test_train_twice_restores_then_a_new_hyperparameter_trains(digits: Shell) -> None:
    sh = digits
    train = ["run", "--outputs", "model.npz", "--", PY, "train.py"]
    first = sh.model(*train)
    assert "trained a logistic regression with C=0.01" in first.stdout
    assert "recorded model digits" in first.stdout
    sh.model("metrics", "set", "accuracy=0.9", "--model", "digits")  # pending for the commit
    sh.git("commit", "-q", "-m", "digits: C=0.01")
    records = note_records(sh)
    versions = next(r for r in records if r["type"] == "versions")
    inputs = versions["inputs"]["digits"]  # type: ignore[index]
    shown = json.loads(sh.model("show", "--json").stdout)["models"][0]
    assert shown["inputs"] == inputs and versions["inputs_recipe"] == 1
    weights = sh.read("model.npz")

    (sh.cwd / "model.npz").write_bytes(b"overwritten by an experiment")
    again = sh.model(*train)
    assert "trained a logistic regression" not in again.stdout  # CMD did not run
    assert "already trained" in again.stdout and "accuracy=0.9" in again.stdout
    assert inputs[:12] in again.stdout and "restored model.npz" in again.stdout
    assert sh.read("model.npz") == weights  # byte for byte
    assert sh.model("status").stdout.count("modified") == 0

    params = (sh.cwd / "params.yaml").read_text().replace("C: 0.01", "C: 0.02")
    (sh.cwd / "params.yaml").write_text(params)
    out = sh.model("run", "--json", "--", PY, "train.py")
    assert "with C=0.02" in out.stdout
    result = json.loads(out.stdout[out.stdout.index("{") :])
    assert result["action"] == "ran" and result["inputs"] != inputs
    assert result["uncommitted_inputs"] == ["params.yaml"]
    assert sh.read("model.npz") != weights
    sh.git("commit", "-q", "-am", "digits: C=0.02")
    diff = json.loads(sh.model("diff", "HEAD~1", "HEAD", "--json").stdout)["models"][0]
    assert diff["old_inputs"] == inputs and diff["new_inputs"] == result["inputs"]
    log = json.loads(sh.model("log", "digits", "--json").stdout)["entries"]
    assert [e["inputs"] for e in log[:2]] == [result["inputs"], inputs]


# -- run on a small script -----------------------------------------------------------------------


@pytest.fixture
def tiny(sh: Shell, templates: Templates) -> Shell:
    """Model m: params.json and train.py in, w.bin out (written from the params), trained and
    committed once per worker, copied into each test."""
    return templates.copy("tiny", train_tiny, sh)


def train_tiny(repo: Shell) -> Shell:
    repo.write("params.json", '{"lr": 1}\n')
    repo.write(
        "train.py",
        "import json, os, sys\n"
        "p = json.load(open('params.json'))\n"
        "random = len(sys.argv) > 1\n"
        "open('w.bin', 'wb').write(os.urandom(8) if random else json.dumps(p).encode())\n"
        "import git_model\n"
        "git_model.log_metrics({'loss': p['lr'] / 10}, model='m')\n",
    )
    repo.model("add", "params.json", "--model", "m", "--kind", "params")
    repo.model("add", "train.py", "--model", "m", "--kind", "code")
    repo.model("run", "--outputs", "w.bin", "--", PY, "train.py")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "m: lr 1")
    return repo


def test_a_failed_run_records_nothing(tiny: Shell) -> None:
    sh = tiny
    sh.write("params.json", '{"lr": 2}\n')
    manifest = sh.read(MANIFEST_PATH)
    out = sh.model("run", "--", "sh", "-c", f"{PY} train.py && exit 3", check=False)
    assert out.returncode == 3  # CMD's exit code is ours
    assert "exited 3; nothing was recorded" in out.stderr
    assert sh.read(MANIFEST_PATH) == manifest
    pending = sh.cwd / ".git/model/pending-metrics.jsonl"
    assert not pending.exists() or "0.2" not in pending.read_text()
    missing = sh.model("run", "--", "no-such-trainer", check=False)
    assert missing.returncode == 1
    assert (
        missing.stderr.strip()
        .splitlines()[-1]
        .startswith("error: command not found: no-such-trainer")
    )


def test_metrics_of_a_run_wait_for_the_commit(tiny: Shell) -> None:
    sh = tiny
    sh.write("params.json", '{"lr": 3}\n')
    out = sh.model("run", "--", PY, "train.py")
    assert "metrics loss=0.3 wait for the commit" in out.stdout
    sh.git("commit", "-q", "-am", "m: lr 3")
    metrics = [r for r in note_records(sh) if r["type"] == "metrics"]
    assert metrics and metrics[0]["metrics"] == {"loss": 0.3}


def test_a_forged_input_hash_is_not_reused(tiny: Shell) -> None:
    sh = tiny
    sh.write("params.json", '{"lr": 5}\n')
    failed = sh.model("run", "--json", "--", "false", check=False)
    wanted = json.loads(failed.stdout)["inputs"]
    forged = {
        "format": 1,
        "type": "versions",
        "recipe": 1,
        "time": "2999-01-01T00:00:00.000000Z",
        "models": {"m": "0" * 64},
        "inputs_recipe": 1,
        "inputs": {"m": wanted},
    }
    sh.git("notes", "--ref=refs/notes/model", "append", "-m", json.dumps(forged), "HEAD")
    out = sh.model("run", "--", PY, "train.py")
    assert "already trained" not in out.stdout
    assert "recorded model m" in out.stdout
    assert f"claims model m was trained from inputs {wanted[:12]}" in out.stderr
    assert "not reused" in out.stderr


def test_an_uncommitted_run_is_restored_not_run_again(tiny: Shell) -> None:
    sh = tiny

    def run(*args: str) -> dict[str, object]:
        out = sh.model("run", "--json", *args, "--", PY, "train.py")
        doc: dict[str, object] = json.loads(out.stdout)
        return doc

    sh.write("params.json", '{"lr": 2}\n')
    first = run()
    assert first["action"] == "ran"
    two = sh.read("w.bin")
    sh.write("w.bin", b"overwritten by an experiment")
    again = sh.model("run", "--", PY, "train.py")  # no commit in between
    assert "already trained: model m" in again.stdout
    assert "by an earlier run, not committed yet" in again.stdout and "loss=0.2" in again.stdout
    assert "restored w.bin from the cache instead of running" in again.stdout
    assert sh.read("w.bin") == two

    sh.write("params.json", '{"lr": 3}\n')  # another experiment, then back
    assert run()["action"] == "ran" and sh.read("w.bin") != two
    sh.write("params.json", '{"lr": 2}\n')
    back = run()
    assert back["action"] == "reused" and back["inputs"] == first["inputs"]
    assert back["reused"]["commit"] is None  # type: ignore[index]
    assert back["reused"]["metrics"] == {"loss": 0.2}  # type: ignore[index]
    assert sh.read("w.bin") == two
    assert sh.model("status").stdout.count("modified") == 0
    assert run("--force")["action"] == "ran"  # --force trains anyway
    sh.git("commit", "-q", "-am", "m: lr 2")  # the restored run's metrics go with it
    metrics = [r for r in note_records(sh) if r["type"] == "metrics"]
    assert metrics and metrics[-1]["metrics"] == {"loss": 0.2}


def test_gc_keeps_the_outputs_of_a_run_not_committed_yet(tiny: Shell) -> None:
    """Only the run's record names the first experiment's weights once a second one replaced
    them: gc (even --force, keeping no recent objects) must not drop them."""
    sh = tiny
    sh.write("params.json", '{"lr": 2}\n')
    sh.model("run", "--", PY, "train.py")
    two = sh.read("w.bin")
    sh.write("params.json", '{"lr": 3}\n')
    sh.model("run", "--", PY, "train.py")
    assert sh.read("w.bin") != two
    sh.model("gc", "--force", "--keep-days", "0")
    sh.write("params.json", '{"lr": 2}\n')
    back = json.loads(sh.model("run", "--json", "--", PY, "train.py").stdout)
    assert back["action"] == "reused" and sh.read("w.bin") == two


def test_check_compares_outputs_and_keeps_the_recorded_ones(tiny: Shell) -> None:
    sh = tiny
    recorded = sh.read("w.bin")
    same = sh.model("run", "--check", "--", PY, "train.py")
    assert "same outputs: w.bin" in same.stdout
    differs = sh.model("run", "--check", "--", PY, "train.py", "random", check=False)
    assert differs.returncode == 1
    assert "differs: w.bin: recorded" in differs.stdout
    assert "the work tree holds the recorded outputs again" in differs.stdout
    assert sh.read("w.bin") == recorded  # the rerun's outputs are not left behind
    assert sh.git("status", "--porcelain").stdout == ""  # nothing recorded
    assert sh.model("status").stdout.count("modified") == 0


# -- bisect --------------------------------------------------------------------------------------

CULPRIT = 17  # commit k (1-based) where accuracy drops, because lr goes 0.01 -> 0.1


def score(k: int) -> float:
    return 0.9 + k / 1000 if k < CULPRIT else 0.8 - k / 1000


def history(sh: Shell, count: int = 30, notes_for: set[int] | None = None) -> list[str]:
    """Commits 1..count made with git fast-import (fast), each with new weights (stored in the
    cache), score.txt, lr; metrics notes on the commits in `notes_for` (default all)."""
    sh.write("w.bin", b"weights 0")
    sh.model("add", "w.bin", "--model", "m")
    sh.git("commit", "-q", "-m", "m: weights 0")
    cache = Cache(sh.cwd / ".git" / "model")
    manifest = parse_manifest(sh.read(MANIFEST_PATH))
    lines: list[bytes] = []
    notes_for = set(range(1, count + 1)) if notes_for is None else notes_for

    def blob(path: str, data: bytes) -> list[bytes]:
        return [f"M 100644 inline {path}".encode(), b"data %d" % len(data), data]

    for k in range(1, count + 1):
        weights = f"weights {k}".encode()
        manifest.artifacts["w.bin"] = Artifact("w.bin", stored(cache, weights), len(weights))
        manifest.models["m"].hyperparameters = {"lr": 0.01 if k < CULPRIT else 0.1}
        refresh_versions(manifest, lambda path: None)
        message = f"m: step {k}".encode()
        lines += [
            b"commit refs/heads/main",
            f"mark :{k}".encode(),
            f"committer T <t@example.com> {1_700_000_000 + k} +0000".encode(),
            b"data %d" % len(message),
            message,
            *([b"from refs/heads/main^0"] if k == 1 else []),
            *blob(MANIFEST_PATH, format_manifest(manifest)),
            *blob("score.txt", f"{score(k)}\n".encode()),
        ]
    lines += [
        b"commit refs/notes/model",
        b"committer T <t@example.com> 1700000000 +0000",
        b"data 5",
        b"notes",
        b"from refs/notes/model^0",
    ]
    for k in sorted(notes_for):
        record = {
            "format": 1,
            "type": "metrics",
            "time": "2026-01-01T00:00:00.000000Z",
            "model": "m",
            "metrics": {"accuracy": score(k)},
        }
        text = json.dumps(record).encode() + b"\n"
        lines += [f"N inline :{k}".encode(), b"data %d" % len(text), text]
    sh.git("fast-import", "--quiet", input=b"\n".join(lines) + b"\n")
    sh.git("reset", "-q", "--hard")
    commits = sh.git("rev-list", "--reverse", "--first-parent", "HEAD").stdout.split()
    return commits[-count:]


def test_bisect_from_notes_names_the_culprit_and_why(repo: Shell) -> None:
    commits = history(repo)
    out = repo.model("bisect", "accuracy", "--min", "0.85")
    assert f"first commit that crosses: {commits[CULPRIT - 1][:10]} m: step {CULPRIT}" in out.stdout
    assert "hyperparameter  lr: 0.01 → 0.1" in out.stdout
    assert "weights         w.bin: modified" in out.stdout
    doc = json.loads(
        repo.model(
            "bisect", "accuracy", "--worse-than", commits[0], commits[0], "HEAD", "--json"
        ).stdout
    )
    assert doc["culprit"]["commit"] == commits[CULPRIT - 1]
    assert doc["before"]["commit"] == commits[CULPRIT - 2]
    assert doc["evaluated"] == [] and doc["commits"] == 30
    assert doc["line"] == {"kind": "worse_than", "value": score(1), "rev": commits[0]}
    assert doc["diff"]["models"][0]["hyperparameters"][0]["key"] == "lr"


def test_bisect_run_evaluates_what_notes_lack_in_log_n(repo: Shell, tmp_path: Path) -> None:
    commits = history(repo, notes_for=set(range(2, 31, 2)))  # half the notes, odd ones lost
    count = tmp_path / "evaluations"
    evaluate = (
        f"test -f w.bin && echo x >> {count} && {PY} -c "
        "\"import git_model; git_model.log_metrics({'accuracy': float(open('score.txt').read())}, "
        "model='m')\""
    )
    head = repo.git("rev-parse", "HEAD").stdout
    status = repo.git("status", "--porcelain").stdout
    missing = repo.model("bisect", "accuracy", "--min", "0.85", commits[0], "HEAD", check=False)
    assert missing.returncode == 1 and "evaluate them with --run CMD" in missing.stderr
    out = repo.model("bisect", "accuracy", "--min", "0.85", commits[0], "HEAD", "--run", evaluate)
    assert f"first commit that crosses: {commits[CULPRIT - 1][:10]}" in out.stdout
    runs = len(count.read_text().splitlines())
    assert 1 <= runs <= 7  # ceil(log2 30) + 2
    assert repo.git("rev-parse", "HEAD").stdout == head
    assert repo.git("status", "--porcelain").stdout == status
    assert len(repo.git("worktree", "list").stdout.splitlines()) == 1
    evaluated = [c for c in commits if any(r["type"] == "metrics" for r in note_records(repo, c))]
    assert len(evaluated) == 15 + runs  # their metrics are now in the notes
    again = repo.model("bisect", "accuracy", "--min", "0.85", commits[0], "HEAD", "--run", evaluate)
    assert f"{commits[CULPRIT - 1][:10]}" in again.stdout


def test_bisect_bad_input_is_one_line(repo: Shell) -> None:
    commits = history(repo, count=4)
    cases = [
        (["nope", "--min", "1"], "no commit from"),
        (["accuracy", "--min", "0.5", commits[3], commits[0]], "is not an ancestor of BAD"),
        (["accuracy", "--min", "0.5"], "which does not cross the line"),
        (["accuracy", "--min", "0.5", "--max", "1"], "give exactly one of"),
    ]
    repo.git("checkout", "-q", "-b", "side", commits[1])  # GOOD on a merged side branch
    repo.git("commit", "-q", "--allow-empty", "-m", "side")
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "side", "-m", "merge side")
    fork = commits[1][:12]
    cases.append((["accuracy", "--min", "0.5", "side", "HEAD"], f"as GOOD: {fork}"))
    for args, message in cases:
        out = repo.model("bisect", *args, check=False)
        assert out.returncode != 0
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], out.stderr
