"""Benchmarks: git-model against its speed and memory targets, beside the raw baselines.

    python scripts/bench.py [--quick] [--size-gib N] [--files N] [--only SECTION,…] [--runs N]
    python scripts/bench.py --only scale [--scale-files N] [--scale-gib N]

Each section builds its own data (random bytes) in a temp folder that is removed afterwards,
and measures git-model and its baseline side by side in the same run: the two are run
alternately, once each to warm the page cache, then N more times, and the best run of each
is kept. Ratios measured this way hold on a loaded machine, where absolute times do not.
Peak memory is the largest max-RSS that `wait4` reports for any git-model process.

Sections live in SECTIONS (add one with `@section("name")`: a function that takes the Bench
and yields Rows). `scale` (100,000 files and a 10 GiB file, memory flat) runs only when
named: `--only scale [--scale-files N] [--scale-gib N]`. A section whose commands have not
landed yet prints "skipped". git-lfs, git-annex and DVC are informative columns where
they are installed (skipped where not). Exit status 1 if any target fails.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1 << 20
GiB = 1 << 30
TRASH = Path()  # set in main()
_trashed = itertools.count()
HASH_SCRIPT = """\
import hashlib, os, sys
buf = bytearray(1 << 20)
view = memoryview(buf)
for top in sys.argv[1:]:
    if os.path.isfile(top):
        paths = [top]
    else:
        paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(top) for f in fs)
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                digest.update(view[:n])
"""


@dataclass
class Row:
    """One line of the table; `ok` is None for informative rows."""

    section: str
    what: str
    seconds: float | None = None
    baseline: str = ""
    base_seconds: float | None = None
    target: str = ""
    ok: bool | None = None
    note: str = ""
    unit: str = "s"  # or "MiB"
    cpu: float | None = None  # user + system seconds of the measured run (and its children)

    @property
    def ratio(self) -> float | None:
        if self.seconds is None or not self.base_seconds:
            return None
        return self.seconds / self.base_seconds


@dataclass
class Spec:
    """A command to time, with untimed steps before and after each run."""

    cmd: list[str]
    cwd: Path
    setup: Callable[[], None] | None = None
    after: Callable[[], None] | None = None
    times: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    peak_kib: int = 0

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def cpu(self) -> float:
        return min(self.cpus)


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.runs: int = args.runs
        self.size: int = int(args.size_gib * GiB)
        self.nfiles: int = args.files
        self._data: dict[str, Path] = {}
        home = tmp / "home"
        home.mkdir()
        (home / ".gitconfig").write_text(
            "[init]\n\tdefaultBranch = main\n[user]\n\tname = Bench\n\temail = bench@example.com\n"
            "[advice]\n\tdetachedHead = false\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        # bytecode cached as in any installed package (a sandbox may turn it off), but kept
        # in the temp folder, not beside the sources
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        # the real interpreter's bin first: a version-manager shim would add its own startup
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
            NO_COLOR="1",
            DVC_NO_ANALYTICS="1",
        )
        self.env = env

    # -- running ----------------------------------------------------------------------------

    def sh(self, *cmd: str | Path, cwd: Path, input: bytes | None = None) -> str:
        """Run an untimed step; its output, or an error naming the command."""
        proc = subprocess.run(
            [str(c) for c in cmd], cwd=cwd, env=self.env, capture_output=True, input=input
        )
        if proc.returncode != 0:
            raise SystemExit(f"bench: {' '.join(map(str, cmd))} failed:\n{proc.stderr.decode()}")
        return proc.stdout.decode(errors="replace")

    def run_timed(self, cmd: list[str], cwd: Path) -> tuple[float, float, int]:
        """Wall time, CPU time (user + system, children included) and peak RSS (KiB) of one
        run of `cmd`."""
        with tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            proc = subprocess.Popen(
                cmd, cwd=cwd, env=self.env, stdout=subprocess.DEVNULL, stderr=err
            )
            _, status, usage = os.wait4(proc.pid, 0)
            elapsed = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                err.seek(0)
                raise SystemExit(
                    f"bench: {' '.join(cmd)} exited {proc.returncode}:\n{err.read().decode()}"
                )
        return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss

    def measure(self, *specs: Spec, swap: bool = False) -> None:
        """Run the specs alternately: one warm-up round, then `runs` timed rounds. `swap`:
        every other round in the reverse order, so that no spec always follows the same one
        (what one leaves for the disk or the page cache falls on each in turn)."""
        for round_ in range(self.runs + 1):
            for spec in reversed(specs) if swap and round_ % 2 else specs:
                if spec.setup:
                    spec.setup()
                elapsed, cpu, kib = self.run_timed(spec.cmd, spec.cwd)
                if spec.after:
                    spec.after()
                spec.peak_kib = max(spec.peak_kib, kib)
                if round_:
                    spec.times.append(elapsed)
                    spec.cpus.append(cpu)

    def has_command(self, name: str) -> bool:
        probe = subprocess.run(
            ["git", "model", name, "--help"], env=self.env, capture_output=True, cwd=self.tmp
        )
        return probe.returncode == 0

    # -- data -------------------------------------------------------------------------------

    def data_file(self, name: str) -> Path:
        """A file of random bytes (`--size-gib`), made once; link it where it is needed."""
        if name not in self._data:
            path = self.tmp / "data" / name
            path.parent.mkdir(exist_ok=True)
            with open(path, "wb") as f:
                left = self.size
                while left:
                    left -= f.write(os.urandom(min(left, 4 * MiB)))
                os.fsync(f.fileno())  # no writeback of it inside a timed run
            self._data[name] = path
        return self._data[name]

    def small_files(self, top: Path) -> None:
        """`--files` random 4 KiB files, 100 to a folder (made once: the sections that share
        `top` find it there)."""
        if top.exists():
            return
        for i in range(self.nfiles):
            d = top / f"part{i // 100:03d}"
            if i % 100 == 0:
                d.mkdir(parents=True)
            (d / f"sample{i:05d}.bin").write_bytes(os.urandom(4096))

    def repo(self, name: str, *, model: bool = True) -> Path:
        path = self.tmp / name
        path.mkdir()
        self.sh("git", "init", "-q", cwd=path)
        (path / "README.md").write_text("bench\n")
        if model:
            self.sh("git", "model", "init", cwd=path)
        self.sh("git", "add", "-A", cwd=path)
        self.sh("git", "commit", "-q", "-m", "initial", cwd=path)
        return path


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path: Path) -> None:
    """Get `path` out of the way. A folder is moved to the trash, emptied only at the end:
    ext4 without a journal creates files slowly for a minute or more after many were deleted
    (it skips recently freed inodes), which would slow down whichever command ran next. Its
    large files are deleted first, though: a few freed inodes cost nothing, and gigabytes
    kept in the trash fill the page cache, after which this VM writes 1 GiB 5-10 times
    slower."""
    if path.is_dir() and not path.is_symlink():
        for top, _dirs, files in os.walk(path):
            for name in files:
                file = os.path.join(top, name)
                with contextlib.suppress(OSError):
                    if os.lstat(file).st_size >= 1 << 20:
                        os.unlink(file)
        os.rename(path, TRASH / str(next(_trashed)))
    else:
        path.unlink(missing_ok=True)


def reset_model_repo(b: Bench, repo: Path) -> Callable[[], None]:
    """Back to the committed state with an empty cache and stat cache: a first `add` again."""

    def reset() -> None:
        model = repo / ".git" / "model"
        for name in ("objects", "state.db", "state.db-wal", "state.db-shm"):
            remove(model / name)
        b.sh("git", "reset", "-q", "--hard", cwd=repo)
        os.sync()  # each add starts with the disk's writeback of the runs before caught up

    return reset


# -- sections -------------------------------------------------------------------------------

Section = Callable[[Bench], Iterator[Row]]
SECTIONS: dict[str, Section] = {}
OPT_IN: set[str] = set()  # sections that run only when --only names them


def section(name: str, *, default: bool = True) -> Callable[[Section], Section]:
    def register(fn: Section) -> Section:
        SECTIONS[name] = fn
        if not default:
            OPT_IN.add(name)
        return fn

    return register


def ratio_row(sec: str, what: str, spec: Spec, base: str, base_s: float, limit: float) -> Row:
    ok = spec.best <= limit * base_s
    return Row(sec, what, spec.best, base, base_s, f"≤ {limit:g}×", ok, cpu=spec.cpu)


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


def place(source: Path, dest: Path) -> None:
    """Hard-link a pristine data set into a repo (git-model and git never write in place)."""
    if source.is_dir():
        shutil.copytree(source, dest, copy_function=os.link)
    else:
        os.link(source, dest)


def copy_in(source: Path, dest: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, dest)
    else:
        shutil.copyfile(source, dest)
        fsync_file(dest)


@section("large")
def bench_large(b: Bench) -> Iterator[Row]:
    source = b.data_file("model.bin")
    label = f"{b.size / GiB:g} GiB file"
    repo = b.repo("large")
    place(source, repo / "model.bin")
    yield from artifact_rows(b, "large", repo, "model.bin", source, label)
    remove(repo)
    yield from lfs_rows(b, "large", source, "model.bin", label)
    yield from dvc_rows(b, "large", source, "model.bin", label)


@section("small")
def bench_small(b: Bench) -> Iterator[Row]:
    source = b.tmp / "data" / "small"
    b.small_files(source)
    label = f"{b.nfiles} files of 4 KiB"
    repo = b.repo("small")
    place(source, repo / "data")
    yield from artifact_rows(b, "small", repo, "data", source, label)
    remove(repo)
    yield from lfs_rows(b, "small", source, "data", label)
    yield from dvc_rows(b, "small", source, "data", label)


# -- sections for commands that land later (each skips until its command exists) -----------


def skipped(sec: str, what: str) -> Row:
    return Row(sec, what, note="skipped: command not available yet")


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
    yield Row(
        sec,
        "no-op commit hook overhead, watching",
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
        message = f"train {i}".encode()
        lines += [
            b"commit refs/heads/main",
            f"committer Bench <bench@example.com> {1_700_000_000 + i} +0000".encode(),
            b"data %d" % len(message),
            message,
            *([b"from refs/heads/main^0"] if i == 1 else []),
            f"M 100644 inline {MANIFEST_PATH}".encode(),
            b"data %d" % len(data),
            data,
        ]
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
        message = f"train {i}".encode()
        lines += [
            b"commit refs/heads/main",
            f"mark :{i}".encode(),
            f"committer Bench <bench@example.com> {1_700_000_000 + i} +0000".encode(),
            b"data %d" % len(message),
            message,
            *([b"from refs/heads/main^0"] if i == 1 else []),
            f"M 100644 inline {MANIFEST_PATH}".encode(),
            b"data %d" % len(data),
            data,
        ]
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
    b.sh("git", "fast-import", "--quiet", cwd=repo, input=b"\n".join(lines) + b"\n")
    b.sh("git", "reset", "-q", "--hard", cwd=repo)


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


@section("remotes")
def bench_remotes(b: Bench) -> Iterator[Row]:
    if not (b.has_command("push") and b.has_command("pull") and b.has_command("remote")):
        yield skipped("remotes", "push/pull 1 GiB to a directory remote")
        return
    yield from remote_large_rows(b)
    yield from remote_small_rows(b)


def remote_repo(b: Bench, name: str, source: Path, rel: str) -> tuple[Path, Path]:
    """A repo with `source` committed as the artifact `rel`, and its default directory
    remote (not made yet): (repo, the remote's folder)."""
    repo = b.repo(name)
    store = b.tmp / f"store-{name}"
    b.sh("git", "model", "remote", "add", "store", str(store), "--default", cwd=repo)
    place(source, repo / rel)
    b.sh("git", "model", "add", rel, cwd=repo)
    b.sh("git", "commit", "-q", "-m", "v1", cwd=repo)
    return repo, store


def remote_large_rows(b: Bench) -> Iterator[Row]:
    """Push and pull of one large file to a directory remote, against cp and against the
    floor: a verified transfer reads every byte through SHA-256 and makes its copy durable,
    so it cannot beat the slowest of cp, a hashlib pass and a copy with fsync."""
    source = b.data_file("model.bin")
    label = f"{b.size / GiB:g} GiB"
    repo, store = remote_repo(b, "remotes", source, "model.bin")
    copy_dest = b.tmp / "cp-remote"
    cp = Spec(
        ["cp", str(source), str(copy_dest)],
        b.tmp,
        setup=lambda: remove(copy_dest),
        after=lambda: fsync_file(copy_dest),
    )
    hashed = Spec([sys.executable, "-c", HASH_SCRIPT, str(source)], b.tmp)
    disk = Spec(
        ["dd", f"if={source}", f"of={copy_dest}", "bs=4M", "conv=fsync", "status=none"],
        b.tmp,
        setup=lambda: remove(copy_dest),
    )
    push = Spec(["git", "model", "push"], repo, setup=lambda: remove(store))

    def forget() -> None:
        remove(repo / ".git" / "model" / "objects")
        remove(repo / "model.bin")

    pulled = repo / "model.bin"
    pull = Spec(["git", "model", "pull"], repo, setup=forget, after=lambda: fsync_file(pulled))
    b.measure(push, pull, cp, hashed, disk)
    floor, name = max((cp.best, "cp"), (hashed.best, "hashlib"), (disk.best, "dd fsync"))
    yield Row("remotes", f"cp {label} file", cp.best, cpu=cp.cpu)
    yield Row("remotes", f"hashlib sha256 pass over {label}", hashed.best, cpu=hashed.cpu)
    yield Row("remotes", "copy + fsync (dd conv=fsync): the disk", disk.best, cpu=disk.cpu)
    note = f"floor = slowest of cp, hashlib, dd fsync ({name}): verified and durable"
    for spec, what in ((push, "push"), (pull, "pull")):
        row = ratio_row(
            "remotes", f"git model {what} {label} (directory)", spec, "floor", floor, 1.3
        )
        row.note = note
        yield row
        yield Row("remotes", f"  the same {what} against cp", spec.best, "cp", cp.best)
    remove(copy_dest)
    remove(repo)
    remove(store)


def remote_small_rows(b: Bench) -> Iterator[Row]:
    """Push and pull of `--files` small files to a directory remote, against DVC doing the
    same with the same files and its own directory remote, run alternately."""
    source = b.tmp / "data" / "remote-small"
    b.small_files(source)
    label = f"{b.nfiles} files of 4 KiB"
    repo, store = remote_repo(b, "remotes-small", source, "data")
    push = Spec(["git", "model", "push"], repo, setup=lambda: remove(store))

    def forget() -> None:
        remove(repo / ".git" / "model" / "objects")
        remove(repo / "data")

    pull = Spec(["git", "model", "pull"], repo, setup=forget)
    if shutil.which("dvc", path=b.env["PATH"]) is None:
        b.measure(push)
        b.measure(pull)
        yield Row("remotes", f"git model push {label}", push.best, cpu=push.cpu)
        yield Row("remotes", f"git model pull {label}", pull.best, cpu=pull.cpu)
        yield Row("remotes", "dvc push/pull", note="skipped: dvc not installed")
    else:
        dvc = b.repo("dvc-remotes-small", model=False)
        dvc_store = b.tmp / "dvc-store-small"
        b.sh("dvc", "init", "-q", cwd=dvc)
        b.sh("dvc", "config", "core.analytics", "false", cwd=dvc)
        b.sh("dvc", "remote", "add", "-d", "store", str(dvc_store), cwd=dvc)
        copy_in(source, dvc / "data")
        b.sh("dvc", "add", "-q", "data", cwd=dvc)
        dvc_push = Spec(["dvc", "push", "-q"], dvc, setup=lambda: remove(dvc_store))

        def dvc_forget() -> None:
            remove(dvc / ".dvc" / "cache")
            remove(dvc / "data")

        dvc_pull = Spec(["dvc", "pull", "-q"], dvc, setup=dvc_forget)
        b.measure(push, dvc_push)
        b.measure(pull, dvc_pull)
        for what, mine, theirs in (("push", push, dvc_push), ("pull", pull, dvc_pull)):
            yield Row("remotes", f"dvc {what} {label}", theirs.best, cpu=theirs.cpu)
            yield ratio_row(
                "remotes", f"git model {what} {label}", mine, f"dvc {what}", theirs.best, 0.5
            )
        remove(dvc)
        remove(dvc_store)
    remove(repo)
    remove(store)


# -- the git host's LFS storage (opt-in: --only lfs; needs the test extras) ---------------------


def _server(b: Bench, cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        cmd,
        env=b.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            time.sleep(0.5)  # the port opens a moment before the app answers
            return proc
        time.sleep(0.1)
    raise SystemExit(f"bench: {' '.join(cmd)} did not start")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@section("lfs", default=False)
def bench_lfs(b: Bench) -> Iterator[Row]:
    """Push and pull through a Git LFS server (giftless on loopback, tests/lfs_server.py)
    against the same through a directory remote (1 GiB) and moto's S3 server (small files)."""
    try:
        import giftless  # noqa: F401
        import moto  # noqa: F401
    except ImportError:
        yield skipped("lfs", "push/pull through an LFS server (pip install -e '.[test]')")
        return
    lfs_port, s3_port = _free_port(), _free_port()
    storage = b.tmp / "lfs-storage"
    script = Path(__file__).resolve().parent.parent / "tests" / "lfs_server.py"
    servers = [
        _server(b, [sys.executable, str(script), str(lfs_port), str(storage)], lfs_port),
        _server(
            b, [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)], s3_port
        ),
    ]
    lfs_url = f"http://127.0.0.1:{lfs_port}/team/models.git/info/lfs"
    b.env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        NO_PROXY="127.0.0.1",
    )
    try:
        yield from _lfs_large(b, lfs_url, storage)
        yield from _lfs_small(b, lfs_url, storage, s3_port)
    finally:
        for proc in servers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
            proc.wait()
        remove(storage)


def _pair(b: Bench, repo: Path, rel: str, remote: str) -> tuple[Spec, Spec]:
    """push and pull of `rel` to/from `remote`; the caller's setup empties the remote."""

    def forget() -> None:
        remove(repo / ".git" / "model" / "objects")
        remove(repo / rel)
        os.sync()  # the pushes before left GiBs for the disk: no pull pays for their writeback

    push = Spec(["git", "model", "push", remote], repo)
    pull = Spec(["git", "model", "pull", remote], repo, setup=forget)
    return push, pull


def _lfs_large(b: Bench, lfs_url: str, storage: Path) -> Iterator[Row]:
    label = f"{b.size / GiB:g} GiB"
    repo, store = remote_repo(b, "lfs-large", b.data_file("model.bin"), "model.bin")
    b.sh("git", "model", "remote", "add", "lfs", lfs_url, cwd=repo)
    push, pull = _pair(b, repo, "model.bin", "store")
    push.setup = lambda: remove(store)
    lpush, lpull = _pair(b, repo, "model.bin", "lfs")
    lpush.setup = lambda: remove(storage / "team")
    b.measure(push, lpush)
    b.measure(pull, lpull)
    for what, mine, base in (("push", lpush, push), ("pull", lpull, pull)):
        yield Row("lfs", f"git model {what} {label} (directory)", base.best, cpu=base.cpu)
        yield ratio_row(
            "lfs", f"git model {what} {label} (LFS server)", mine, "directory", base.best, 1.5
        )
    remove(repo)
    remove(store)


