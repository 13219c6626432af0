"""Commands that share bytes with a remote object store: remote, push, fetch, pull, gc."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from ..ops.context import Context
from ..termtext import quote_path, visible
from .app import command
from .render import emit_json, human_size, json_option, note, progress_bar, say, verbosity

if TYPE_CHECKING:
    from ..ops.transfer import Meter, TransferResult

jobs_option = click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Objects moved at once (default: 16 for network remotes, 2× cores for a directory).",
)
rev_options = [
    click.option("--rev", "revs", multiple=True, metavar="REV", help="Objects of this commit."),
    click.option(
        "--all", "all_history", is_flag=True, help="Objects of every commit of every ref."
    ),
]


def _with_revs(f: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(rev_options):
        f = option(f)
    return f


@contextmanager
def _meter(desc: str) -> Iterator[Meter | None]:
    from ..ops.transfer import Meter

    bar = progress_bar(None, desc)
    if bar is None:
        yield None
        return
    lock = threading.Lock()

    def start(total: int, count: int) -> None:
        bar.total = total
        bar.set_postfix_str(f"{count} object(s)", refresh=False)  # quick transfers stay silent

    def advance(n: int) -> None:
        with lock:
            bar.update(n)

    try:
        yield Meter(start, advance)
    finally:
        bar.close()


def _render(result: TransferResult, verb: str, as_json: bool) -> int:
    if as_json:
        emit_json(result.to_json())
    else:
        where = "to" if verb == "pushed" else "from"
        remote, url = visible(result.remote), visible(result.url)
        label = remote if result.remote == result.url else f"{remote} ({url})"
        if result.wanted == 0:
            say(f"nothing to {verb.removesuffix('ed')} {where} {label}")
        else:
            say(
                f"{verb} {result.moved} object(s) ({human_size(result.bytes)}) "
                f"{where} {label}; {result.present} already there"
            )
            if verbosity() and result.moved:
                say(_stored_line(result, verb))
        if result.notes_merged:
            say(f"merged notes from {', '.join(map(visible, result.notes_merged))}")
    if result.notes_error:
        note(f"notes (model versions, metrics) were not updated: {visible(result.notes_error)}")
    for oid, path in result.missing:
        where = f"{quote_path(path)}: object {oid[:12]}"
        if verb == "pushed":
            note(f"{where} is neither in the local cache nor on {visible(result.remote)}")
        else:
            note(f"{where} is not on {visible(result.remote)}; push it from a clone that has it")
    for _, _, message in result.failed:
        note(visible(message))
    if result.failed:
        note("rerun the same command to finish: only what is still missing moves")
    return 0 if result.ok else 1


def _stored_line(result: TransferResult, verb: str) -> str:
    """What the moved objects took on the remote, against their size (compression)."""
    saved = result.bytes - result.stored
    share = f" ({saved / result.bytes:.0%})" if result.bytes else ""
    where = "on the remote" if verb == "pushed" else "over the wire"
    return (
        f"{human_size(result.stored)} {where} for {human_size(result.bytes)}: "
        f"{human_size(max(saved, 0))} saved{share}"
    )


@click.group(
    name="remote",
    epilog="""\b
Examples:
  git model remote add origin s3://bucket/models --default
  git model remote add origin lfs --default   # the git host's LFS storage
  git config model.remote.origin.endpointurl http://minio.local:9000
  git model remote add backup /mnt/shared/models
  git model remote list --json""",
    context_settings={"help_option_names": ["-h", "--help"]},
)
def remote_group() -> None:
    """Manage remote object stores (s3://, gs://, az://, ssh://, a directory, the git host's
    LFS storage)."""


@command(
    epilog="""\b
Examples:
  git model remote add origin s3://bucket/models --default
  git model remote add origin lfs --default   # LFS storage of git remote origin
  git model remote add hub https://huggingface.co/me/model.git/info/lfs"""
)
@click.argument("name")
@click.argument("url")
@click.option("--default", "default", is_flag=True, help="Make it the team's default (tracked).")
def remote_add(name: str, url: str, default: bool) -> None:
    """Add a remote. With --default its URL goes into .gitmodel/config.toml for the team;
    otherwise into your git config only. Options: git config model.remote.NAME.KEY VALUE.
    URL `lfs` (or `lfs:GITREMOTE`) keeps objects on the git host's LFS storage, found as
    git-lfs finds it; an http(s) URL is an LFS endpoint as it stands."""
    from ..ops.remote_config import add_remote

    with Context.open() as ctx:
        spec = add_remote(ctx, name, url, default=default)
    say(
        f"added remote {visible(spec.name)} -> {visible(spec.url)}"
        + (" (default, tracked)" if spec.tracked else "")
    )
    if spec.tracked:
        say("commit .gitmodel/config.toml so that clones know where the bytes are")


