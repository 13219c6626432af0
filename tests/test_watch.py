"""`git model watch`: while the daemon runs, status and the commit hook take its word that
nothing changed, and every change is still seen: content, times put back, chmod, a new, removed
or renamed folder, a folder moved in, the artifact or a folder above it replaced, events lost
to a full kernel queue, the daemon killed. Real inotify, real git, the hooks really firing."""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Shell

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="inotify is Linux's")

QUIET = 0.15  # past the stamps' racy window (100 ms) after the last write


def _watch_state(repo: Shell) -> dict[str, object]:
    doc = json.loads(repo.model("watch", "--status", "--json", check=False).stdout)
    state: dict[str, object] = doc["watch"]
    return state


@pytest.fixture
def watched(repo: Shell) -> Iterator[Shell]:
    repo.write("data/a/one.txt", "one\n")
    repo.write("data/a/two.txt", "two\n")
    repo.write("data/b/three.txt", "three\n")
    repo.write("models/net/weights.bin", os.urandom(2000))
    repo.model("add", "data", "models/net/weights.bin")
    repo.git("commit", "-q", "-m", "v1")
    out = repo.model("watch").stdout
    assert out.startswith("watching 2 artifacts, 6 folders")
    try:
        yield repo
    finally:
        pid = _watch_state(repo).get("pid")
        repo.model("watch", "--stop", check=False)
        if isinstance(pid, int):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # (already gone unless --stop failed)


def _states(repo: Shell) -> dict[str, str]:
    doc = json.loads(repo.model("status", "--json").stdout)
    return {a["path"]: a["state"] for a in doc["artifacts"]}


def _settled(repo: Shell, instance: object = None) -> None:
    """Make sure the next status would take the watcher's word: every artifact is unchanged
    and its stamp carries the running daemon's token."""
    time.sleep(QUIET)
    assert set(_states(repo).values()) == {"unchanged"}  # (stamps, walking if it must)
    instance = instance or _watch_state(repo)["instance"]
    with open(repo.cwd / ".git/model/stamps", "rb") as f:
        tokens = marshal.load(f)["watch"]
    assert {path: token[0] for path, token in tokens.items()} == {
        "data": instance,
        "models/net/weights.bin": instance,
    }


def _seen(repo: Shell, path: str, step: str = "") -> None:
    """The change is seen by status, and by the commit hook (the commit records it)."""
    assert _states(repo)[path] == "modified", step
    before = repo.git("show", "HEAD:.gitmodel/manifest.toml").stdout
    repo.git("commit", "-q", "-a", "--allow-empty", "-m", "after the change")
    assert repo.git("show", "HEAD:.gitmodel/manifest.toml").stdout != before, step


def _put_back_times(path: Path, st: os.stat_result) -> None:
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


WEIGHTS = "models/net/weights.bin"
# each change, the artifact it changes, and a new file written after it (in a new folder)
CHANGES = [
    ("content, same size, times put back", lambda r: _rewrite(r.cwd / "data/a/one.txt"), "data"),
    ("chmod +x", lambda r: os.chmod(r.cwd / "data/a/two.txt", 0o755), "data"),
    ("new file in a new folder", lambda r: r.write("data/c/d/new.txt", "new\n"), "data"),
    ("... and in a folder below that", lambda r: r.write("data/c/d/e/f.txt", "f\n"), "data"),
    ("folder removed", lambda r: shutil.rmtree(r.cwd / "data/b"), "data"),
    ("folder renamed", lambda r: os.rename(r.cwd / "data/a", r.cwd / "data/z"), "data"),
    ("... and a folder made in it", lambda r: r.write("data/z/new/g.txt", "g\n"), "data"),
    ("folder moved in", lambda r: _move_in(r), "data"),
    ("... and a folder made in it", lambda r: r.write("data/x/new/h.txt", "h\n"), "data"),
    ("file replaced by rename", lambda r: _replace(r.cwd / "data/z/one.txt"), "data"),
    ("weights rewritten in place", lambda r: _rewrite(r.cwd / WEIGHTS), WEIGHTS),
    ("folder above renamed, another made", lambda r: _above(r), WEIGHTS),
    ("... and the new weights changed", lambda r: _rewrite(r.cwd / WEIGHTS), WEIGHTS),
    ("the whole data set replaced", lambda r: _swap(r), "data"),
    ("... and changed inside", lambda r: r.write("data/z/one.txt", "again\n"), "data"),
]


def _rewrite(path: Path) -> None:
    st = path.stat()
    data = path.read_bytes()
    path.write_bytes(bytes(b ^ 0x20 for b in data))
    _put_back_times(path, st)


def _replace(path: Path) -> None:
    tmp = path.with_name("tmp.part")
    tmp.write_bytes(path.read_bytes() + b"more\n")
    os.replace(tmp, path)


def _move_in(repo: Shell) -> None:
    repo.write("outside/x/y.txt", "moved in\n")
    os.rename(repo.cwd / "outside/x", repo.cwd / "data/x")


def _swap(repo: Shell) -> None:
    shutil.copytree(repo.cwd / "data", repo.cwd / "copy", copy_function=shutil.copy2)
    shutil.rmtree(repo.cwd / "data")
    os.rename(repo.cwd / "copy", repo.cwd / "data")
    repo.write("data/z/one.txt", "swapped\n")


