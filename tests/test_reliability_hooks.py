"""Crashes and races around the hooks: kill -9 inside `git commit`'s pre-commit hook, and two
git-model processes on one repository while a commit or a checkout runs.

After a kill the cache holds only verified objects, the index's manifest is the old or the new
one, the work tree's artifacts keep their bytes (the hook only reads them), and the same
`git commit` run again records the change and gives the commit its note. Concurrent readers
never wait for a writer and never see a half-written manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Shell
from faults import FaultRecorder, assert_cache_sound, kill_group

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MANIFEST = ".gitmodel/manifest.toml"
INJECT = str(Path(__file__).parent / "inject")
FILES = 120


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process under `pid`, from /proc."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append((int(entry), cmdline.replace(b"\0", b" ").decode()))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def hook_process(root: int) -> int | None:
    """The `git-model hook pre-commit` process under the `git commit` process `root`."""
    for pid, cmdline in descendants(root):
        if "hook pre-commit" in cmdline:
            return pid
    return None


def start_commit(sh: Shell, message: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["git", "commit", "-q", "-m", message],
        cwd=sh.cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the whole commit can be killed
    )


def wait_for_hook(proc: subprocess.Popen[bytes]) -> tuple[int | None, float]:
    """The hook's pid once it has started (None if the commit ended first), and when."""
    while proc.poll() is None:
        pid = hook_process(proc.pid)
        if pid is not None:
            return pid, time.monotonic()
        time.sleep(0.002)
    return None, time.monotonic()


def new_version(sh: Shell, n: int) -> dict[str, bytes]:
    """Retrain: every data file and the weights get new bytes, and the training code changes."""
    files = {f"data/part-{i:04d}.bin": os.urandom(16 << 10) for i in range(FILES)}
    files["model.bin"] = os.urandom(16 << 20)
    for rel, data in files.items():
        sh.write(rel, data)
    sh.write("train.py", f"EPOCHS = {n}\n")
    sh.git("add", "train.py")
    return files


def expected_oids(files: dict[str, bytes]) -> tuple[str, str]:
    """(data, model.bin) oids as the manifest will give them: data's is its listing's hash."""
    rows = sorted((rel[len("data/") :], b) for rel, b in files.items() if rel.startswith("data/"))
    listing = "".join(f"{sha(b)}\t{len(b)}\t644\t{rel}\n" for rel, b in rows)
    return sha(listing.encode()), sha(files["model.bin"])


def oids_in(sh: Shell, rev: str) -> tuple[str, str]:
    manifest = tomllib.loads(sh.git("show", f"{rev}:{MANIFEST}").stdout)
    arts = manifest["artifacts"]
    return arts["data"]["oid"], arts["model.bin"]["oid"]


def version_at(sh: Shell, rev: str) -> str:
    return str(
        tomllib.loads(sh.git("show", f"{rev}:{MANIFEST}").stdout)["models"]["clf"]["version"]
    )


def versions_note(sh: Shell, rev: str) -> list[dict[str, str]]:
    out = sh.git("notes", "--ref=refs/notes/model", "show", rev, check=False).stdout
    return [r["models"] for r in map(json.loads, out.splitlines()) if r["type"] == "versions"]


@pytest.fixture
def trained(repo: Shell) -> Shell:
    """A model with a directory of data, weights and code, committed once."""
    new_version(repo, 0)
    repo.model("add", "data", "--model", "clf", "--kind", "data")
    repo.model("add", "model.bin", "--model", "clf")
    repo.model("add", "train.py", "--model", "clf", "--kind", "code")
    repo.git("commit", "-q", "-m", "v0")
    return repo


