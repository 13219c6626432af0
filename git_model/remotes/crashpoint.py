"""A test hook that kills a push the way `kill -9` would, at a chosen point.

With GIT_MODEL_TEST_CRASH_AFTER_UPLOADS=N in the environment, a push dies (exit 75, no
cleanup) when an upload is about to make its object visible after N already have: the bytes
are on the remote under a temp name, not yet renamed. The reliability tests use it to check
that a killed push leaves no partial object and that a rerun sends nothing twice. Unset, it
costs one environment lookup per object.
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_completed = 0


def before_visible() -> None:
    """Called just before an uploaded object gets its final name."""
    limit = os.environ.get("GIT_MODEL_TEST_CRASH_AFTER_UPLOADS")
    if limit is not None:
        with _lock:
            if _completed >= int(limit):
                os._exit(75)


def visible() -> None:
    """Called once an uploaded object has its final name."""
    global _completed
    with _lock:
        _completed += 1
