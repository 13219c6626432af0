"""The daemon behind `git model watch`: the kernel's file events, so that nothing is walked.

`python -m git_model.watchd ROOT MODEL_DIR` runs in the background for one work tree (started
and stopped by ops/watch.py). It listens on `MODEL_DIR/watch.sock` (mode 0600, in the
repository's own git dir) and holds one inotify watch on every folder of each artifact it was
asked about, and on each folder above it (for that one name). Every batch of events read from
the kernel moves a counter on; each artifact remembers the counter of the last event that
touched it (`dirty`). A client (watch.py) asks about artifacts and gets back this daemon's
random instance name, the counter now, and each artifact's last-touched counter: an artifact
whose stamp was taken at counter T (asked before its fingerprint walk began) is unchanged
when it was last touched at or before T. Events are read from the kernel before every answer,
so a write that returned before the question was asked is always counted.

Whatever the daemon cannot vouch for it answers "-" (walk it): a folder it could not watch
(out of inotify watches, no permission), a path that is not a plain relative path. A lost
event (the kernel's queue overflowed) marks every artifact touched and watches everything
again. It exits when asked to, on SIGTERM/SIGINT, or when its socket or git dir is gone.

Writes the kernel does not report to a folder's watch are not seen: through a hard link from
outside the folder, through a shared memory map, or on a network file system from another
machine (as with git's own fsmonitor). docs/design.md, "Watching instead of walking".
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import select
import signal
import socket
import stat
import struct
import sys
from collections.abc import Iterable

from inotify_simple import INotify, flags

PROTOCOL = b"git-model-watch/1"
SOCKET = "watch.sock"
LOCK = "watch.lock"
LOG = "watch.log"
CHECK_EVERY_MS = 2000  # how often an idle daemon looks whether its socket is still there

_CHANGES = (
    flags.MODIFY  # (a truncation is one too; close-after-write adds nothing to it)
    | flags.ATTRIB
    | flags.CREATE
    | flags.DELETE
    | flags.MOVED_FROM
    | flags.MOVED_TO
    | flags.DELETE_SELF
    | flags.MOVE_SELF
)
MASK = int(_CHANGES | flags.ONLYDIR | flags.DONT_FOLLOW)
# plain ints: an IntFlag operation per event costs more than the rest of its handling
_NEW_DIR = int(flags.CREATE | flags.MOVED_TO)
_OVERFLOW, _IGNORED, _ISDIR = int(flags.Q_OVERFLOW), int(flags.IGNORED), int(flags.ISDIR)
_HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name
READ_SIZE = 1 << 20


class Watcher:
    """The watches of one work tree and the counter each artifact was last touched at."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.inotify = INotify(nonblocking=True)
        self.instance = secrets.token_hex(8)
        self.seq = 1
        self.dirty: dict[str, int] = {}  # artifact -> counter of the last event touching it
        self.broken: set[str] = set()  # artifacts some folder of which could not be watched
        self.inside: dict[int, set[str]] = {}  # watch -> artifacts it lies within
        self.names: dict[int, dict[str, set[str]]] = {}  # watch -> name below it -> artifacts
        self.paths: dict[int, str] = {}  # watch -> the folder it was made for
        self.redo: set[str] = set()  # artifacts to watch afresh before the next answer

    # -- watching -----------------------------------------------------------------------
    def register(self, artifact: str) -> None:
        """Watch `artifact` (a relative path with "/"): each folder above it for its name,
        every folder within it; touched now."""
        self.dirty[artifact] = self.seq
        self.broken.discard(artifact)
        parts = artifact.split("/")
        here = self.root
        for name in parts:
            wd = self._add(here)
            if wd is None:
                return  # (a missing folder: its parent's watch sees it come back)
            self.names.setdefault(wd, {}).setdefault(name, set()).add(artifact)
            here = os.path.join(here, name)
        try:
            st = os.lstat(here)
        except OSError:
            return  # missing: walked (and seen) when it comes back
        if stat.S_ISDIR(st.st_mode):
            self._watch_tree(artifact, here)

    def _watch_tree(self, artifact: str, top: str) -> None:
        stack = [top]
        while stack:
            folder = stack.pop()
            wd = self._add(folder)
            if wd is None:
                if folder == top:  # (a folder moved on since its event: look again from the top)
                    self.redo.add(artifact)
                continue
            self.inside.setdefault(wd, set()).add(artifact)
            try:
                with os.scandir(folder) as entries:
                    stack.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
            except OSError:
                self.redo.add(artifact)  # (gone meanwhile: its parent's event says so)

    def _add(self, folder: str) -> int | None:
        try:
            wd: int = self.inotify.add_watch(folder, MASK)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR):
                self._cannot_watch(folder)
            return None
        self.paths[wd] = folder
        return wd

    def _cannot_watch(self, folder: str) -> None:
        rel = os.path.relpath(folder, self.root).replace(os.sep, "/")
        for artifact in self.dirty:
            inside = rel == artifact or rel.startswith(artifact + "/")
            if rel == "." or inside or artifact.startswith(rel + "/"):
                self.broken.add(artifact)

    # -- events ---------------------------------------------------------------------------
    def drain(self) -> None:
        """Read every event the kernel holds (and those the new watches bring) into `dirty`."""
        fd = self.inotify.fileno()
        for _ in range(8):
            while True:
                try:
                    data = os.read(fd, READ_SIZE)
                except BlockingIOError:
                    break
                self.seq += 1
                self._events(data)
            if not self.redo:
                return
            self.seq += 1
            redo, self.redo = self.redo, set()
            for artifact in redo:
                self.register(artifact)
        self.broken |= self.redo  # (still moving after eight rounds: walked until asked again)
        self.redo.clear()

    def _events(self, data: bytes) -> None:
        """One read's events (the kernel's layout: a header, then the name padded with NULs).
        Most only mark the artifacts of their folder: names are decoded only where needed."""
        seq, dirty, inside, names = self.seq, self.dirty, self.inside, self.names
        header, end, pos = _HEADER.unpack_from, len(data), 0
        while pos < end:
            wd, mask, _cookie, size = header(data, pos)
            raw = data[pos + 16 : pos + 16 + size].rstrip(b"\0")
            pos += 16 + size
            if mask & _OVERFLOW:
                self.redo.update(dirty)  # events were lost: everything is touched, re-watched
                continue
            for artifact in inside.get(wd, ()):
                dirty[artifact] = seq
            if wd in names or mask & (_IGNORED | _ISDIR):
                self._event(wd, mask, os.fsdecode(raw))

    def _event(self, wd: int, mask: int, name: str) -> None:
        """An event on a folder above an artifact, a watch gone, or a folder made or moved."""
        names = self.names.get(wd)
        touched: set[str] = set()
        if names is not None:
            if name:
                below = names.get(name, set())
                touched |= below
                if mask & _NEW_DIR:
                    self.redo.update(below)  # (an artifact or a folder above it came back)
            else:
                for artifacts in names.values():
                    touched |= artifacts
        if mask & _IGNORED:
            touched |= self.inside.pop(wd, set())
            self.names.pop(wd, None)
            self.paths.pop(wd, None)
        elif mask & _ISDIR and mask & _NEW_DIR and wd in self.inside and name:
            for artifact in self.inside[wd]:
                self._watch_tree(artifact, os.path.join(self.paths[wd], name))
        for artifact in touched:
            self.dirty[artifact] = self.seq

    # -- questions ------------------------------------------------------------------------
    def answer(self, paths: list[str]) -> list[bytes]:
        self.drain()
        new = [p for p in paths if _plain(p) and (p not in self.dirty or p in self.broken)]
        if new:
            self.seq += 1
            for path in new:
                self.register(path)
            self.drain()
        out = [PROTOCOL, self.instance.encode(), str(self.seq).encode()]
        for path in paths:
            seen = self.dirty.get(path) if _plain(path) and path not in self.broken else None
            out.append(b"-" if seen is None else str(seen).encode())
        return out

    def status(self) -> list[bytes]:
        self.drain()
        return [
            PROTOCOL,
            self.instance.encode(),
            str(self.seq).encode(),
            str(os.getpid()).encode(),
            str(len(self.paths)).encode(),
            *(os.fsencode(p) + (b" -" if p in self.broken else b"") for p in sorted(self.dirty)),
        ]


def _plain(path: str) -> bool:
    """A relative path with "/" and no empty, "." or ".." part, not into `.git`."""
    parts = path.split("/")
    return bool(path) and parts[0] != ".git" and all(p not in ("", ".", "..") for p in parts)


def read_message(conn: socket.socket) -> list[bytes] | None:
    """Fields separated by NUL, ended by an empty field; None if the peer stopped short."""
    data = b""
    while not data.endswith(b"\0\0"):
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data[:-2].split(b"\0")


def send_message(conn: socket.socket, fields: Iterable[bytes]) -> None:
    conn.sendall(b"\0".join(fields) + b"\0\0")


def serve(root: str, model_dir: str) -> int:
    os.chdir(model_dir)  # the socket is bound by a short relative name (paths can be long)
    lock = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print("git-model watch: already running for this work tree", file=sys.stderr)
        return 3
    with contextlib.suppress(FileNotFoundError):
        os.unlink(SOCKET)  # (a stale one: the lock says no daemon holds it)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    try:
        server.bind(SOCKET)
    finally:
        os.umask(old)
    ours = os.stat(SOCKET).st_ino
    server.listen(16)
    watcher = Watcher(root)
    stop = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    poller = select.poll()
    poller.register(watcher.inotify.fileno(), select.POLLIN)
    poller.register(server.fileno(), select.POLLIN)
    try:
        while not stop:
            try:
                ready = {fd for fd, _ in poller.poll(CHECK_EVERY_MS)}
            except InterruptedError:  # pragma: no cover (PEP 475 retries)
                continue
            if watcher.inotify.fileno() in ready:
                watcher.drain()
            if server.fileno() in ready:
                stop = _one_client(server, watcher)
            if not ready and not _still_ours(ours):
                break
    finally:
        if _still_ours(ours):
            os.unlink(SOCKET)
        server.close()
        watcher.inotify.close()
    return 0


def _one_client(server: socket.socket, watcher: Watcher) -> bool:
    """Answer one client; True when it asked the daemon to stop."""
    conn, _ = server.accept()
    with conn:
        conn.settimeout(2.0)
        try:
            message = read_message(conn)
            if not message or message[0] != PROTOCOL or len(message) < 2:
                return False
            verb = message[1]
            if verb == b"query":
                paths = [os.fsdecode(p) for p in message[2:]]
                send_message(conn, watcher.answer(paths))
            elif verb == b"status":
                send_message(conn, watcher.status())
            elif verb == b"stop":
                send_message(conn, [PROTOCOL, b"stopping"])
                return True
        except OSError:
            pass  # (a client that went away: its loss)
    return False


def _still_ours(ino: int) -> bool:
    try:
        return os.stat(SOCKET).st_ino == ino
    except OSError:
        return False


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m git_model.watchd ROOT MODEL_DIR", file=sys.stderr)
        return 2
    return serve(os.path.abspath(argv[0]), os.path.abspath(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