@pytest.mark.parametrize("target", ["hook", "group"])
def test_kill_9_during_the_pre_commit_hook_then_commit_again(
    trained: Shell, target: str, fault: FaultRecorder
) -> None:
    sh = trained
    new_version(sh, 1)
    proc = start_commit(sh, "v1")
    _, started = wait_for_hook(proc)
    assert proc.wait() == 0
    duration = time.monotonic() - started  # the hook, and git's little work after it
    landed = 0
    fractions = (0.15, 0.5, 0.85)
    for n, fraction in enumerate(fractions, start=2):
        old = oids_in(sh, "HEAD")
        head = sh.git("rev-parse", "HEAD").stdout
        files = new_version(sh, n)
        new = expected_oids(files)
        proc = start_commit(sh, f"v{n}")
        hook, _ = wait_for_hook(proc)
        time.sleep(duration * fraction)
        if target == "group":
            code = kill_group(proc)
        else:
            if hook is not None:
                with contextlib.suppress(ProcessLookupError):  # (it may be over already)
                    os.kill(hook, signal.SIGKILL)
            code = proc.wait()
        for lock in (".git/index.lock", ".git/HEAD.lock", ".git/refs/heads/main.lock"):
            if (sh.cwd / lock).exists():  # git's own lock, left by a `git add` the hook ran
                (sh.cwd / lock).unlink()  # or by git itself: git says to remove it, as here
        committed = sh.git("rev-parse", "HEAD").stdout != head
        landed += not committed

        assert_cache_sound(sh.cwd)
        assert oids_in(sh, "") in (old, new)  # the index's manifest: the old one or the new
        assert {rel: sh.read(rel) for rel in files} == files  # the hook never writes them
        out = sh.model("status", check=False)
        assert out.returncode == 0 and "Traceback" not in out.stderr
        if not committed:
            assert code != 0
            sh.git("commit", "-q", "-m", f"v{n}")
        elif not versions_note(sh, "HEAD"):  # killed after git made the commit, before its
            assert target == "group"  # post-commit: the same command gives it its note
            again = sh.git("commit", "-q", "-m", f"v{n}", check=False)
            notes_lock = sh.cwd / ".git/refs/notes/model.lock"
            if again.returncode != 0 and notes_lock.exists():  # killed inside post-commit's
                assert str(notes_lock) in again.stderr  # `git notes add`: git's lock is named,
                assert "if no git is running, delete that file" in again.stderr  # what to do
                notes_lock.unlink()
                again = sh.git("commit", "-q", "-m", f"v{n}", check=False)
            elif again.returncode != 0:  # git's own verdict, after the hook gave the note
                assert "nothing to commit" in again.stdout
            assert "the note its interrupted commit did not write" in again.stderr
        assert oids_in(sh, "HEAD") == new
        assert versions_note(sh, "HEAD") == [{"clf": version_at(sh, "HEAD")}]
    assert landed >= 1, "the kills should land inside the hook"
    assert_cache_sound(sh.cwd)
    assert sh.git("status", "--porcelain").stdout == ""
    who = "the hook process" if target == "hook" else "the whole `git commit` process group"
    fault.row(
        f"kill -9 of {who} during pre-commit ({FILES} files + 16 MiB changed)",
        f"SIGKILL at {len(fractions)} points across the hook",
        "(killed) — rerun: the same `git commit` records the change and its note",
    )


def test_git_killed_between_the_commit_and_its_post_commit(
    trained: Shell, fault: FaultRecorder
) -> None:
    sh = trained
    hooks = sh.cwd / ".git/hooks"
    shim = (hooks / "post-commit").read_bytes()
    (hooks / "post-commit").write_text("#!/bin/sh\nkill -9 $PPID\n")  # git dies right there
    new_version(sh, 1)
    killed = sh.git("commit", "-q", "-m", "v1", check=False)
    (hooks / "post-commit").write_bytes(shim)
    assert killed.returncode == -signal.SIGKILL
    assert oids_in(sh, "HEAD") == oids_in(sh, "") and versions_note(sh, "HEAD") == []
    again = sh.git("commit", "-q", "-m", "v1", check=False)  # the same command, again
    assert versions_note(sh, "HEAD") == [{"clf": version_at(sh, "HEAD")}]
    assert_cache_sound(sh.cwd)
    fault.row(
        "kill -9 of git after it made the commit, before post-commit wrote the note",
        "a post-commit hook that kills git",
        again.stderr.splitlines()[0],
    )


