"""Asking `git model watch`'s daemon (watchd.py) what changed: standard library only.

Stamps (stamps.py) ask once per process, before any fingerprint walk, about the artifacts
they know: the daemon's instance name, its counter now (the token a stamp taken after this
question is remembered with) and, per artifact, the counter of the last event that touched
it (None: the daemon cannot vouch for it). No daemon (no socket, refused, silent for a
second, an answer of another shape) is None, and everything is walked as before.

`_socket` is imported only when the socket is there (~0.5 ms), and never `socket`, which
imports `enum` and `selectors`: the commit hook and the fast status run this on every call.
"""

from __future__ import annotations

import os

PROTOCOL = b"git-model-watch/1"  # (watchd.py's, which the hooks must not import)
SOCKET = "watch.sock"
WANTED = "watch.wanted"  # `git model watch` ran and was not stopped: keep a daemon running
LOG = "watch.log"
RESTART_EVERY_NS = 5_000_000_000  # at most one restart in this long (the log's mtime says)
TIMEOUT = 1.0  # a daemon that does not answer within this is not waited for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Answer = tuple[str, int, dict[str, int | None]]  # instance, counter now, last touched


def ask(model_dir: str, paths: list[str], root: str | None = None) -> Answer | None:
    """The daemon's answer about `paths`, or None when there is no daemon to ask. With the
    work tree's `root`, a daemon that should run (`git model watch` was not stopped) and does
    not answer is started again, for the next run (this one walks)."""
    reply = request(model_dir, [b"query", *map(os.fsencode, paths)])
    if reply is None:
        if root is not None:
            restart(root, model_dir)
        return None
    if len(reply) != len(paths) + 3 or reply[0] != PROTOCOL:
        return None
    try:
        now = int(reply[2])
        seen = {p: (None if r == b"-" else int(r)) for p, r in zip(paths, reply[3:])}
    except ValueError:
        return None
    return reply[1].decode("ascii", "replace"), now, seen


def request(model_dir: str, fields: list[bytes]) -> list[bytes] | None:
    """Send one message to the daemon of `model_dir` and read its reply (None: no daemon)."""
    path = os.path.join(model_dir, SOCKET)
    if not os.path.exists(path):
        return None
    import _socket

    sock: Any = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    dir_fd = -1
    try:
        sock.settimeout(TIMEOUT)
        if len(os.fsencode(path)) > 100:  # past sun_path's size: reach it through a folder fd
            dir_fd = os.open(model_dir, os.O_RDONLY | os.O_DIRECTORY)
            path = f"/proc/self/fd/{dir_fd}/{SOCKET}"
        sock.connect(path)
        sock.sendall(b"\0".join([PROTOCOL, *fields]) + b"\0\0")
        data = b""
        while not data.endswith(b"\0\0"):
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
    except OSError:
        return None
    finally:
        sock.close()
        if dir_fd >= 0:
            os.close(dir_fd)
    return data[:-2].split(b"\0")


def restart(root: str, model_dir: str) -> None:
    """Start the daemon in the background if it is wanted and none started lately (its log
    was written less than RESTART_EVERY_NS ago): a daemon that cannot start costs one failed
    start every few seconds, never one per command. Not waited for."""
    import time

    try:
        os.stat(os.path.join(model_dir, WANTED))
    except OSError:
        return
    log = os.path.join(model_dir, LOG)
    try:
        if time.time_ns() - os.stat(log).st_mtime_ns < RESTART_EVERY_NS:
            return
    except OSError:
        pass
    import sys

    try:
        with open(log, "ab") as f:  # (also dates the attempt)
            f.write(f"restarting the watcher for {root}\n".encode("utf-8", "replace"))
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        argv = [sys.executable, "-m", "git_model.watchd", root, model_dir]
        os.posix_spawn(sys.executable, argv, os.environ, file_actions=actions, setsid=True)
    except (OSError, AttributeError, NotImplementedError):
        pass  # (a platform without posix_spawn: `git model watch` starts it)
