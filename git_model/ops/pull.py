"""`git model pull`: fetch what the work tree's manifest needs while checkout restores it.

A use case above both checkout and transfer: checkout asks its fetcher for the objects the
cache lacks, a chunk at a time, and the fetcher moves them through transfer; neither of those
two modules knows the other's use of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hashing import Oid
from ..restore import RestoreReport
from .checkout import checkout
from .context import Context
from .moving import Meter, TransferResult, cumulative, move_objects
from .reachable import ObjectRef
from .remote_config import require
from .transfer import open_remote, pull_notes

if TYPE_CHECKING:
    from ..remotes import Store


def pull(
    ctx: Context,
    remote: str | None = None,
    *,
    jobs: int = 0,
    meter: Meter | None = None,
    keep_paths: bool = True,
) -> tuple[TransferResult, RestoreReport]:
    """Fetch what the work tree's manifest needs, then restore it (git model checkout)."""
    spec = require(ctx.settings, remote)
    result = TransferResult(spec.name, spec.url)
    opened: list[Store] = []
    progress = cumulative(meter)

    def fetcher(ctx: Context, missing: dict[Oid, ObjectRef]) -> None:
        # checkout asks a chunk of objects at a time: one result, one remote, one progress bar
        if not opened:
            opened.append(open_remote(spec, ctx))
        result.add(
            move_objects(
                ctx, opened[0], missing, upload=False, jobs=jobs, meter=progress, for_checkout=True
            )
        )

    report = checkout(ctx, fetch=fetcher, keep_paths=keep_paths)
    result.missing.sort()
    result.failed.sort()
    pull_notes(ctx, result)
    return result, report
