"""`git model watch`: start, stop and ask the daemon (watchd.py) that watches the artifacts.

`watch.wanted` in the git dir says it should run until stopped: status and the hook start it
again (watch.restart) when it does not answer, after a reboot say. Started, the daemon is asked at once about every artifact of the manifest, so that its
watches are in place before the next status or commit; from then on `Stamps.holds` takes its
word instead of walking (stamps.py, watch.py). One daemon per work tree: a lock in the git
dir says which; its messages go to `<git dir>/model/watch.log`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import watch
from ..errors import GitModelError, UsageError
from .context import Context

START_TIMEOUT = 20.0  # seconds for a new daemon to answer (its first watches included)
LOG = watch.LOG


@dataclass
class WatchState:
    running: bool
    pid: int | None = None
    instance: str | None = None  # the name stamps keep with the daemon's counter
    watches: int = 0
    artifacts: list[str] = field(default_factory=list)
    unwatched: list[str] = field(default_factory=list)  # walked: could not all be watched

    def to_json(self) -> dict[str, object]:
        return {
            "running": self.running,
            "pid": self.pid,
            "instance": self.instance,
            "watches": self.watches,
            "artifacts": self.artifacts,
            "unwatched": self.unwatched,
        }


def model_dir(ctx: Context) -> str:
    return str(Path(ctx.repo.git_dir) / "model")


def state(ctx: Context) -> WatchState:
    """What the daemon of this work tree says about itself (not running: no answer)."""
    return state_at(model_dir(ctx))


def state_at(where: str) -> WatchState:
    reply = watch.request(where, [b"status"])
    if reply is None or len(reply) < 5 or reply[0] != watch.PROTOCOL:
        return WatchState(running=False)
    instance = reply[1].decode("ascii", "replace")
    out = WatchState(running=True, pid=int(reply[3]), instance=instance, watches=int(reply[4]))
    for field_ in reply[5:]:
        path = os.fsdecode(field_.removesuffix(b" -"))
        out.artifacts.append(path)
        if field_.endswith(b" -"):
            out.unwatched.append(path)
    return out


def start(ctx: Context) -> tuple[WatchState, bool]:
    """Start the daemon unless one runs; (its state, whether this call started it)."""
    if sys.platform != "linux":
        raise UsageError("git model watch needs Linux's inotify; status walks the files here")
    try:
        import inotify_simple  # noqa: F401
    except ImportError as e:
        raise UsageError("git model watch needs inotify_simple: pip install inotify_simple") from e
    now = state(ctx)
    if now.running:
        return _watch_all(ctx, now), False
    where = model_dir(ctx)
    os.makedirs(where, exist_ok=True)
    with open(os.path.join(where, watch.WANTED), "wb"):
        pass  # (status and the hook start it again when it is not there: after a reboot)
    with open(os.path.join(where, LOG), "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "git_model.watchd", str(ctx.root), where],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # (not stopped with the terminal that started it)
            close_fds=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        now = state(ctx)
        if now.running:
            return _watch_all(ctx, now), True
        code = proc.poll()
        if code is not None:
            if code == 3:  # another start won the race: that one watches
                return _watch_all(ctx, state(ctx)), False
            raise GitModelError(
                f"the watcher stopped at once (exit {code}); see {os.path.join(where, LOG)}"
            )
        time.sleep(0.02)
    proc.terminate()
    raise GitModelError(f"the watcher did not answer in {START_TIMEOUT:.0f} s; see its log")


def _watch_all(ctx: Context, now: WatchState) -> WatchState:
    """Ask about every artifact of the manifest: the daemon watches those it did not know."""
    paths = sorted(ctx.manifest().artifacts)
    if paths:
        watch.ask(model_dir(ctx), paths)
        again = state(ctx)
        if again.running:
            return again
    return now


def stop(ctx: Context) -> WatchState:
    """Stop the daemon; the state it had (not running: nothing to stop)."""
    return stop_at(model_dir(ctx))


def stop_at(where: str) -> WatchState:
    """Stop the daemon whose socket is in `where` (a git dir's model folder)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(where, watch.WANTED))  # (first: not started again)
    now = state_at(where)
    if now.running:
        watch.request(where, [b"stop"])
        deadline = time.monotonic() + 5.0
        while os.path.exists(os.path.join(where, watch.SOCKET)):
            if time.monotonic() > deadline:
                raise GitModelError(f"the watcher (pid {now.pid}) did not stop; kill {now.pid}")
            time.sleep(0.02)
    return now