@command(epilog="Example: git model remote list --json")
@json_option
def remote_list(as_json: bool) -> None:
    """List remotes: name, URL, default, and where the URL is kept."""
    from ..ops.remote_config import list_remotes

    with Context.open() as ctx:
        specs = list_remotes(ctx.settings)
    if as_json:
        emit_json({"remotes": [s.to_json() for s in specs]})
        return
    if not specs:
        say("no remotes: git model remote add NAME URL --default")
    for s in specs:
        flags = ("* " if s.default else "  ") + visible(s.name)
        say(f"{flags}\t{visible(s.url)}\t({'tracked' if s.tracked else 'git config'})")


@command(epilog="Example: git model remote remove backup")
@click.argument("name")
def remote_remove(name: str) -> None:
    """Forget a remote (its objects stay where they are)."""
    from ..ops.remote_config import remove_remote

    with Context.open() as ctx:
        spec = remove_remote(ctx, name)
    say(f"removed remote {visible(spec.name)} ({visible(spec.url)})")


remote_group.add_command(remote_add, "add")
remote_group.add_command(remote_list, "list")
remote_group.add_command(remote_remove, "remove")


@command(
    epilog="""\b
Examples:
  git model push                      # what HEAD and the work tree need
  git model push -v                   # also say the bytes compression saved
  git model push backup --rev v1.0 --rev v2.0
  git model push --all --jobs 32      # every commit of every ref"""
)
@click.argument("remote", required=False)
@_with_revs
@jobs_option
@json_option
def push_cmd(
    remote: str | None,
    revs: tuple[str, ...],
    all_history: bool,
    jobs: int | None,
    as_json: bool,
) -> int:
    """Upload the objects that REMOTE (default: the default remote) lacks. Each is stored
    as a zstd frame where that saves 10% or more (git config model.compress auto|off|LEVEL);
    16 or more small ones (up to 1 MiB) go in packs, a few requests for a whole data set
    (git config model.pack auto|off)."""
    from ..ops.transfer import push

    with Context.open() as ctx, _meter("push") as meter:
        result = push(
            ctx, remote, revs=list(revs), all_history=all_history, jobs=jobs or 0, meter=meter
        )
    return _render(result, "pushed", as_json)


@command(
    epilog="""\b
Examples:
  git model fetch                     # what HEAD and the work tree need
  git model fetch --rev v1.0
  git model fetch --all"""
)
@click.argument("remote", required=False)
@_with_revs
@jobs_option
@json_option
def fetch_cmd(
    remote: str | None, revs: tuple[str, ...], all_history: bool, jobs: int | None, as_json: bool
) -> int:
    """Download the objects the cache lacks (verified), and merge the git remote's notes."""
    from ..ops.transfer import fetch

    with Context.open() as ctx, _meter("fetch") as meter:
        result = fetch(
            ctx, remote, revs=list(revs), all_history=all_history, jobs=jobs or 0, meter=meter
        )
    return _render(result, "fetched", as_json)


@command(epilog="Example: git pull && git model pull")
@click.argument("remote", required=False)
@jobs_option
@json_option
def pull_cmd(remote: str | None, jobs: int | None, as_json: bool) -> int:
    """Fetch what the work tree's manifest needs, then restore the artifacts."""
    from ..ops.pull import pull
    from .workspace_cmds import render_restore, restore_json

    with Context.open() as ctx, _meter("pull") as meter:
        result, report = pull(ctx, remote, jobs=jobs or 0, meter=meter, keep_paths=as_json)
    if as_json:
        emit_json({"fetch": result.to_json(), "checkout": restore_json(report)})
        return 0 if result.ok and report.ok else 1
    status = _render(result, "fetched", False)
    return max(status, render_restore(report, False))


@command(
    epilog="""\b
Examples:
  git model gc --dry-run              # what would go
  git model gc --force --keep-days 0  # also drop unneeded objects on no remote"""
)
@click.option("-n", "--dry-run", is_flag=True, help="Only say what would be freed.")
@click.option("--force", is_flag=True, help="Also drop unneeded objects no remote holds.")
@click.option(
    "--keep-days",
    type=click.FloatRange(min=0),
    default=14,
    show_default=True,
    help="Keep unneeded objects stored this recently (bytes a checkout kept aside).",
)
@json_option
def gc_cmd(dry_run: bool, force: bool, keep_days: float, as_json: bool) -> None:
    """Drop cache objects that no ref, reflog entry, stash, index, work tree or note needs."""
    from ..ops.gc import gc

    with Context.open() as ctx:
        result = gc(ctx, dry_run=dry_run, force=force, keep_days=keep_days)
    if as_json:
        emit_json(result.to_json())
        return
    verb = "would free" if dry_run else "freed"
    say(f"{verb} {result.freed} object(s), {human_size(result.freed_bytes)}")
    if result.kept_unique:
        where = f"not on remote {visible(result.remote)}" if result.remote else "no default remote"
        say(
            f"kept {result.kept_unique} unneeded object(s), "
            f"{human_size(result.kept_unique_bytes)}: {where} (--force drops them)"
        )
    if result.kept_recent:
        say(f"kept {result.kept_recent} recent unneeded object(s) (--keep-days)")