def lock_holder(sh: Shell) -> str:
    try:
        return (sh.cwd / ".git/model/lock").read_text()
    except FileNotFoundError:
        return ""


def test_git_model_add_while_a_commit_runs(trained: Shell, fault: FaultRecorder) -> None:
    sh = trained
    new_version(sh, 1)
    sh.write("extra/big.bin", os.urandom(64 << 20))
    sh.write("extra/small.bin", b"small")
    add = subprocess.Popen(
        ["git", "model", "add", "extra"], cwd=sh.cwd, stderr=subprocess.PIPE, text=True
    )
    while "git model add" not in lock_holder(sh) and add.poll() is None:
        time.sleep(0.002)
    commit = sh.git("commit", "-q", "-m", "v1", check=False)  # its hook waits for the add
    assert add.wait() == 0, add.stderr.read() if add.stderr else ""
    assert commit.returncode == 0, commit.stderr

    assert_cache_sound(sh.cwd)
    staged = tomllib.loads(sh.git("show", f":{MANIFEST}").stdout)["artifacts"]
    assert "extra" in staged  # the add is not lost: it is in the commit or staged for the next
    assert sh.model("status").returncode == 0
    if "extra" not in tomllib.loads(sh.git("show", f"HEAD:{MANIFEST}").stdout)["artifacts"]:
        sh.git("commit", "-q", "-m", "extra")
    for rev in ("HEAD", "HEAD~1"):
        sh.model("checkout", rev)  # every commit's manifest and listings agree
    sh.model("checkout", "HEAD")
    assert sh.read("extra/small.bin") == b"small"
    assert sh.git("status", "--porcelain").stdout == ""
    fault.row(
        "`git model add` while `git commit` runs its pre-commit hook",
        "the add holds the lock when the commit starts",
        "both succeed; the hook waits for the add, and the add is in the commit or staged",
    )


def test_status_in_a_loop_while_checkout_runs(trained: Shell, fault: FaultRecorder) -> None:
    sh = trained
    v0 = {rel: sh.read(rel) for rel in ("model.bin", "data/part-0000.bin", "data/part-0119.bin")}
    new_version(sh, 1)
    sh.git("commit", "-q", "-m", "v1")
    slow = {  # a slow disk under the weights, so that the checkout takes a while
        **os.environ,
        "GIT_MODEL_INJECT": "slow:/model.bin:1",
        "PYTHONPATH": os.pathsep.join(filter(None, [INJECT, os.environ.get("PYTHONPATH")])),
    }
    checkout = subprocess.Popen(["git", "checkout", "-q", "HEAD~1"], cwd=sh.cwd, env=slow)
    while "git model checkout" not in lock_holder(sh) and checkout.poll() is None:
        time.sleep(0.002)  # the post-checkout hook has started restoring
    seen, during = set(), 0
    while True:  # an editor's git integration polling as fast as it can
        out = sh.model("status", "--json", check=False)
        running = checkout.poll() is None
        assert out.returncode == 0, out.stderr
        seen.update(a["state"] for a in json.loads(out.stdout)["artifacts"])
        during += running  # it finished while the checkout still held the lock
        if not running:
            break
    assert checkout.wait() == 0
    assert during >= 1, "status should not wait for the checkout"
    assert seen <= {"unchanged", "modified", "missing"}
    assert {rel: sh.read(rel) for rel in v0} == v0
    assert_cache_sound(sh.cwd)
    states = {a["state"] for a in json.loads(sh.model("status", "--json").stdout)["artifacts"]}
    assert states == {"unchanged"}
    fault.row(
        "`git model status` in a loop while `git checkout` restores artifacts",
        "an editor-style polling loop, the checkout slowed by a slow disk",
        "status runs finish while the checkout holds the lock; each shows old or new states",
    )
