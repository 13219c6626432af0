"""Sections on one machine: start-up, a large file and many small files (add, commit,
checkout, status), beside hashlib, cp, git-lfs and DVC."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from .core import (
    HASH_SCRIPT,
    Bench,
    GiB,
    Row,
    Spec,
    copy_in,
    fsync_file,
    place,
    ratio_row,
    remove,
    reset_model_repo,
    section,
    true_peak,
)


@section("startup")
def bench_startup(b: Bench) -> Iterator[Row]:
    cli = Spec(["git", "model", "--version"], b.tmp)
    py = Spec([sys.executable, "-c", "pass"], b.tmp)
    b.measure(cli, py)
    yield Row(
        "startup", "git model --version (interpreter + CLI)", cli.best, "python -c pass", py.best
    )


def artifact_rows(
    b: Bench, sec: str, repo: Path, rel: str, source: Path, label: str
) -> Iterator[Row]:
    """add, re-add, checkout and memory for one artifact (a file or a folder) vs baselines."""
    is_dir = source.is_dir()
    hashed = Spec([sys.executable, "-c", HASH_SCRIPT, str(source)], b.tmp)
    copy_dest = b.tmp / f"cp-{sec}"
    cp = Spec(
        ["cp", "-r", str(source), str(copy_dest)],
        b.tmp,
        setup=lambda: remove(copy_dest),
        after=None if is_dir else lambda: fsync_file(copy_dest),
    )
    add = Spec(["git", "model", "add", rel], repo, setup=reset_model_repo(b, repo))
    specs = [hashed, cp, add]
    if not is_dir:  # what the disk allows: add makes its copy durable (fsync) before naming it
        disk = Spec(
            ["dd", f"if={source}", f"of={copy_dest}", "bs=4M", "conv=fsync", "status=none"],
            b.tmp,
            setup=lambda: remove(copy_dest),
        )
        specs.append(disk)
    b.measure(*specs)
    yield Row(sec, f"hashlib sha256 pass over {label}", hashed.best, cpu=hashed.cpu)
    yield Row(sec, f"cp {label}", cp.best, cpu=cp.cpu)
    if is_dir:
        yield Row(sec, f"git model add {label}", add.best, "hashlib", hashed.best, cpu=add.cpu)
    else:
        yield Row(sec, "copy + fsync (dd conv=fsync): the disk", disk.best, cpu=disk.cpu)
        yield ratio_row(sec, f"git model add {label}", add, "hashlib", hashed.best, 1.25)
        yield from add_commit_rows(b, sec, repo, rel, label, hashed)

    readd = Spec(["git", "model", "add", rel], repo)
    version = Spec(["git", "model", "--version"], repo)  # start-up, measured alongside
    b.measure(readd, version)
    own = readd.best - version.best
    limit = 0.5 if is_dir else 0.05
    yield Row(sec, "re-add unchanged (whole process)", readd.best, cpu=readd.cpu)
    yield Row(
        sec,
        "re-add unchanged (own work)",
        own,
        "minus git model --version",
        target=f"≤ {limit * 1000:.0f} ms",
        ok=own <= limit,
        cpu=readd.cpu - version.cpu,
    )

    b.sh("git", "commit", "-q", "-m", "v1", cwd=repo)
    target = repo / rel
    flush = None if is_dir else lambda: fsync_file(target)
    checkout = Spec(["git", "model", "checkout"], repo, setup=lambda: remove(target), after=flush)
    b.measure(checkout, cp, hashed)
    remove(copy_dest)
    slower, base = max((cp.best, "cp"), (hashed.best, "hashlib"))
    yield ratio_row(sec, f"git model checkout {label} (deleted)", checkout, base, slower, 1.3)
    specs = [add, readd, checkout]
    if not is_dir:
        # the user replaced the file: checkout keeps the new bytes in the cache first
        objects = repo / ".git" / "model" / "objects"
        committed = {p for p in objects.rglob("*") if p.is_file()}
        variant = b.data_file("variant.bin")

        def replace() -> None:
            for p in objects.rglob("*"):
                if p.is_file() and p not in committed:
                    p.unlink()
            remove(target)
            os.link(variant, target)

        modified = Spec(["git", "model", "checkout"], repo, setup=replace, after=flush)
        b.measure(modified)
        specs.append(modified)
        yield Row(
            sec, "git model checkout (replaced: keeps it first)", modified.best, cpu=modified.cpu
        )
    peak = true_peak(b, specs)  # (in the order measured: add's set-up resets the repo first)
    yield Row(sec, "peak memory of git model", peak, target="< 100 MiB", ok=peak < 100, unit="MiB")


def add_commit_rows(
    b: Bench, sec: str, repo: Path, rel: str, label: str, hashed: Spec
) -> Iterator[Row]:
    """`git model add` and the `git commit` after it, as a user runs them, against one
    SHA-256 pass; then the repo as the add left it (re-add follows)."""
    base = b.sh("git", "rev-parse", "HEAD", cwd=repo).strip()
    empty = reset_model_repo(b, repo)

    def fresh() -> None:
        b.sh("git", "reset", "-q", "--hard", base, cwd=repo)
        empty()

    both = Spec(["sh", "-c", f"git model add {rel} && git commit -q -m add"], repo, setup=fresh)
    b.measure(both, hashed)
    yield ratio_row(sec, f"git model add + git commit {label}", both, "hashlib", hashed.best, 1.25)
    fresh()
    b.sh("git", "model", "add", rel, cwd=repo)


def lfs_rows(b: Bench, sec: str, source: Path, rel: str, label: str) -> Iterator[Row]:
    if shutil.which("git-lfs") is None:
        yield Row(sec, "git lfs", note="skipped: git-lfs not installed")
        return
    repo = b.repo(f"lfs-{sec}", model=False)
    b.sh("git", "lfs", "install", "--local", cwd=repo)
    b.sh("git", "lfs", "track", rel if not source.is_dir() else f"{rel}/**", cwd=repo)
    b.sh("git", "add", ".gitattributes", cwd=repo)
    b.sh("git", "commit", "-q", "-m", "lfs", cwd=repo)
    place(source, repo / rel)

    def unstage() -> None:
        b.sh("git", "rm", "-r", "-q", "--cached", "--ignore-unmatch", rel, cwd=repo)
        remove(repo / ".git" / "lfs" / "objects")

    add = Spec(["git", "add", rel], repo, setup=unstage)
    b.measure(add)
    readd = Spec(["git", "add", rel], repo)
    b.measure(readd)
    b.sh("git", "commit", "-q", "-m", "v1", cwd=repo)
    target = repo / rel
    checkout = Spec(["git", "checkout", "--", rel], repo, setup=lambda: remove(target))
    b.measure(checkout)
    yield Row(sec, f"git lfs: git add {label}", add.best, cpu=add.cpu)
    yield Row(sec, "git lfs: re-add unchanged (whole process)", readd.best, cpu=readd.cpu)
    yield Row(sec, f"git lfs: git checkout -- {label}", checkout.best, cpu=checkout.cpu)
    remove(repo)


def dvc_rows(b: Bench, sec: str, source: Path, rel: str, label: str) -> Iterator[Row]:
    if shutil.which("dvc", path=b.env["PATH"]) is None:
        yield Row(sec, "dvc", note="skipped: dvc not installed")
        return
    repo = b.repo(f"dvc-{sec}", model=False)
    b.sh("dvc", "init", "-q", cwd=repo)
    b.sh("dvc", "config", "core.analytics", "false", cwd=repo)
    copy_in(source, repo / rel)  # dvc may move or chmod what it adds: give it its own copy

    def fresh() -> None:
        remove(repo / ".dvc" / "cache")
        remove(repo / f"{rel}.dvc")

    add = Spec(["dvc", "add", "-q", rel], repo, setup=fresh)
    b.measure(add)
    readd = Spec(["dvc", "add", "-q", rel], repo)
    b.measure(readd)
    target = repo / rel
    checkout = Spec(["dvc", "checkout", "-q", f"{rel}.dvc"], repo, setup=lambda: remove(target))
    b.measure(checkout)
    yield Row(sec, f"dvc add {label}", add.best, cpu=add.cpu)
    yield Row(sec, "dvc: re-add unchanged (whole process)", readd.best, cpu=readd.cpu)
    yield Row(sec, f"dvc checkout {label}", checkout.best, cpu=checkout.cpu)
    remove(repo)


@section("large")
def bench_large(b: Bench) -> Iterator[Row]:
    yield from one_artifact(
        b, "large", b.data_file("model.bin"), "model.bin", f"{b.size / GiB:g} GiB file"
    )


@section("small")
def bench_small(b: Bench) -> Iterator[Row]:
    source = b.tmp / "data" / "small"
    b.small_files(source)
    yield from one_artifact(b, "small", source, "data", f"{b.nfiles} files of 4 KiB")


def one_artifact(b: Bench, sec: str, source: Path, rel: str, label: str) -> Iterator[Row]:
    """git-model's rows for `source` placed at `rel` in a new repository, then git-lfs's and
    DVC's on the same data."""
    repo = b.repo(sec)
    place(source, repo / rel)
    yield from artifact_rows(b, sec, repo, rel, source, label)
    remove(repo)
    yield from lfs_rows(b, sec, source, rel, label)
    yield from dvc_rows(b, sec, source, rel, label)
