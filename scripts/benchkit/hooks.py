"""The everyday loop: status and the commit hook on a tree that did not change, walking and
watching, beside git-lfs and git-annex; and a branch switch."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .core import (
    HASH_SCRIPT,
    Bench,
    GiB,
    Row,
    Spec,
    copy_in,
    fmt_value,
    fsync_file,
    place,
    ratio_row,
    remove,
    section,
    skipped,
)


@section("hooks")
def bench_hooks(b: Bench) -> Iterator[Row]:
    repo = b.repo("hooks")
    hook = Path(b.sh("git", "rev-parse", "--git-path", "hooks/pre-commit", cwd=repo).strip())
    if not (repo / hook).is_file() or "model" not in (repo / hook).read_text(errors="replace"):
        yield skipped("hooks", "commit overhead (10k files + 1 GiB unchanged)")
        remove(repo)
        return
    place(b.data_file("model.bin"), repo / "model.bin")
    small = b.tmp / "data" / "small"
    b.small_files(small)
    place(small, repo / "data")
    b.sh("git", "model", "add", "model.bin", "data", cwd=repo)
    b.sh("git", "commit", "-q", "-m", "artifacts", cwd=repo)
    settle(b, repo)
    foreign = dict(foreign_repos(b, small))
    status = Spec(["git", "model", "status"], repo)
    git_status = Spec(["git", "status", "--porcelain"], repo)
    others = {name: Spec(["git", name, "status"], path) for name, path in foreign.items()}
    b.measure(status, git_status, *others.values())
    label = f"{b.nfiles} files + {b.size / GiB:g} GiB"
    lfs = others.get("lfs")
    yield Row(
        "hooks",
        f"git model status, nothing changed ({label})",
        status.best,
        "git lfs status" if lfs else "",
        lfs.best if lfs else None,
        "≤ 50 ms, ≤ git lfs status",
        status.best <= 0.05 and (lfs is None or status.best <= lfs.best),
        cpu=status.cpu,
    )
    yield Row("hooks", "git status (same repo)", git_status.best, cpu=git_status.cpu)
    for name in ("lfs", "annex"):
        if name in others:
            yield Row("hooks", f"git {name} status (same data)", others[name].best)
        else:
            yield Row("hooks", f"git {name} status", note=f"skipped: git-{name} not installed")
    no_hooks = b.tmp / "no-hooks"
    no_hooks.mkdir(exist_ok=True)
    hooked, plain = commit_specs(b, repo, no_hooks)
    foreign_commits = {name: commit_specs(b, path, no_hooks) for name, path in foreign.items()}
    b.measure(hooked, plain, *(spec for pair in foreign_commits.values() for spec in pair))
    overhead = hooked.best - plain.best
    yield Row("hooks", "git commit, plain (hooks off)", plain.best, cpu=plain.cpu)
    yield Row(
        "hooks",
        f"hook overhead per commit ({b.nfiles} files + model same)",
        overhead,
        f"with hooks {fmt_value(hooked.best)} − plain",
        target="≤ 50 ms (moonshot 40)",
        ok=overhead <= 0.05,
        cpu=hooked.cpu - plain.cpu,
    )
    for name, (with_hooks, without) in foreign_commits.items():
        yield Row(
            "hooks",
            f"git {name}: hook overhead per commit (same data)",
            with_hooks.best - without.best,
            f"with hooks {fmt_value(with_hooks.best)} − plain",
        )
    for path in foreign.values():
        remove(path)
    yield from watching_rows(b, repo, "hooks", label, git_status, lfs)

    # git checkout between two commits whose model differs: the post-checkout hook restores it
    b.sh("git", "tag", "v1", cwd=repo)
    remove(repo / "model.bin")
    os.link(b.data_file("variant.bin"), repo / "model.bin")
    b.sh("git", "model", "add", "model.bin", cwd=repo)
    b.sh("git", "commit", "-q", "-m", "v2", cwd=repo)
    b.sh("git", "tag", "v2", cwd=repo)
    model = repo / "model.bin"
    switches = [
        Spec(["git", "checkout", "-q", tag], repo, after=lambda: fsync_file(model))
        for tag in ("v1", "v2")
    ]
    source = b.data_file("model.bin")
    hashed = Spec([sys.executable, "-c", HASH_SCRIPT, str(source)], b.tmp)
    # the checkout replaces a file of the same size: so does this cp (truncate, then write)
    copy_dest = b.tmp / "cp-hooks"
    copy_in(b.data_file("variant.bin"), copy_dest)
    cp = Spec(["cp", str(source), str(copy_dest)], b.tmp, after=lambda: fsync_file(copy_dest))
    b.measure(*switches, cp, hashed)
    slower, base = max((cp.best, "cp over a file"), (hashed.best, "hashlib"))
    switch = max(switches, key=lambda spec: spec.best)
    label = f"git checkout v1 <-> v2 ({b.size / GiB:g} GiB model differs)"
    yield ratio_row("hooks", label, switch, base, slower, 1.3)
    remove(copy_dest)
    remove(repo)


def watching_rows(
    b: Bench, repo: Path, sec: str, label: str, git_status: Spec, lfs: Spec | None = None
) -> Iterator[Row]:
    """The same status and no-op commit while `git model watch` runs: the daemon's word
    instead of a walk. Its targets: ≤ 50 ms and ≤ git lfs status (hooks), ≤ 3× git status."""
    b.sh("git", "model", "watch", cwd=repo)
    try:
        settle(b, repo)
        b.sh("git", "model", "status", cwd=repo)  # (the stamps take the daemon's tokens)
        status = Spec(["git", "model", "status"], repo)
        no_hooks = b.tmp / "no-hooks"
        no_hooks.mkdir(exist_ok=True)
        hooked, plain = commit_specs(b, repo, no_hooks)
        b.measure(status, git_status, hooked, plain)
    finally:
        b.sh("git", "model", "watch", "--stop", cwd=repo)
    overhead = hooked.best - plain.best
    if sec == "hooks":
        ok = status.best <= 0.05 and (lfs is None or status.best <= lfs.best)
        yield Row(
            sec,
            f"git model status, nothing changed, watching ({label})",
            status.best,
            "git lfs status" if lfs else "",
            lfs.best if lfs else None,
            "≤ 50 ms, ≤ git lfs status",
            ok,
            f"git status {fmt_value(git_status.best)}",
            cpu=status.cpu,
        )
        yield Row(
            sec,
            "hook overhead per commit, watching",
            overhead,
            f"with hooks {fmt_value(hooked.best)} − plain",
            target="≤ 50 ms (moonshot 40)",
            ok=overhead <= 0.05,
            cpu=hooked.cpu - plain.cpu,
        )
        return
    yield Row(sec, "git status (same repo)", git_status.best, cpu=git_status.cpu)
    yield ratio_row(
        sec,
        f"git model status, nothing changed, watching ({label})",
        status,
        "git status",
        git_status.best,
        3,
    )
    yield overhead_row(sec, "no-op commit hook overhead, watching", hooked, plain, git_status)


def overhead_row(sec: str, what: str, hooked: Spec, plain: Spec, git_status: Spec) -> Row:
    """The commit hook's overhead (a commit with hooks less one without) against ≤ 3× `git
    status` (the scale section's target)."""
    overhead = hooked.best - plain.best
    return Row(
        sec,
        what,
        overhead,
        "git status",
        git_status.best,
        "≤ 3×",
        overhead <= 3 * git_status.best,
        f"with hooks {fmt_value(hooked.best)} − plain {fmt_value(plain.best)}",
        cpu=hooked.cpu - plain.cpu,
    )


def settle(b: Bench, repo: Path) -> None:
    """Let a second pass, then run status and a commit once: a stamp taken in the second its
    files were written is never trusted (the racy-timestamp rule), and a user's files were
    rarely written in the second before they run `git model status`."""
    time.sleep(1.1)
    b.sh("git", "model", "status", cwd=repo)
    b.sh("git", "commit", "-q", "--allow-empty", "-m", "settle", cwd=repo)


def foreign_repos(b: Bench, small: Path) -> Iterator[tuple[str, Path]]:
    """The hooks section's data (the model and the small files) in a git-lfs and a
    git-annex repository, where installed, committed: ("lfs" | "annex", repo)."""
    if shutil.which("git-lfs") is not None:
        repo = b.repo("lfs-hooks", model=False)
        b.sh("git", "lfs", "install", "--local", cwd=repo)
        b.sh("git", "lfs", "track", "model.bin", "data/**", cwd=repo)
        place(b.data_file("model.bin"), repo / "model.bin")
        place(small, repo / "data")
        b.sh("git", "add", "-A", cwd=repo)
        b.sh("git", "commit", "-q", "-m", "lfs", cwd=repo)
        yield "lfs", repo
    if shutil.which("git-annex") is not None:
        repo = b.repo("annex-hooks", model=False)
        b.sh("git", "annex", "init", "-q", "bench", cwd=repo)
        copy_in(b.data_file("model.bin"), repo / "model.bin")  # annex moves and chmods it
        copy_in(small, repo / "data")
        b.sh("git", "annex", "add", "-q", "model.bin", "data", cwd=repo)
        b.sh("git", "commit", "-q", "-m", "annex", cwd=repo)
        yield "annex", repo
    time.sleep(1.1)


def commit_specs(b: Bench, repo: Path, no_hooks: Path) -> tuple[Spec, Spec]:
    """A commit of a one-line change beside unchanged artifacts, with and without hooks."""
    counter = iter(range(1 << 30))

    def touch() -> None:
        (repo / "README.md").write_text(f"edit {next(counter)}\n")
        b.sh("git", "add", "README.md", cwd=repo)

    hooked = Spec(["git", "commit", "-q", "-m", "edit"], repo, setup=touch)
    plain = Spec(
        ["git", "-c", f"core.hooksPath={no_hooks}", "commit", "-q", "-m", "edit"],
        repo,
        setup=touch,
    )
    return hooked, plain