def _above(repo: Shell) -> None:
    os.rename(repo.cwd / "models", repo.cwd / "elsewhere")
    (repo.cwd / "models/net").mkdir(parents=True)
    shutil.copy2(repo.cwd / "elsewhere/net/weights.bin", repo.cwd / "models/net/weights.bin")
    with open(repo.cwd / "models/net/weights.bin", "r+b") as f:
        f.write(b"X")
    shutil.rmtree(repo.cwd / "elsewhere")


def test_every_change_is_seen_while_watching(watched: Shell) -> None:
    instance = _watch_state(watched)["instance"]
    for step, change, path in CHANGES:
        _settled(watched, instance)
        change(watched)
        _seen(watched, path, step)


def test_the_watchers_word_is_taken(watched: Shell, tmp_path: Path) -> None:
    """A write through a hard link from outside the work tree is the one change the kernel
    does not report to the folder's watch (documented): status then trusts the watcher, which
    shows that nothing was walked; stopped, the walk finds the change."""
    _settled(watched)
    link = tmp_path / "link"
    os.link(watched.cwd / "data/a/one.txt", link)
    with open(link, "ab") as f:
        f.write(b"through the link\n")
    assert _states(watched)["data"] == "unchanged"
    watched.model("watch", "--stop")
    assert _states(watched)["data"] == "modified"


def test_lost_events_mean_everything_is_walked_and_watched_again(watched: Shell) -> None:
    """The kernel's queue overflows while the daemon is stopped: every artifact counts as
    touched, and a folder made meanwhile is watched from then on."""
    _settled(watched)
    pid = _watch_state(watched)["pid"]
    assert isinstance(pid, int)
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        watched.write("data/new/first.txt", "made while the events were lost\n")
        a, b = watched.cwd / "data/a/one.txt", watched.cwd / "data/a/two.txt"
        for _ in range(limit // 2 + 10):  # two different events in turn: none merged
            os.utime(a)
            os.utime(b)
    finally:
        os.kill(pid, signal.SIGCONT)
    _seen(watched, "data")
    _settled(watched)
    watched.write("data/new/second.txt", "in the folder made while events were lost\n")
    assert _states(watched)["data"] == "modified"


def _backdate_log(repo: Shell) -> None:
    """Let status restart a daemon now (it restarts one at most every few seconds)."""
    log = repo.cwd / ".git/model/watch.log"
    past = time.time() - 60
    os.utime(log, (past, past))


def _running_again(repo: Shell, old: object) -> dict[str, object]:
    for _ in range(200):
        state = _watch_state(repo)
        if state["running"] and state["pid"] != old:
            return state
        time.sleep(0.05)
    raise AssertionError("the watcher was not started again")


def test_a_killed_daemon_costs_a_walk_never_a_change(watched: Shell) -> None:
    _settled(watched)
    pid = _watch_state(watched)["pid"]
    assert isinstance(pid, int)
    os.kill(pid, signal.SIGKILL)
    _backdate_log(watched)
    _rewrite(watched.cwd / "data/a/one.txt")
    assert _states(watched)["data"] == "modified"  # (a socket left behind: refused, walked)
    _running_again(watched, pid)  # status started it again (`git model watch` was not stopped)
    assert _states(watched)["data"] == "modified"  # (a new daemon: old tokens mean nothing)
    _seen(watched, "data")
    _settled(watched)  # (the new daemon's tokens)


def test_status_while_watching_imports_nothing_heavy(watched: Shell) -> None:
    from test_stamps import HEAVY, STDLIB_HEAVY, _modules_after_status

    _settled(watched)
    out, modules = _modules_after_status(watched)
    assert out == watched.model("status").stdout
    assert not modules & (HEAVY | STDLIB_HEAVY | {"socket", "selectors", "inotify_simple"})


def test_watch_command_states(repo: Shell) -> None:
    repo.write("model.bin", os.urandom(100))
    repo.model("add", "model.bin")
    repo.git("commit", "-q", "-m", "model")
    state = repo.model("watch", "--status", check=False)
    assert state.returncode == 1 and "not watching" in state.stdout
    assert repo.model("watch", "--stop").stdout.strip() == "was not watching"
    both = repo.model("watch", "--stop", "--status", check=False)
    assert both.returncode != 0 and "do not go together" in both.stderr
    repo.model("watch")
    again = repo.model("watch").stdout
    assert again.startswith("already watching 1 artifact, 1 folder")
    assert repo.model("watch", "--stop").stdout.startswith("stopped watching")
    assert not (repo.cwd / ".git/model/watch.sock").exists()
    _backdate_log(repo)
    repo.model("status")  # stopped on purpose: not started again
    time.sleep(0.3)
    assert repo.model("watch", "--status", check=False).returncode == 1


def test_uninstall_stops_the_watcher(watched: Shell) -> None:
    out = watched.model("uninstall").stdout
    assert "stopped watching" in out
    assert not (watched.cwd / ".git/model/watch.sock").exists()
    assert not (watched.cwd / ".git/model/watch.wanted").exists()