def _lfs_small(b: Bench, lfs_url: str, storage: Path, s3_port: int) -> Iterator[Row]:
    source = b.tmp / "data" / "lfs-small"
    b.small_files(source)
    label = f"{b.nfiles} files of 4 KiB"
    repo, _ = remote_repo(b, "lfs-small", source, "data")
    b.sh("git", "model", "remote", "add", "lfs", lfs_url, cwd=repo)
    b.sh("git", "model", "remote", "add", "s3", "s3://bench/run0", cwd=repo)
    b.sh("git", "config", "model.remote.s3.endpointurl", f"http://127.0.0.1:{s3_port}", cwd=repo)
    b.sh("git", "config", "model.remote.s3.region", "us-east-1", cwd=repo)
    b.sh(
        sys.executable,
        "-c",
        "import boto3,sys; boto3.client('s3', endpoint_url=sys.argv[1]).create_bucket(Bucket='bench')",
        f"http://127.0.0.1:{s3_port}",
        cwd=repo,
    )
    runs = itertools.count(1)
    push, pull = _pair(b, repo, "data", "s3")
    push.setup = lambda: (
        b.sh(  # a fresh prefix: an empty remote for each push
            "git", "config", "model.remote.s3.url", f"s3://bench/run{next(runs)}", cwd=repo
        )
        and None
    )
    lpush, lpull = _pair(b, repo, "data", "lfs")
    lpush.setup = lambda: remove(storage / "team")
    b.measure(push, lpush)
    b.measure(pull, lpull)
    for what, mine, base in (("push", lpush, push), ("pull", lpull, pull)):
        yield Row("lfs", f"git model {what} {label} (S3, moto)", base.best, cpu=base.cpu)
        yield ratio_row("lfs", f"git model {what} {label} (LFS server)", mine, "S3", base.best, 1.5)
    remove(repo)


