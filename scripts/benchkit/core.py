"""The bench's machinery: rows, timed commands, the Bench (its environment, data and
repositories), the trash, and the section registry."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1 << 20
GiB = 1 << 30
TRASH: Path | None = None  # the run's trash folder: set by bench.py's main()
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
        if TRASH is None:  # (imported by another script: never the current directory)
            raise SystemExit("bench: benchkit.core.TRASH is not set")
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


def skipped(sec: str, what: str) -> Row:
    return Row(sec, what, note="skipped: command not available yet")


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


def fmt_value(value: float | None, unit: str = "s") -> str:
    if value is None:
        return ""
    if unit == "×":
        return f"{value:.3f}×"
    if unit != "s":
        return f"{value:.1f} {unit}"
    return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"
