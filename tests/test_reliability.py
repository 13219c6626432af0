"""Faults injected for real: kill -9 mid-command, full disks, denied writes, two writers.

After every fault: the cache holds only objects that hash to their names, the manifest is the
old or the new one (never half-written), every artifact holds its old or new bytes, and
rerunning the command finishes the job.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import faults
import pytest
from conftest import Shell, tmpfs
from faults import FaultRecorder, kill_after, timed

INJECT = str(Path(__file__).parent / "inject")


def cache_objects(sh: Shell) -> list[Path]:
    return faults.cache_objects(sh.cwd)


def assert_cache_sound(sh: Shell) -> None:
    faults.assert_cache_sound(sh.cwd)


def make_dataset(sh: Shell, files: int = 120, size: int = 64 << 10, big: int = 24 << 20) -> None:
    for i in range(files):
        sh.write(f"data/part-{i:04d}.bin", os.urandom(size))
    sh.write("model.bin", os.urandom(big))


def test_kill_9_during_add_then_rerun(repo: Shell, fault: FaultRecorder) -> None:
    make_dataset(repo)
    manifest_before = repo.read(".gitmodel/manifest.toml")
    duration = timed(repo, "add", "data", "model.bin")
    repo.model("rm", "data", "model.bin")
    for obj in cache_objects(repo):
        obj.chmod(0o644)
        obj.unlink()
    killed = 0
    for fraction in (0.05, 0.2, 0.4, 0.6, 0.8, 0.95):
        code = kill_after(["add", "data", "model.bin"], repo.cwd, duration * fraction)
        killed += code == -signal.SIGKILL
        assert_cache_sound(repo)
        out = repo.model("status", check=False)  # the manifest parses: old or new
        assert "Traceback" not in out.stderr and out.returncode == 0
        manifest = repo.read(".gitmodel/manifest.toml")
        assert manifest == manifest_before or b"model.bin" in manifest
        lock = repo.cwd / ".git" / "index.lock"
        if lock.exists():  # killed inside its `git add`: git's lock stays, as after git itself
            out = repo.model("add", "data", "model.bin", check=False)
            assert out.returncode == 1 and "index.lock exists" in out.stderr
            assert "delete that file and rerun" in out.stderr and "Traceback" not in out.stderr
            lock.unlink()  # what the message says to do: no git is running
    assert killed >= 1
    repo.model("add", "data", "model.bin")
    assert_cache_sound(repo)
    status = repo.model("status").stdout
    assert "modified" not in status and "missing" not in status
    fault.row(
        "kill -9 during `git model add` (120 files + 24 MiB)",
        "SIGKILL at 6 points across the run",
        "(killed) — rerun: " + status.splitlines()[0],
    )


def test_kill_9_during_checkout_then_rerun(repo: Shell, fault: FaultRecorder) -> None:
    make_dataset(repo)
    repo.model("add", "data", "model.bin")
    repo.git("commit", "-q", "-m", "v1")
    v1 = {p: repo.read(p) for p in ["model.bin", "data/part-0000.bin", "data/part-0119.bin"]}
    make_dataset(repo)
    repo.model("add", "data", "model.bin")
    repo.git("commit", "-q", "-m", "v2")
    v2 = {p: repo.read(p) for p in v1}
    duration = timed(repo, "checkout", "HEAD~1")
    repo.model("checkout", "HEAD")
    for fraction in (0.1, 0.3, 0.5, 0.7, 0.9):
        kill_after(["checkout", "HEAD~1"], repo.cwd, duration * fraction)
        assert_cache_sound(repo)
        for path in v1:
            assert repo.read(path) in (v1[path], v2[path]), path
        repo.model("checkout", "HEAD")
        assert {p: repo.read(p) for p in v1} == v2
    out = repo.model("checkout", "HEAD~1")
    assert {p: repo.read(p) for p in v1} == v1
    assert list(repo.cwd.rglob(".*.gitmodel")) == []  # temp files of the killed runs are gone
    fault.row(
        "kill -9 during `git model checkout`",
        "SIGKILL at 5 points across the run",
        "(killed) — rerun: " + out.stdout,
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    yield from tmpfs(tmp_path, "6m")


def test_full_disk_during_add(small_disk: Path, fault: FaultRecorder) -> None:
    sh = Shell(small_disk)
    sh.git("init", "-q")
    sh.model("init")
    sh.git("commit", "-q", "-m", "setup")
    before = sh.read(".gitmodel/manifest.toml")
    payload = os.urandom(4 << 20)
    sh.write("model.bin", payload)  # 4 MiB in a 6 MiB disk: the cache copy cannot fit
    out = sh.model("add", "model.bin", check=False)
    assert out.returncode == 1
    assert "no space left" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert sh.read(".gitmodel/manifest.toml") == before
    assert sh.read("model.bin") == payload
    assert cache_objects(sh) == [] and not list((small_disk / ".git/model/tmp").iterdir())
    fault.row(
        "disk full while storing in the cache", "`git model add` on a 6 MiB tmpfs", out.stderr
    )


def test_full_disk_during_checkout(small_disk: Path, fault: FaultRecorder) -> None:
    sh = Shell(small_disk)
    sh.git("init", "-q")
    sh.model("init")
    sh.write("model.bin", os.urandom(2 << 20))
    sh.model("add", "model.bin")
    sh.git("commit", "-q", "-m", "v1")
    local = os.urandom(2 << 20)
    sh.write("model.bin", local)  # the cache keeps it too: 4 MiB used, 2 MiB free
    sh.write("filler", os.urandom(1 << 20))
    out = sh.model("checkout", check=False)
    assert out.returncode == 1 and "no space left" in out.stderr
    assert sh.read("model.bin") == local  # untouched
    assert [p for p in small_disk.iterdir() if p.name.startswith(".model.bin.")] == []
    fault.row(
        "disk full during checkout (saving the local edit first)",
        "`git model checkout` on a full tmpfs",
        out.stderr,
    )


@pytest.mark.parametrize(
    "op, needle, where",
    [
        ("open", "/model/tmp/", "cache"),
        ("replace", "/model/objects/", "cache"),
    ],
)
def test_permission_denied_in_cache(
    repo: Shell, fault: FaultRecorder, op: str, needle: str, where: str
) -> None:
    repo.write("model.bin", b"weights" * 1000)
    before = repo.read(".gitmodel/manifest.toml")
    env = {
        "GIT_MODEL_INJECT": f"{op}:{needle}:EACCES",
        "PYTHONPATH": os.pathsep.join(filter(None, [INJECT, os.environ.get("PYTHONPATH")])),
    }
    out = repo.model("add", "model.bin", check=False, env=env)
    assert out.returncode == 1 and "permission denied" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert repo.read(".gitmodel/manifest.toml") == before
    assert cache_objects(repo) == []
    repo.model("add", "model.bin")  # once fixed, the rerun works
    fault.row(
        f"permission denied writing the {where} ({op})", "OSError(EACCES) injected", out.stderr
    )


def test_permission_denied_in_work_tree(repo: Shell, fault: FaultRecorder) -> None:
    repo.write("models/model.bin", b"v1")
    repo.model("add", "models/model.bin")
    repo.git("commit", "-q", "-m", "v1")
    (repo.cwd / "models/model.bin").unlink()
    env = {  # every new file in models/: an unnamed one (O_TMPFILE) or a temp name
        "GIT_MODEL_INJECT": f"open:{repo.cwd}/models:EACCES",
        "PYTHONPATH": os.pathsep.join(filter(None, [INJECT, os.environ.get("PYTHONPATH")])),
    }
    out = repo.model("checkout", check=False, env=env)
    assert out.returncode == 1 and "permission denied" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert os.listdir(repo.cwd / "models") == []
    repo.model("checkout")
    assert repo.read("models/model.bin") == b"v1"
    fault.row("permission denied writing the work tree", "OSError(EACCES) injected", out.stderr)


def test_two_writers_at_once(repo: Shell, fault: FaultRecorder) -> None:
    repo.write("a/x.bin", os.urandom(8 << 20))
    repo.write("b/y.bin", os.urandom(8 << 20))
    procs = [
        subprocess.Popen(["git", "model", "add", d], cwd=repo.cwd, stderr=subprocess.PIPE)
        for d in ("a", "b")
    ]
    results = [p.wait() for p in procs]
    assert results == [0, 0], [p.stderr.read() for p in procs if p.stderr]
    manifest = repo.read(".gitmodel/manifest.toml").decode()
    assert "[artifacts.a]" in manifest and "[artifacts.b]" in manifest
    assert_cache_sound(repo)
    fault.row(
        "two `git model add` at once",
        "two processes started together",
        "both succeed; the second waits for the lock",
    )


def test_lock_timeout_and_readers_do_not_wait(repo: Shell, fault: FaultRecorder) -> None:
    repo.write("model.bin", b"w")
    lock = repo.cwd / ".git/model/lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)  # (as the lock does: the last holder's line is longer)
        os.write(fd, b"pid 4242: git model add\n")
        out = repo.git("-c", "model.lockTimeout=1", "model", "add", "model.bin", check=False)
        assert out.returncode == 1 and "another git-model process" in out.stderr
        assert "pid 4242" in out.stderr
        assert repo.model("status").returncode == 0  # reading does not take the lock
    finally:
        os.close(fd)
    repo.model("add", "model.bin")
    fault.row("another writer holds the lock", "flock held by the test", out.stderr)


def test_symlinked_directory_never_redirects_writes(
    repo: Shell, tmp_path: Path, fault: FaultRecorder
) -> None:
    repo.write("data/a.bin", b"a")
    repo.model("add", "data")
    repo.git("commit", "-q", "-m", "v1")
    outside = tmp_path / "outside"
    outside.mkdir()
    import shutil

    shutil.rmtree(repo.cwd / "data")
    os.symlink(outside, repo.cwd / "data")
    out = repo.model("checkout", check=False)
    assert list(outside.iterdir()) == []
    assert repo.read("data/a.bin") == b"a" and not (repo.cwd / "data").is_symlink()
    fault.row(
        "tracked directory replaced by a symlink leading outside",
        "`data -> /outside` then `git model checkout`",
        (out.stderr or out.stdout),
        "nothing; nothing written outside",
    )


def test_in_place_edit_of_a_hardlinked_artifact_is_detected(
    repo: Shell, fault: FaultRecorder
) -> None:
    repo.write("model.bin", b"original")
    repo.model("add", "model.bin")
    repo.git("commit", "-q", "-m", "v1")
    (repo.cwd / "model.bin").unlink()
    repo.git("-c", "model.linkType=hardlink", "model", "checkout")
    path = repo.cwd / "model.bin"
    assert (path.stat().st_nlink == 2 and not os.access(path, os.W_OK)) or os.geteuid() == 0
    path.chmod(0o644)
    with open(path, "r+b") as f:  # an editor that writes in place
        f.write(b"EDITED")
    out = repo.model("verify", check=False)
    assert out.returncode == 1 and "corrupt" in out.stdout
    status = repo.model("status").stdout
    assert "modified" in status or "not in cache" in status
    fault.row(
        "artifact edited in place in hardlink mode",
        "write through the hard link",
        out.stdout.splitlines()[0],
        "nothing committed; the object is quarantined",
    )


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("fault injection relies on Linux")


def test_temp_files_a_killed_writer_left_in_gitmodel_are_swept_by_the_next_writer(
    repo: Shell,
) -> None:
    """A listing or manifest is written to a temp file beside it and renamed; a writer killed
    in between leaves the temp file, which `git status` shows. The next writer of that file
    (under git-model's lock, so no other one runs) removes it."""
    repo.write("data/a.csv", b"1\n")
    repo.model("add", "data")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "data")
    left = [
        repo.write(".gitmodel/dirs/.data.tsv.k1ll3d.tmp", b"half a listing"),
        repo.write(".gitmodel/.manifest.toml.k1ll3d.tmp", b"half a manifest"),
    ]
    repo.write("data/b.csv", b"2\n")
    first = repo.git("commit", "-q", "-am", "more data", check=False)  # (artifacts only:
    assert "run the same git commit again" in first.stderr  # git's verdict came first)
    assert all(not p.exists() for p in left)
    repo.git("commit", "-q", "-am", "more data")
    assert repo.git("status", "--porcelain").stdout == ""