# -- compress: bytes on the remote and transfer times, model.compress auto against off ------


def text_dataset(folder: Path, shards: int) -> Path:
    """Text training data from the data sets scikit-learn ships (iris, wine, breast cancer,
    diabetes, digits, linnerud), each written as CSV and as JSON lines, `shards` times with
    the rows in another order each time (so each shard is its own object, compressed alone,
    as the same data would be in a real sharded data set)."""
    import csv
    import io
    import json
    import random

    import sklearn.datasets as sk

    folder.mkdir(parents=True)
    for name in ("iris", "wine", "breast_cancer", "diabetes", "digits", "linnerud"):
        bunch = getattr(sk, f"load_{name}")()
        names = [str(n) for n in bunch.feature_names] + ["target"]
        rows = [[*x, t] for x, t in zip(bunch.data.tolist(), bunch.target.tolist())]
        for shard in range(shards):
            random.Random(shard).shuffle(rows)
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(names)
            writer.writerows(rows)
            (folder / f"{name}-{shard:03d}.csv").write_text(out.getvalue())
            lines = "".join(json.dumps(dict(zip(names, r))) + "\n" for r in rows)
            (folder / f"{name}-{shard:03d}.jsonl").write_text(lines)
    return folder


def trained_weights(folder: Path) -> tuple[Path, Path]:
    """The weights of a small MLP trained by scikit-learn on its digits, as safetensors:
    fp32, and bf16 (rounded to nearest even; stored as U16, the same bytes as a BF16
    tensor, since NumPy has no bf16 type)."""
    import warnings

    import numpy as np
    from safetensors.numpy import save_file
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    x, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged: a few epochs are enough here
        mlp = MLPClassifier(hidden_layer_sizes=(512, 512), max_iter=4, random_state=0)
        mlp.fit(x / 16, y)
    fp32 = {f"layer{i}.weight": w.astype(np.float32) for i, w in enumerate(mlp.coefs_)}
    fp32 |= {f"layer{i}.bias": w.astype(np.float32) for i, w in enumerate(mlp.intercepts_)}
    bf16 = {}
    for key, value in fp32.items():
        bits = value.view(np.uint32)
        bf16[key] = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    folder.mkdir(parents=True)
    save_file(fp32, str(folder / "fp32.safetensors"))
    save_file(bf16, str(folder / "bf16.safetensors"))
    return folder / "fp32.safetensors", folder / "bf16.safetensors"


