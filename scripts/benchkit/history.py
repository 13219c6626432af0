"""Version history: log, diff and the train/evaluate loop over many commits."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from .core import Bench, Row, Spec, copy_in, remove, section, skipped


def fast_commits(b: Bench, repo: Path, count: int) -> None:
    """`count` commits, each recording new weights for model `m`, made with git fast-import.

    Through `git model add` + `git commit` they would take minutes; the manifests written here
    are the product's own (its manifest and version code), so `log` reads real history.
    """
    from git_model.hashing import hash_bytes
    from git_model.manifest import MANIFEST_PATH, Artifact, format_manifest, parse_manifest
    from git_model.versions import refresh_versions

    manifest = parse_manifest((repo / MANIFEST_PATH).read_bytes())
    lines: list[bytes] = []
    for i in range(1, count + 1):
        weights = f"weights {i}".encode()
        manifest.artifacts["w.bin"] = Artifact("w.bin", hash_bytes(weights), len(weights))
        refresh_versions(manifest, lambda path: None)
        data = format_manifest(manifest)
        lines += commit_lines(i, MANIFEST_PATH, data)
    fast_import(b, repo, lines)


def commit_lines(i: int, manifest_path: str, manifest: bytes, *, mark: bool = False) -> list[bytes]:
    """git fast-import's lines for commit `i` on main ("train i", a fixed author and date)
    whose one change is the manifest; `mark`: the commit is `:i` (notes can name it)."""
    message = f"train {i}".encode()
    return [
        b"commit refs/heads/main",
        *([f"mark :{i}".encode()] if mark else []),
        f"committer Bench <bench@example.com> {1_700_000_000 + i} +0000".encode(),
        b"data %d" % len(message),
        message,
        *([b"from refs/heads/main^0"] if i == 1 else []),
        f"M 100644 inline {manifest_path}".encode(),
        b"data %d" % len(manifest),
        manifest,
    ]


def fast_import(b: Bench, repo: Path, lines: list[bytes]) -> None:
    b.sh("git", "fast-import", "--quiet", cwd=repo, input=b"\n".join(lines) + b"\n")
    b.sh("git", "reset", "-q", "--hard", cwd=repo)


@section("versions")
def bench_versions(b: Bench) -> Iterator[Row]:
    if not b.has_command("log"):
        yield skipped("versions", "git model log over 1,000 commits")
    else:
        repo = b.repo("versions")
        (repo / "w.bin").write_bytes(b"weights 0")
        b.sh("git", "model", "add", "w.bin", "--model", "m", cwd=repo)
        b.sh("git", "commit", "-q", "-m", "train 0", cwd=repo)
        fast_commits(b, repo, 999)
        log = Spec(["git", "model", "log", "m"], repo)
        b.measure(log)
        ok = log.best <= 1
        yield Row("versions", "git model log over 1,000 commits", log.best, target="≤ 1 s", ok=ok)
        remove(repo)
    if not b.has_command("diff"):
        yield skipped("versions", "git model diff of a 10k-file data set")
        return
    repo = b.repo("versions-diff")
    small = b.tmp / "data" / "small"
    b.small_files(small)
    copy_in(small, repo / "data")
    b.sh("git", "model", "add", "data", "--model", "m", "--kind", "data", cwd=repo)
    b.sh("git", "commit", "-q", "-m", "data v1", cwd=repo)
    for path in sorted((repo / "data").rglob("*.bin"))[::100]:
        path.write_bytes(os.urandom(4096))  # 1 in 100 files modified
    (repo / "data" / "added.bin").write_bytes(b"new")
    b.sh("git", "model", "add", "data", cwd=repo)
    b.sh("git", "commit", "-q", "-m", "data v2", cwd=repo)
    diff = Spec(["git", "model", "diff", "HEAD~1", "HEAD"], repo)
    b.measure(diff)
    yield Row(
        "versions",
        "git model diff, 10k-file data set",
        diff.best,
        target="≤ 0.5 s",
        ok=diff.best <= 0.5,
    )
    remove(repo)


def loop_history(b: Bench, repo: Path, count: int, drop_at: int) -> None:
    """`count` commits of model `m` (inline hyperparameter `step` = i: new inputs, new weights
    each), made with git fast-import, and each one's note as the hooks and `log_metrics` would
    write it: a versions record with the input hash, and an accuracy that drops at `drop_at`."""
    import json

    from git_model.cache import Cache
    from git_model.hashing import hash_bytes
    from git_model.manifest import MANIFEST_PATH, Artifact, format_manifest, parse_manifest
    from git_model.versions import all_inputs, refresh_versions

    manifest = parse_manifest((repo / MANIFEST_PATH).read_bytes())
    cache = Cache(repo / ".git" / "model")
    lines: list[bytes] = []
    notes: list[bytes] = []
    for i in range(1, count + 1):
        weights = f"weights {i}".encode()
        if i == count // 2:  # the one `run` will find: its bytes must be in the cache
            src = b.tmp / "w-src"
            src.write_bytes(weights)
            cache.store_file(src)
        manifest.artifacts["w.bin"] = Artifact("w.bin", hash_bytes(weights), len(weights))
        manifest.models["m"].hyperparameters = {"step": i}
        refresh_versions(manifest, lambda path: None)
        data = format_manifest(manifest)
        lines += commit_lines(i, MANIFEST_PATH, data, mark=True)
        versions = {
            "format": 1,
            "type": "versions",
            "recipe": 1,
            "time": "2026-01-01T00:00:00.000000Z",
            "models": {"m": str(manifest.models["m"].version)},
            "inputs_recipe": 1,
            "inputs": all_inputs(manifest, lambda path: None),
        }
        accuracy = 0.9 if i < drop_at else 0.8
        metrics = {
            "format": 1,
            "type": "metrics",
            "time": "2026-01-01T00:00:01.000000Z",
            "model": "m",
            "metrics": {"accuracy": accuracy},
        }
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in (metrics, versions))
        notes += [f"N inline :{i}".encode(), b"data %d" % len(text.encode()), text.encode()]
    lines += [
        b"commit refs/notes/model",
        b"committer Bench <bench@example.com> 1700000000 +0000",
        b"data 5",
        b"notes",
        b"from refs/notes/model^0",
        *notes,
    ]
    fast_import(b, repo, lines)


@section("loop")
def bench_loop(b: Bench) -> Iterator[Row]:
    if not b.has_command("run"):
        yield skipped("loop", "git model run: already trained, 1,000 commits")
        return
    repo = b.repo("loop")
    (repo / "w.bin").write_bytes(b"weights 0")
    b.sh("git", "model", "add", "w.bin", "--model", "m", "--param", "step=0", cwd=repo)
    b.sh("git", "commit", "-q", "-m", "train 0", cwd=repo)
    loop_history(b, repo, 1000, drop_at=700)
    # the work tree goes back to the inputs of commit 500: trained already, 500 commits ago
    b.sh("git", "model", "add", "--model", "m", "--param", "step=500", cwd=repo)
    run = Spec(["git", "model", "run", "--", "false"], repo)  # (false: running would fail)
    b.measure(run)
    yield Row(
        "loop",
        "git model run: already trained (1,000 commits)",
        run.best,
        target="≤ 0.3 s",
        ok=run.best <= 0.3,
        cpu=run.cpu,
    )
    b.sh("git", "reset", "-q", "--hard", cwd=repo)
    bisect = Spec(["git", "model", "bisect", "accuracy", "--min", "0.85"], repo)
    b.measure(bisect)
    yield Row(
        "loop",
        "git model bisect from notes (1,000 commits)",
        bisect.best,
        target="≤ 1 s",
        ok=bisect.best <= 1,
        cpu=bisect.cpu,
    )
    remove(repo)
