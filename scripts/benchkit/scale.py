"""scale: memory stays flat whatever the size (reliability; opt-in: --only scale)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .core import Bench, GiB, MiB, Row, Spec, fmt_value, peak_run, ratio_row, remove, section
from .hooks import commit_specs, overhead_row, settle, watching_rows
from .moto import MotoS3


def write_tree(top: Path, count: int) -> None:
    """`count` random 4 KiB files, 100 to a folder."""
    for i in range(count):
        folder = top / f"part{i // 100:04d}"
        if i % 100 == 0:
            folder.mkdir(parents=True)
        (folder / f"sample{i:06d}.bin").write_bytes(os.urandom(4096))


def write_big(path: Path, size: int) -> None:
    """`size` random bytes, written 64 MiB at a time (never all in memory), then fsynced."""
    with open(path, "wb") as f:
        left = size
        while left:
            left -= f.write(os.urandom(min(left, 64 * MiB)))
        os.fsync(f.fileno())


def everyday_at_scale(b: Bench, repo: Path, label: str) -> Iterator[Row]:
    """status and a no-op commit against `git status` in the same repository (where git
    itself never looks inside the ignored artifacts)."""
    settle(b, repo)
    status = Spec(["git", "model", "status"], repo)
    git_status = Spec(["git", "status", "--porcelain"], repo)
    no_hooks = b.tmp / "no-hooks"
    no_hooks.mkdir(exist_ok=True)
    hooked, plain = commit_specs(b, repo, no_hooks)
    b.measure(status, git_status, hooked, plain)
    yield Row("scale", "git status (same repo)", git_status.best, cpu=git_status.cpu)
    yield ratio_row(
        "scale",
        f"git model status, nothing changed ({label})",
        status,
        "git status",
        git_status.best,
        3,
    )
    yield overhead_row("scale", "no-op commit hook overhead", hooked, plain, git_status)
    yield from watching_rows(b, repo, "scale", label, git_status)


def one_change_at_scale(b: Bench, repo: Path) -> Iterator[Row]:
    """A data set that is mostly unchanged between commits: ONE of its files changed, then
    `git model status` and `git commit -a` (the hook re-hashes and records it, beside a
    one-line edit so that git has a change of its own to commit), each against `git status`
    in the same repository, run alternately; then the peak memory of each, run once more."""
    one = repo / "data" / "part0000" / "sample000000.bin"
    counter = iter(range(1 << 30))

    def change() -> None:
        one.write_bytes(os.urandom(4096))

    def change_both() -> None:
        change()
        (repo / "README.md").write_text(f"one change {next(counter)}\n")

    status = Spec(["git", "model", "status"], repo, setup=change)
    commit = Spec(["git", "commit", "-q", "-a", "-m", "one file"], repo, setup=change_both)
    git_status = Spec(["git", "status", "--porcelain"], repo)
    b.measure(status, git_status)
    b.measure(commit, git_status)
    yield Row("scale", "git status (same repo)", git_status.best, cpu=git_status.cpu)
    for what, spec, cmd, setup in (
        ("git model status, one file changed", status, status.cmd, change),
        ("git commit -a, one file changed (the hook records it)", commit, commit.cmd, change_both),
    ):
        yield ratio_row("scale", what, spec, "git status", git_status.best, 3)
        setup()
        yield memory_row(what, *peak_run(b, cmd, repo))
    recorded = b.sh("git", "model", "status", cwd=repo)
    if "sample000000.bin" in recorded:
        raise SystemExit(f"bench: the commit did not record the changed file:\n{recorded}")


def memory_row(what: str, elapsed: float, cpu: float, peak: float) -> Row:
    took = f"{fmt_value(elapsed)} wall, {fmt_value(cpu)} cpu"
    return Row("scale", what, peak, "", None, "< 150 MiB", peak < 150, took, unit="MiB")


def scale_remote(b: Bench, repo: Path) -> tuple[str, MotoS3 | None]:
    """The scale section's default remote: moto's S3 server (`--scale-remote s3`, the
    default: issue 15's target, and where a million small objects cost the most: one request
    each), or a directory (`dir`, or where moto is not installed). (label, the server)."""
    if b.args.scale_remote == "s3":
        try:
            s3 = MotoS3(b)
        except ImportError:
            pass
        else:
            url = s3.bucket("scale")
            b.sh("git", "model", "remote", "add", "store", url, "--default", cwd=repo)
            b.sh("git", "config", "model.remote.store.endpointurl", s3.url, cwd=repo)
            return "S3, moto", s3
    store = b.tmp / "scale-store"
    b.sh("git", "model", "remote", "add", "store", str(store), "--default", cwd=repo)
    return "directory", None


@section("scale", default=False)
def bench_scale(b: Bench) -> Iterator[Row]:
    """A directory of `--scale-files` files and a `--scale-gib` file through add, commit,
    status (nothing changed, then one file changed, and its commit), checkout of an emptied
    and of an unchanged work tree, push, gc and pull, once each: the peak memory of every
    step (git and every process under it) must stay flat, under 150 MiB, whatever the sizes.
    Checkout comes before push: it needs only the cache, so every local step is measured
    before the long one (a million objects to S3 is a million requests)."""
    files, size = b.args.scale_files, int(b.args.scale_gib * GiB)
    label = f"{files:,} files + {size / GiB:g} GiB"
    repo = b.repo("scale")
    kind, s3 = scale_remote(b, repo)
    if s3 is None and b.args.scale_remote == "s3":
        yield Row("scale", "S3 remote", note="skipped: moto/boto3 not installed; a directory")
    try:
        yield from scale_steps(b, repo, label, kind)
    finally:
        if s3:
            s3.stop()
    assert (repo / "model.bin").stat().st_size == size
    remove(repo)
    remove(b.tmp / "scale-store")


def scale_steps(b: Bench, repo: Path, label: str, kind: str) -> Iterator[Row]:
    start = time.perf_counter()
    write_tree(repo / "data", b.args.scale_files)
    write_big(repo / "model.bin", int(b.args.scale_gib * GiB))
    yield Row("scale", f"make the data: {label}", time.perf_counter() - start)

    def empty_work_tree() -> None:
        remove(repo / "data")
        remove(repo / "model.bin")

    def empty_cache_too() -> None:
        empty_work_tree()
        remove(repo / ".git" / "model" / "objects")

    steps: list[tuple[str, list[str], Callable[[], None] | None]] = [
        ("git model add data model.bin", ["git", "model", "add", "data", "model.bin"], None),
        ("git commit (the hook records them)", ["git", "commit", "-q", "-m", "scale"], None),
        ("git model status", ["git", "model", "status"], None),
        ("git model checkout (work tree emptied)", ["git", "model", "checkout"], empty_work_tree),
        ("git model checkout (nothing to do)", ["git", "model", "checkout"], None),
        (f"git model push ({kind})", ["git", "model", "push"], None),
        ("git model gc (every object needed)", ["git", "model", "gc"], None),
        (
            f"git model pull ({kind}; cache and work tree emptied)",
            ["git", "model", "pull"],
            empty_cache_too,
        ),
    ]
    for what, cmd, setup in steps:
        if setup:
            setup()
        yield memory_row(what, *peak_run(b, cmd, repo))
        if what.startswith("git commit"):
            yield from everyday_at_scale(b, repo, label)
        elif what == "git model status":
            yield from one_change_at_scale(b, repo)