class MotoS3:
    """moto's S3 server on 127.0.0.1 for the bench (None where moto is not installed)."""

    def __init__(self, b: Bench) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        creds = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
        b.env.update(creds, AWS_DEFAULT_REGION="us-east-1", NO_PROXY="127.0.0.1")
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=b.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import boto3

        self.s3 = boto3.client(
            "s3", endpoint_url=self.url, region_name="us-east-1", **_boto_creds(creds)
        )
        for _ in range(200):
            with contextlib.suppress(Exception):
                self.s3.list_buckets()
                return
            time.sleep(0.05)
        raise SystemExit("bench: moto server did not start")

    def bucket(self, name: str) -> str:
        self.s3.create_bucket(Bucket=name)
        return f"s3://{name}/store"

    def keys(self, url: str) -> list[tuple[str, int]]:
        bucket = url.split("/")[2]
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [(o["Key"], o["Size"]) for page in pages for o in page.get("Contents", [])]

    def empty(self, url: str) -> None:
        bucket = url.split("/")[2]
        for key, _ in self.keys(url):
            self.s3.delete_object(Bucket=bucket, Key=key)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def _boto_creds(env: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }


def stored_bytes(store: str, s3: MotoS3 | None) -> int:
    if store.startswith("s3://"):
        assert s3 is not None
        return sum(size for key, size in s3.keys(store) if "/objects/" in key)
    return sum(p.stat().st_size for p in Path(store, "objects").glob("*/*"))


@section("compress", default=False)
def bench_compress(b: Bench) -> Iterator[Row]:
    """Issue 18: bytes on the remote for text, bf16 and fp32 data, and push/pull times with
    model.compress = auto against off ("today": raw objects), on a directory and moto S3."""
    if not b.has_command("push"):
        yield skipped("compress", "bytes on the remote")
        return
    try:
        s3: MotoS3 | None = MotoS3(b)
    except ImportError:
        s3 = None
        yield Row("compress", "S3 remote", note="skipped: moto/boto3 not installed")
    data = b.tmp / "data" / "compress"
    shards = 4 if b.args.quick else 16
    text = text_dataset(data / "text", shards)
    fp32, bf16 = trained_weights(data / "weights")
    try:
        kinds = ["dir", "s3"] if s3 else ["dir"]
        for label, source, rel, limit in (
            (f"text (sklearn data sets as CSV + JSONL, {shards} shards)", text, "data", 0.35),
            ("bf16 weights (sklearn MLP, safetensors)", bf16, "bf16.safetensors", 0.70),
            ("fp32 weights (sklearn MLP, safetensors)", fp32, "fp32.safetensors", 0.90),
        ):
            yield from compress_ratio_rows(b, s3, kinds, label, source, rel, limit)
        yield from compress_time_rows(b, s3, "dir", b.data_file("model.bin"), "random", 1.05)
        if s3:
            yield from compress_time_rows(b, s3, "s3", text, "text", 1.0)
            yield from compress_time_rows(b, s3, "s3", b.data_file("model.bin"), "random", 1.05)
    finally:
        if s3:
            s3.stop()


def compress_repo(b: Bench, name: str, source: Path, rel: str) -> Path:
    repo = b.repo(name)
    place(source, repo / rel)
    kind = "weights" if rel.endswith((".safetensors", ".bin")) else "data"
    b.sh("git", "model", "add", rel, "--kind", kind, cwd=repo)
    b.sh("git", "commit", "-q", "-m", "v1", cwd=repo)
    return repo


def add_remote(b: Bench, s3: MotoS3 | None, repo: Path, name: str, kind: str) -> str:
    if kind == "s3":
        assert s3 is not None
        url = s3.bucket(f"{repo.name}-{name}".lower().replace("_", "-"))
        b.sh("git", "model", "remote", "add", name, url, cwd=repo)
        b.sh("git", "config", f"model.remote.{name}.endpointurl", s3.url, cwd=repo)
        return url
    url = str(b.tmp / f"store-{repo.name}-{name}")
    b.sh("git", "model", "remote", "add", name, url, cwd=repo)
    return url


