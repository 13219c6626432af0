"""`git model watch`: let the kernel say what changed instead of walking every file."""

from __future__ import annotations

import click

from ..ops.context import Context
from ..ops.watch import WatchState
from ..termtext import quote_path
from .app import command
from .render import emit_json, json_option, note, say


@command(
    epilog="""\b
Examples:
  git model watch              # start watching this work tree's artifacts
  git model watch --status     # is it running, and what does it watch?
  git model watch --stop"""
)
@click.option("--stop", "stop_", is_flag=True, help="Stop watching.")
@click.option("--status", "show", is_flag=True, help="Say whether it runs and what it watches.")
@json_option
def watch_cmd(stop_: bool, show: bool, as_json: bool) -> None:
    """Watch the artifacts for changes, so status and commits need not walk them.

    Starts a small background process (Linux: inotify) that watches every folder of the
    tracked artifacts. While it runs, `git model status` and the commit hook take its word
    that nothing changed instead of looking at every file: with 100,000 files, milliseconds
    instead of a second. Anything it cannot vouch for is walked as before. It does not see
    writes made through a hard link from outside the work tree, through a shared memory map,
    or by another machine on a network file system: stop it (--stop) where those happen.
    """
    from ..ops.watch import start, state, stop

    if stop_ and show:
        raise click.UsageError("--stop and --status do not go together; give one")
    with Context.open() as ctx:
        if show:
            now = state(ctx)
        elif stop_:
            now = stop(ctx)
        else:
            now, started = start(ctx)
    if as_json:
        emit_json({"watch": now.to_json()})
        if show and not now.running:
            raise SystemExit(1)
        return
    if show:
        if not now.running:
            say("not watching: status and commits walk the artifacts (start: git model watch)")
            raise SystemExit(1)
        say(f"watching {_counted(now)} (pid {now.pid})")
    elif stop_:
        say(f"stopped watching (pid {now.pid})" if now.running else "was not watching")
        return
    else:
        verb = "watching" if started else "already watching"
        say(f"{verb} {_counted(now)} (pid {now.pid}); stop with: git model watch --stop")
    for path in now.unwatched:
        note(f"cannot watch all of {quote_path(path)} (out of inotify watches?): walked instead")


def _counted(now: WatchState) -> str:
    artifacts, folders = len(now.artifacts), now.watches
    return (
        f"{artifacts} artifact{'s' if artifacts != 1 else ''}, "
        f"{folders} folder{'s' if folders != 1 else ''}"
    )
