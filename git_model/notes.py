"""Per-commit records on `refs/notes/model`, one JSON object per line (JSON Lines).

A commit's note holds records such as the model versions computed when it was made
(`"type": "versions"`) and metrics recorded after it (`"type": "metrics"`). Lines are kept
sorted and unique, so git's `cat_sort_uniq` notes merge combines two clones' records safely;
readers order records by their `"time"` field (latest wins in reports), never by position.
Every record carries `"format"`; lines that are not valid records are skipped, never trusted.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # (the commit hook stamps its note's time from here: typing stays out)
    from collections.abc import Iterable
    from typing import Any

    from .git import Repo

    Record = dict[str, Any]

NOTES_REF = "refs/notes/model"
FORMAT = 1


def now() -> str:
    """A record's time: UTC ISO-8601 with microseconds, so that it sorts as text and the latest
    record wins (no `datetime` import: the commit hook's fast path stamps records too)."""
    seconds, ns = divmod(time.time_ns(), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ns // 1000:06d}Z"


def encode(record: Record) -> str:
    import json

    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_note(text: str) -> list[Record]:
    """Valid records of a note; anything else (blank lines, garbage, newer formats) is skipped."""
    import json

    out = []
    for line in text.split("\n"):  # not splitlines: U+2028 or U+0085 inside a string is no end
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(rec, dict)
            and rec.get("format") == FORMAT
            and isinstance(rec.get("type"), str)
        ):
            out.append(rec)
    return out


def read_note_text(repo: Repo, commit: str) -> str:
    proc = repo.git("notes", f"--ref={NOTES_REF}", "show", commit, check=False)
    return proc.decode("utf-8", errors="replace")


def read_records(repo: Repo, commit: str) -> list[Record]:
    return parse_note(read_note_text(repo, commit))


def append_records(repo: Repo, commit: str, records: Iterable[Record]) -> bool:
    """Add records to a commit's note (sorted, unique lines); False if all were there already."""
    existing = read_note_text(repo, commit)
    lines = {line for line in existing.split("\n") if line.strip()}
    new = {encode(r) for r in records}
    if new <= lines:
        return False
    text = "\n".join(sorted(lines | new)) + "\n"
    repo.git("notes", f"--ref={NOTES_REF}", "add", "-f", "-F", "-", commit, input=text.encode())
    return True


def records_by_commit(repo: Repo, revs: list[str]) -> dict[str, list[Record]]:
    """Records of many commits in one git call (`git log --no-walk --notes`)."""
    if not revs:
        return {}
    out = repo.git(
        "log",
        "--no-walk=unsorted",
        f"--notes={NOTES_REF}",
        "--format=%x00%H%x01%N",
        *revs,
        "--",
    ).decode("utf-8", errors="replace")
    result: dict[str, list[Record]] = {}
    for chunk in out.split("\0"):
        if "\x01" in chunk:
            commit, _, note = chunk.partition("\x01")
            result[commit.strip()] = parse_note(note)
    return result


def latest(records: list[Record], type_: str) -> list[Record]:
    """Records of one type, oldest first by their time field (so the last one wins)."""
    return sorted(
        (r for r in records if r.get("type") == type_), key=lambda r: str(r.get("time", ""))
    )
