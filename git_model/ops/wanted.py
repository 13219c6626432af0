"""The objects a walk of manifests wants, each once, handed out in groups of oid prefixes.

A walk of a million files' history meets each object once or more (two versions of a
directory's listing share all but their changed lines). Held whole, as a dict of oid ->
`ObjectRef`, that was ~300 B an object, and push, fetch and gc held it all before moving or
dropping anything. `Wanted` keeps up to `limit` distinct objects in memory (a push of a few
thousand objects is one group, handled exactly as before). Past that, every object met goes
to an unnamed temp file in the cache's `tmp/` (nothing left behind, however the process
ends) in runs of `limit`, each run sorted into the 256 two-hex-digit prefixes of the oids;
`groups()` then hands the objects back a range of prefixes at a time, each group read from
every run and deduplicated on its own (the first file met that uses an object stays its
path, as the walk met it). Memory holds one group of about `limit` objects whatever the
history, and since the groups split the oid space, each object is in exactly one group and
each `objects/ab/` prefix of a remote or the cache is listed once, as before.
"""

from __future__ import annotations

import marshal
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..hashing import Oid

GROUP_OBJECTS = 20_000  # distinct objects held in memory; past it, groups of about as many
GROUP_ENV = "GIT_MODEL_TEST_GROUP_OBJECTS"  # (tests: several groups out of a few objects)
PREFIXES = [f"{i:02x}" for i in range(256)]


class ObjectRef:
    """One file that uses an object (its path, for messages) and the object's size; `part`
    when the object is one part of that file (see partstore.py), not all of it.

    A file of a tracked directory keeps the directory and its path in it apart, joined only
    when a message needs it: a walk of 100,000 files holds no joined copy of each path."""

    __slots__ = ("_rel", "_top", "part", "size")

    def __init__(self, path: str, size: int, top: str = "", *, part: bool = False) -> None:
        self._rel, self.size, self._top, self.part = path, size, top, part

    @property
    def path(self) -> str:
        return f"{self._top}/{self._rel}" if self._top else self._rel

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectRef):
            return NotImplemented
        return (self.path, self.size) == (other.path, other.size)

    def __hash__(self) -> int:
        return hash((self.path, self.size))

    def __repr__(self) -> str:
        return f"ObjectRef({self.path!r}, {self.size})"


NO_REF = ObjectRef("", 0)  # the value of every object of a walk for oids only (gc)


def group_limit() -> int:
    value = os.environ.get(GROUP_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else GROUP_OBJECTS


class Wanted:
    """Objects added one at a time (`add`), each kept once, given back by `groups()`.

    `refs=False` (gc): only the oids are kept, every value is NO_REF."""

    def __init__(self, tmp: Path, *, refs: bool = True, limit: int = 0) -> None:
        self.refs = refs
        self.limit = limit or group_limit()
        self.objects: dict[Oid, ObjectRef] = {}  # until the first spill
        self._tmp = tmp
        self._file: IO[bytes] | None = None
        self._run: list[Any] = []  # records not written yet: (oid, size, rel, top, part) or oid
        self._segments: list[list[tuple[int, int, int]]] = [[] for _ in PREFIXES]

    def add(
        self, oid: Oid, size: int = 0, rel: str = "", top: str = "", part: bool = False
    ) -> None:
        """One file (`rel` inside the tracked directory `top`, or a file artifact) uses `oid`."""
        if self._file is None:
            if oid not in self.objects:
                self.objects[oid] = ObjectRef(rel, size, top, part=part) if self.refs else NO_REF
                if len(self.objects) > self.limit:
                    self._spill()
            return
        self._run.append((str(oid), size, rel, top, part) if self.refs else str(oid))
        if len(self._run) >= self.limit:
            self._flush()

    def __bool__(self) -> bool:
        return bool(self.objects) or self._file is not None

    def groups(self) -> Iterator[tuple[list[str], dict[Oid, ObjectRef]]]:
        """(prefixes, objects) in prefix order: the prefixes of each group together are all
        256, and every object added is in the group of its prefix, once. Always at least one
        group (maybe empty); ends the `Wanted` (its temp file is closed)."""
        if self._file is None:
            yield PREFIXES, self.objects
            return
        self._flush()
        try:
            start = count = 0
            for i in range(len(PREFIXES)):
                count += sum(n for _, _, n in self._segments[i])
                if count >= self.limit or i == len(PREFIXES) - 1:
                    yield PREFIXES[start : i + 1], self._read(start, i + 1)
                    start, count = i + 1, 0
        finally:
            self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._segments = [[] for _ in PREFIXES]

    def _spill(self) -> None:
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._file = tempfile.TemporaryFile(dir=self._tmp, prefix="wanted-")  # noqa: SIM115 (closed by groups())
        for oid, ref in self.objects.items():
            record = (str(oid), ref.size, ref._rel, ref._top, ref.part) if self.refs else str(oid)
            self._run.append(record)  # (marshal takes plain strings, not Oids)
        self.objects = {}
        self._flush()

    def _flush(self) -> None:
        """Write the run in hand, one marshalled list per prefix."""
        assert self._file is not None
        by_prefix: list[list[Any]] = [[] for _ in PREFIXES]
        for record in self._run:
            oid = record[0] if self.refs else record
            by_prefix[int(oid[:2], 16)].append(record)
        self._run = []
        for i, records in enumerate(by_prefix):
            if records:
                data = marshal.dumps(records)
                self._segments[i].append((self._file.tell(), len(data), len(records)))
                self._file.write(data)

    def _read(self, start: int, end: int) -> dict[Oid, ObjectRef]:
        """The objects of prefixes [start, end), each once, the first record of it kept."""
        assert self._file is not None
        out: dict[Oid, ObjectRef] = {}
        make_oid = str.__new__  # (written from Oids: checked once already)
        for i in range(start, end):
            for offset, length, _ in self._segments[i]:
                self._file.seek(offset)
                for record in marshal.loads(self._file.read(length)):
                    if not self.refs:
                        out[make_oid(Oid, record)] = NO_REF
                        continue
                    oid, size, rel, top, part = record
                    if oid not in out:
                        out[make_oid(Oid, oid)] = ObjectRef(rel, size, top, part=part)
        return out
