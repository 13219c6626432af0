"""Loaded by a git-model subprocess under test (PYTHONPATH): inject an OSError on demand.

GIT_MODEL_INJECT="OP:SUBSTRING:ERRNO" makes OP (open | replace) raise
OSError(ERRNO) for any path containing SUBSTRING, e.g. "open:/model/tmp/:EACCES". Used only
where a real fault cannot be produced (root bypasses file permissions).
GIT_MODEL_INJECT="slow:SUBSTRING:SECONDS" makes a rename onto such a path wait first (a slow
disk), so that another process can be run while this one is in the middle of its work.
"replace" and "slow" cover both ways a file is put in place: `os.replace`, and the atomic
exchange of names that git-model uses for large files (`git_model.linuxcalls.exchange`).
"""

import builtins
import errno
import os
import time


def _wrap_exchange(before) -> None:  # type: ignore[no-untyped-def]
    """Run `before(dst)` ahead of each exchange of names onto `dst` too."""
    import git_model.linuxcalls as linuxcalls  # before newfiles.py takes its own reference

    real = linuxcalls.exchange

    def exchange(a: str, b: str) -> bool:
        before(b)
        return real(a, b)

    linuxcalls.exchange = exchange


_spec = os.environ.get("GIT_MODEL_INJECT", "")
if _spec:
    _op, _needle, _name = _spec.split(":", 2)
    _code = getattr(errno, _name) if _op != "slow" else 0

    def _fail(path: object) -> None:
        if _needle in os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else False:
            raise OSError(_code, os.strerror(_code), os.fsdecode(path))  # type: ignore[arg-type]

    if _op == "open":
        _real_open, _real_os_open = builtins.open, os.open

        def _open(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
            if any(c in mode for c in "wax+"):
                _fail(file)
            return _real_open(file, mode, *args, **kwargs)

        def _os_open(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                _fail(path)
            return _real_os_open(path, flags, *args, **kwargs)

        builtins.open = _open
        os.open = _os_open
    elif _op == "replace":
        _real_replace = os.replace

        def _replace(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
            _fail(dst)
            return _real_replace(src, dst, *args, **kwargs)

        os.replace = _replace
        _wrap_exchange(_fail)
    elif _op == "slow":
        _plain_replace = os.replace

        def _slow_replace(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
            if _needle in os.fsdecode(dst):
                time.sleep(float(_name))
            return _plain_replace(src, dst, *args, **kwargs)

        os.replace = _slow_replace
        _wrap_exchange(
            lambda dst: time.sleep(float(_name)) if _needle in os.fsdecode(dst) else None
        )
