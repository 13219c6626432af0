"""The `versions` record each commit gets on `refs/notes/model`.

    {"format": 1, "type": "versions", "recipe": 1, "time": "<UTC ISO-8601>",
     "models": {"NAME": "<version hash>"},
     "inputs_recipe": 1, "inputs": {"NAME": "<input hash>"}}

`inputs` (see versions.py, input recipe 1) lets `git model run` find a commit that trained from
the same inputs without reading every commit's manifest; it is a claim, checked against the
commit's manifest before anything is reused. Records written before it existed lack it.

The versions are computed from the commit itself (its manifest's artifact oids and the params
and code files in its tree), not copied from the manifest's `version` fields: a commit git made
on its own (a rebased or cherry-picked one) can carry a manifest whose recorded versions are
stale, and its note still says the truth. A commit without models gets no record.

Writing is idempotent: a commit whose note already holds the same versions gets nothing new,
so hooks that fire twice for one commit (a pull that fast-forwards) add no noise. After a
rewrite (amend, rebase) git copies the old commit's note to the new one (`notes.rewriteRef`);
`refresh_after_rewrite` then drops copied versions records that no longer hold and keeps the
rest (metrics) sorted and unique.
"""

from __future__ import annotations

from typing import Any

from .. import notes
from ..git import run_git
from ..ops.context import Context
from ..ops.sealing import versions_record_of
from ..versions import all_inputs, refresh_versions


def versions_record(ctx: Context, commit: str) -> notes.Record | None:
    manifest = ctx.manifest(commit)
    read = ctx.reader(commit)
    refresh_versions(manifest, read)
    return versions_record_of(
        {n: str(m.version) for n, m in sorted(manifest.models.items())},
        all_inputs(manifest, read),
    )


def same_versions(record: dict[str, Any], fresh: notes.Record) -> bool:
    return (
        record.get("type") == "versions"
        and record.get("recipe") == fresh["recipe"]
        and record.get("models") == fresh["models"]
        and record.get("inputs") == fresh.get("inputs")
    )


def ensure_versions_note(ctx: Context, commit: str) -> bool:
    """Give `commit` a versions record unless its note already has these versions."""
    fresh = versions_record(ctx, commit)
    if fresh is None:
        return False
    # a new commit has no note yet: one `git notes add` does it (it refuses to overwrite)
    proc = run_git(
        ["notes", f"--ref={notes.NOTES_REF}", "add", "-F", "-", commit],
        cwd=ctx.root,
        input=(notes.encode(fresh) + "\n").encode(),
        check=False,
    )
    if proc.returncode == 0:
        return True
    if any(same_versions(r, fresh) for r in notes.read_records(ctx.repo, commit)):
        return False
    return notes.append_records(ctx.repo, commit, [fresh])


def recover_lost_note(ctx: Context, leftovers: list[str]) -> str | None:
    """Give HEAD the note an interrupted commit left behind, if it is HEAD's; returns HEAD then.

    git can be killed after it made a commit and before its post-commit hook wrote the note.
    The note pre-commit prepared is still on disk: when HEAD has no note and the prepared one
    records the versions HEAD's own manifest gives, it is HEAD's, metrics included.
    """
    head = ctx.repo.head()
    if head is None or not leftovers or notes.read_note_text(ctx.repo, head).strip():
        return None
    fresh = versions_record(ctx, head)
    if fresh is None:
        return None
    for text in leftovers:
        if any(same_versions(r, fresh) for r in notes.parse_note(text)):
            ctx.repo.git(
                "notes", f"--ref={notes.NOTES_REF}", "add", "-F", "-", head, input=text.encode()
            )
            return head
    return None


def refresh_after_rewrite(ctx: Context, commit: str) -> None:
    """Tidy the note git copied onto a rewritten commit: current versions, sorted lines."""
    fresh = versions_record(ctx, commit)
    text = notes.read_note_text(ctx.repo, commit)
    lines = {line.strip() for line in text.split("\n") if line.strip()}
    kept: set[str] = set()
    current: list[tuple[str, str]] = []  # (time, line) of records that still hold
    for line in lines:
        parsed = notes.parse_note(line)
        if parsed and parsed[0].get("type") == "versions":
            if fresh is not None and same_versions(parsed[0], fresh):
                current.append((str(parsed[0].get("time", "")), line))
            continue  # computed for the commit this one replaced
        kept.add(line)
    if fresh is not None:
        kept.add(max(current)[1] if current else notes.encode(fresh))  # one record, newest
    new_text = "".join(line + "\n" for line in sorted(kept))
    if new_text == text:
        return
    if not kept:
        ctx.repo.git("notes", f"--ref={notes.NOTES_REF}", "remove", "--ignore-missing", commit)
        return
    ctx.repo.git(
        "notes", f"--ref={notes.NOTES_REF}", "add", "-f", "-F", "-", commit, input=new_text.encode()
    )