def compress_ratio_rows(
    b: Bench, s3: MotoS3 | None, kinds: list[str], label: str, source: Path, rel: str, limit: float
) -> Iterator[Row]:
    repo = compress_repo(b, f"ratio-{rel.split('.')[0]}", source, rel)
    raw = sum(p.stat().st_size for p in repo.joinpath(".git/model/objects").glob("*/*"))
    for kind in kinds:
        url = add_remote(b, s3, repo, kind, kind)
        b.sh("git", "model", "push", kind, cwd=repo)
        stored = stored_bytes(url, s3)
        ok = stored <= limit * raw
        yield Row(
            "compress",
            f"{label}: on {kind}",
            stored / MiB,
            f"raw {raw / MiB:.1f} MiB",
            target=f"≤ {limit:g}×",
            ok=ok,
            note=f"{stored / raw:.3f}× of the raw bytes",
            unit="MiB",
        )
    remove(repo)


def compress_time_rows(
    b: Bench, s3: MotoS3 | None, kind: str, source: Path, label: str, limit: float
) -> Iterator[Row]:
    """push with auto and off into an emptied remote, alternately; pull from a remote that
    auto filled and from one that off filled (today's layout), alternately."""
    rel = "data" if source.is_dir() else "model.bin"
    repo = compress_repo(b, f"time-{label}-{kind}", source, rel)
    target = add_remote(b, s3, repo, "target", kind)
    filled = {}
    for mode in ("auto", "off"):
        filled[mode] = add_remote(b, s3, repo, mode, kind)
        b.sh("git", "-c", f"model.compress={mode}", "model", "push", mode, cwd=repo)

    def empty() -> None:
        if s3 and kind == "s3":
            s3.empty(target)
        else:
            remove(Path(target))
        os.sync()  # each run starts with the disk's writeback caught up: auto and off alike

    def forget() -> None:
        remove(repo / ".git" / "model" / "objects")
        remove(repo / rel)
        os.sync()

    push = {
        mode: Spec(
            ["git", "-c", f"model.compress={mode}", "model", "push", "target"], repo, setup=empty
        )
        for mode in ("auto", "off")
    }
    pull = {
        mode: Spec(["git", "model", "pull", mode], repo, setup=forget) for mode in ("auto", "off")
    }
    b.measure(push["auto"], push["off"], swap=True)
    b.measure(pull["auto"], pull["off"], swap=True)
    size = sum(p.stat().st_size for p in repo.joinpath(".git/model/objects").glob("*/*"))
    what = f"{label} {size / MiB:.0f} MiB ({kind})"
    for verb, specs in (("push", push), ("pull", pull)):
        off = specs["off"]
        yield Row("compress", f"{verb} {what}, compress off", off.best, cpu=off.cpu)
        row = ratio_row(
            "compress", f"{verb} {what}", specs["auto"], "off", specs["off"].best, limit
        )
        row.note = "auto against off (raw objects, as before)"
        yield row
    remove(repo)
    for url in (target, *filled.values()):
        if not url.startswith("s3://"):
            remove(Path(url))


# -- scale: memory stays flat whatever the size (reliability; opt-in: --only scale) ---------


# -- inside the weights: model files stored by parts ------------------------------------------

CHECKPOINTS = 5
TENSORS = 200  # tensors of one checkpoint; 10% of them change from one checkpoint to the next


def write_checkpoint(path: Path, size: int, dtype: str, trained: dict[int, int]) -> None:
    """A safetensors file of TENSORS equal tensors filling `size` bytes, written a tensor at a
    time (memory stays flat): tensor i holds normal floats drawn from the checkpoint that last
    trained it (`trained[i]`), or from its own seed if none did."""
    import json

    import numpy as np

    itemsize = 4 if dtype == "F32" else 2
    per = size // TENSORS // itemsize
    header: dict[str, object] = {}
    for i in range(TENSORS):
        start = i * per * itemsize
        header[f"layers.{i}.weight"] = {
            "dtype": dtype,
            "shape": [per],
            "data_offsets": [start, start + per * itemsize],
        }
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text)
        for i in range(TENSORS):
            values = np.random.default_rng([trained[i], i] if i in trained else 1000 + i)
            floats = values.standard_normal(per, dtype=np.float32)
            if dtype == "BF16":
                floats = (floats.view(np.uint32) >> 16).astype(np.uint16)
            f.write(floats.tobytes())
        os.fsync(f.fileno())


def cache_bytes(repo: Path) -> int:
    objects = repo / ".git" / "model" / "objects"
    return sum(p.stat().st_size for p in objects.rglob("*") if p.is_file())


