"""The `git-model` executable: one error boundary, and fast paths for the hooks and status.

`git model hook NAME` (what the hook shims call on every commit) is dispatched before click is
imported: a hook on the no-change path runs on the standard library alone. So is `git model
status [--json]` when its last answer still holds (ops/fast_status.py).
"""

from __future__ import annotations

import atexit
import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Run one command; as the program itself (no `argv`), end the process when it is done."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["hook"]:
        from ..hooks import run_hook

        code = _boundary(lambda: run_hook(args[1:]))
    elif args[:1] == ["status"] and args[1:] in ([], ["--json"]) and _fast_status(args):
        code = 0
    else:
        from .app import cli

        def run() -> int:
            result = cli.main(args=args, prog_name="git model", standalone_mode=False)
            return result if isinstance(result, int) else 0

        code = _boundary(run)
    if argv is None:
        _end(code)
    return code


def _fast_status(args: list[str]) -> bool:
    """Print status's answer if it still holds; False when the command has to work it out."""
    from ..ops.fast_status import answer

    text = answer(as_json=args[1:] == ["--json"])
    if text is None:
        return False
    return _boundary(lambda: sys.stdout.write(text) and 0) == 0


def _end(code: int) -> None:
    """End the process now, skipping the interpreter's teardown: it frees every object one at
    a time, ~10 ms after a 10,000-file checkout, for memory the process gives back anyway.
    Exit handlers still run and output is flushed; files are all closed by now (every one is
    opened in a `with`). Only when no other thread runs: one still working is waited for by a
    normal exit."""
    threading = sys.modules.get("threading")  # (never imported: no other thread; ~2 ms saved)
    if threading is not None and threading.active_count() > 1:
        return
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 (contextlib: ~1 ms more on every hook)
            stream.flush()
        except (OSError, ValueError):  # (a reader gone: nothing to flush to)
            pass
    os._exit(code)


def _boundary(run: object) -> int:
    from ..errors import GitModelError

    try:
        return int(run())  # type: ignore[operator]
    except GitModelError as e:
        _fail(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `git model log | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as e:
        if e.__class__.__module__.startswith("click"):
            return _click_error(e)
        raise


def _click_error(e: Exception) -> int:
    import click

    if isinstance(e, click.exceptions.Exit):
        return e.exit_code
    if isinstance(e, click.exceptions.Abort):
        _fail("aborted")
        return 130
    if isinstance(e, click.ClickException):
        import io

        from ..termtext import visible_lines

        shown = io.StringIO()  # (a usage error repeats what was typed: shown visibly too)
        e.show(file=shown)
        sys.stderr.write(visible_lines(shown.getvalue()))
        return e.exit_code
    raise e


def _fail(message: str) -> None:
    from ..termtext import visible

    message = visible(message)  # one line, whatever text from outside it carries
    color = sys.stderr.isatty() and "NO_COLOR" not in os.environ
    prefix = "\x1b[31merror:\x1b[0m" if color else "error:"
    print(f"{prefix} {message}", file=sys.stderr)
