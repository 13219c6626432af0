"""The repository lock: one writer at a time, readers never wait.

Writers (add, checkout, the hooks, fetch, gc) hold an exclusive `flock` on
`<git-common-dir>/model/lock`; a second writer waits up to `model.lockTimeout` seconds (default
60) and then gives up with a message naming the holder. The kernel drops the lock when a
process dies, so a kill -9 never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import LockTimeout


@contextlib.contextmanager
def repo_lock(model_dir: Path, timeout: float = 60.0, what: str = "git-model") -> Iterator[None]:
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    text = os.pread(fd, 200, 0).decode(errors="replace").strip()
                    holder = text.splitlines()[0] if text else "unknown"  # one line, always
                    raise LockTimeout(
                        f"another git-model process ({holder}) holds {path} after {timeout:.0f}s; "
                        "wait for it to finish, or raise model.lockTimeout"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {what}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock
