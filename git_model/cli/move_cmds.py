"""`git model mv` and `git model rename`: new names for artifacts and models."""

from __future__ import annotations

import click

from ..ops.context import Context
from ..termtext import quote_path, visible
from .app import command
from .render import say


@command(
    epilog="""\b
Examples:
  git model mv model.bin models/model.bin
  git model mv data/train data/train-2024        # a tracked directory
  git model mv model.bin models/                 # into a directory"""
)
@click.argument("source", type=click.Path())
@click.argument("destination", type=click.Path())
def mv_cmd(source: str, destination: str) -> None:
    """Move or rename a tracked artifact, keeping its models and kind.

    Moves the file or directory in the work tree, renames its manifest entry, its listing and
    its .gitignore line, and stages all of it, as 'git mv' does; commit to record the move.
    Refuses to overwrite anything: a tracked artifact or any file at DESTINATION.
    """
    from ..ops.move import mv

    with Context.open() as ctx:
        src, dst = mv(ctx, source, destination)
    say(f"moved {quote_path(src)} to {quote_path(dst)}; commit to record it: git commit -m '...'")


@command(epilog="Example: git model rename my-project digits")
@click.argument("old")
@click.argument("new")
def rename_cmd(old: str, new: str) -> None:
    """Rename a model (the repository's default model too).

    Its components and version hashes stay as they are; notes and registry tags made before
    keep the old name, so 'git model log NEW' starts at the commit that renames it.
    """
    from ..ops.move import rename

    with Context.open() as ctx:
        default = rename(ctx, old, new)
    say(
        f"renamed model {visible(old)} to {visible(new)}"
        + (" (still the repository's default model)" if default else "")
        + "; commit to record it: git commit -m '...'"
    )