@section("tensors")
def bench_tensors(b: Bench) -> Iterator[Row]:
    """Five checkpoints of a `--size-gib` safetensors model (F32 and BF16), 10% of the
    tensors changed from each to the next: cache storage, add, checkout between checkpoints,
    push, diff and diff --stats, against hashlib, cp and the whole-file path."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        yield Row("tensors", "model files stored by parts", note="skipped: numpy not installed")
        return
    for dtype in ("BF16", "F32"):
        yield from tensor_rows(b, dtype)


def tensor_rows(b: Bench, dtype: str) -> Iterator[Row]:
    sec = dtype.lower()
    label = f"{b.size / GiB:g} GiB {dtype} safetensors"
    folder = b.tmp / "data" / f"checkpoints-{dtype}"
    folder.mkdir(parents=True)
    rng = __import__("random").Random(7)
    files = []
    trained: dict[int, int] = {}
    for n in range(CHECKPOINTS):
        if n:  # each checkpoint trains another 10% of the tensors
            trained.update((i, n) for i in rng.sample(range(TENSORS), TENSORS // 10))
        path = folder / f"ckpt{n + 1}.safetensors"
        write_checkpoint(path, b.size, dtype, trained)
        files.append(path)
    size = files[0].stat().st_size
    repo = b.repo(f"tensors-{dtype}")
    store = b.tmp / f"store-tensors-{dtype}"

    # add: the first checkpoint into an empty cache, beside a SHA-256 pass and cp
    place(files[0], repo / "model.safetensors")
    hashed = Spec([sys.executable, "-c", HASH_SCRIPT, str(files[0])], b.tmp)
    copy_dest = b.tmp / "cp-tensors"
    cp = Spec(
        ["cp", str(files[0]), str(copy_dest)],
        b.tmp,
        setup=lambda: remove(copy_dest),
        after=lambda: fsync_file(copy_dest),
    )
    add = Spec(["git", "model", "add", "model.safetensors"], repo, setup=reset_model_repo(b, repo))
    whole = b.repo(f"tensors-whole-{dtype}")  # today's path: the same bytes, not recognised
    opaque = b.data_file("model.bin")
    place(opaque, whole / "model.bin")
    add_whole = Spec(["git", "model", "add", "model.bin"], whole, setup=reset_model_repo(b, whole))
    b.measure(hashed, cp, add, add_whole)
    yield Row(sec, f"hashlib sha256 pass over {label}", hashed.best, cpu=hashed.cpu)
    yield Row(sec, f"cp {label}", cp.best, cpu=cp.cpu)
    yield ratio_row(sec, f"git model add {label} (by parts)", add, "hashlib", hashed.best, 1.25)
    yield Row(sec, "  git model add, whole-file path", add_whole.best, "hashlib", hashed.best)
    remove(whole)
    specs = [add]

    # five checkpoints committed and pushed one after the other
    b.sh("git", "model", "remote", "add", "store", str(store), "--default", cwd=repo)
    b.sh("git", "model", "add", "model.safetensors", cwd=repo)
    b.sh("git", "commit", "-q", "-m", "ckpt1", cwd=repo)
    b.sh("git", "tag", "ckpt1", cwd=repo)
    b.sh("git", "model", "push", cwd=repo)
    pushed = []
    for n, path in enumerate(files[1:], start=2):
        remove(repo / "model.safetensors")
        place(path, repo / "model.safetensors")
        b.sh("git", "model", "add", "model.safetensors", cwd=repo)
        b.sh("git", "commit", "-q", "-m", f"ckpt{n}", cwd=repo)
        b.sh("git", "tag", f"ckpt{n}", cwd=repo)
        out = b.sh("git", "model", "push", "--json", cwd=repo)
        pushed.append(__import__("json").loads(out)["bytes"])
    stored = cache_bytes(repo)
    naive = CHECKPOINTS * size
    yield Row(
        sec,
        f"cache storage of {CHECKPOINTS} checkpoints (naive {naive / GiB:.2f} GiB)",
        stored / naive,
        target="≤ 0.30×",
        ok=stored / naive <= 0.30,
        unit="×",
        note="ideal for this workload: 0.28×",
    )
    share = pushed[0] / size
    yield Row(
        sec,
        "push of checkpoint 2 after 1: bytes moved / file",
        share,
        target="≤ 0.12×",
        ok=share <= 0.12,
        unit="×",
    )

    # git checkout between two checkpoints (the hook rebuilds the file from its parts)
    def at(tag: str) -> Callable[[], None]:
        return lambda: b.sh("git", "checkout", "-q", tag, cwd=repo)

    target = repo / "model.safetensors"
    checkout = Spec(
        ["git", "checkout", "-q", "ckpt1"],
        repo,
        setup=at("ckpt2"),
        after=lambda: fsync_file(target),
    )
    b.measure(checkout, cp, hashed)
    slower, base = max((cp.best, "cp"), (hashed.best, "hashlib"))
    yield ratio_row(sec, "git checkout ckpt2 -> ckpt1", checkout, base, slower, 1.3)
    specs.append(checkout)

    # diff: names from the listings alone (empty cache); --stats reads both versions
    objects = repo / ".git" / "model" / "objects"
    aside = b.tmp / f"objects-aside-{dtype}"
    os.rename(objects, aside)
    diff = Spec(["git", "model", "diff", "ckpt1", "ckpt2"], repo)
    b.measure(diff)
    os.rename(aside, objects)
    yield Row(
        sec,
        "git model diff ckpt1 ckpt2 (empty cache)",
        diff.best,
        target="≤ 1 s",
        ok=diff.best <= 1.0,
        cpu=diff.cpu,
    )
    stats = Spec(["git", "model", "diff", "ckpt1", "ckpt2", "--stats"], repo)
    read_both = Spec(["cat", str(files[0]), str(files[1])], b.tmp)
    b.measure(stats, read_both)
    yield ratio_row(sec, "git model diff --stats ckpt1 ckpt2", stats, "cat both", read_both.best, 2)
    peak = true_peak(b, [stats, diff, checkout, add])  # (add's set-up empties the cache: last)
    yield Row(sec, "peak memory of git model", peak, target="< 100 MiB", ok=peak < 100, unit="MiB")
    remove(copy_dest)
    remove(repo)
    remove(store)
    for path in files:
        path.unlink()


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


def true_peak(b: Bench, specs: list[Spec]) -> float:
    """Peak RSS (MiB) of the specs' commands. A child forked from this process starts from
    this process's own high-water mark (Linux keeps the pre-exec one in ru_maxrss), so when
    what was measured is at that floor (a section before this one grew the bench, as the
    compress section's scikit-learn does), each command runs once more, set-up included,
    through `peak_run`'s small waiting process."""
    peak = max(s.peak_kib for s in specs) / 1024
    if peak > resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:
        return peak
    peak = 0.0
    for spec in specs:
        if spec.setup:
            spec.setup()
        peak = max(peak, peak_run(b, spec.cmd, spec.cwd)[2])
        if spec.after:
            spec.after()
    return peak


PEAK_SCRIPT = """\
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(usage.ru_maxrss, usage.ru_utime + usage.ru_stime, file=sys.stderr)
sys.exit(code)
"""


def peak_run(b: Bench, cmd: list[str], cwd: Path) -> tuple[float, float, float]:
    """Wall time, CPU time and peak RSS (MiB) of one run of `cmd`, through a small Python
    process that waits for it: a child forked straight from this process would report this
    process's own size as its peak (Linux keeps the pre-exec high-water mark in ru_maxrss),
    so what is measured has a floor of that small process's size (about 10 MiB)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, *cmd], cwd=cwd, env=b.env, capture_output=True
    )
    elapsed = time.perf_counter() - start
    *lines, last = proc.stderr.decode(errors="replace").rstrip("\n").split("\n")
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} exited {proc.returncode}:\n" + "\n".join(lines))
    kib, cpu = last.split()
    return elapsed, float(cpu), int(kib) / 1024


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
    overhead = hooked.best - plain.best
    yield Row(
        "scale",
        "no-op commit hook overhead",
        overhead,
        "git status",
        git_status.best,
        "≤ 3×",
        overhead <= 3 * git_status.best,
        f"with hooks {fmt_value(hooked.best)} − plain {fmt_value(plain.best)}",
        cpu=hooked.cpu - plain.cpu,
    )
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


# -- the table ------------------------------------------------------------------------------


def fmt_value(value: float | None, unit: str = "s") -> str:
    if value is None:
        return ""
    if unit == "×":
        return f"{value:.3f}×"
    if unit != "s":
        return f"{value:.1f} {unit}"
    return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"


COLUMNS = "{:<9}{:<48}{:>9} {:>8}  {:<30}{:>7}  {:<10}{:<6}{}"


def print_row(row: Row) -> None:
    result = {None: "", True: "pass", False: "FAIL"}[row.ok]
    ratio = f"{row.ratio:.2f}×" if row.ratio is not None and row.unit == "s" else ""
    base = f"{row.baseline} {fmt_value(row.base_seconds)}".strip()
    value = fmt_value(row.seconds, row.unit)
    cpu = fmt_value(row.cpu)
    print(
        COLUMNS.format(row.section, row.what, value, cpu, base, ratio, row.target, result, row.note)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="256 MiB, 2,000 files, 3 runs")
    parser.add_argument("--size-gib", type=float, help="size of the large file (default 1)")
    parser.add_argument("--files", type=int, help="number of 4 KiB files (default 10000)")
    parser.add_argument("--runs", type=int, help="timed runs per measurement (default 5)")
    parser.add_argument(
        "--only",
        help=f"comma-separated sections: {', '.join(SECTIONS)} (opt-in: {', '.join(OPT_IN)})",
    )
    parser.add_argument("--scale-files", type=int, help="scale: files (default 100000)")
    parser.add_argument("--scale-gib", type=float, help="scale: size of the big file (default 10)")
    parser.add_argument(
        "--scale-remote",
        choices=("s3", "dir"),
        default="s3",
        help="scale: the remote, moto's S3 server (default) or a directory",
    )
    parser.add_argument("--dir", help="where to make the temp folder (default: the system's)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args(argv)
    args.size_gib = args.size_gib or (0.25 if args.quick else 1.0)
    args.files = args.files or (2000 if args.quick else 10_000)
    args.runs = max(3, args.runs or (3 if args.quick else 5))
    args.scale_files = args.scale_files or (10_000 if args.quick else 100_000)
    args.scale_gib = args.scale_gib or (1.0 if args.quick else 10.0)
    names = args.only.split(",") if args.only else [n for n in SECTIONS if n not in OPT_IN]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    tmp = Path(tempfile.mkdtemp(prefix="git-model-bench-", dir=args.dir))
    need = args.size_gib * GiB * 4 + args.files * 4096 * 6
    if "scale" in names:  # work tree, cache and remote copies, and some room
        need += args.scale_gib * GiB * 3.2 + args.scale_files * 4096 * 4
    if shutil.disk_usage(tmp).free < need:
        shutil.rmtree(tmp)
        raise SystemExit(f"bench: needs {need / GiB:.1f} GiB free in {tmp.parent}; use --dir")
    global TRASH
    TRASH = tmp / "trash"
    TRASH.mkdir()
    bench = Bench(args, tmp)
    which = bench.sh("git", "model", "--version", cwd=tmp).strip()
    print(
        f"{which} ({shutil.which('git-model', path=bench.env['PATH'])}); best of {args.runs} "
        f"runs; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        COLUMNS.format(
            "section", "measurement", "time", "cpu", "baseline", "ratio", "target", "result", ""
        )
    )
    rows: list[Row] = []
    try:
        for name in names:
            for row in SECTIONS[name](bench):
                print_row(row)
                rows.append(row)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    failed = [r for r in rows if r.ok is False]
    print(
        f"{sum(r.ok is True for r in rows)} targets passed, {len(failed)} failed "
        f"(load average now {os.getloadavg()[0]:.1f})"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
