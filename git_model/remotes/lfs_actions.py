"""What an LFS server says about each object: its batch answers, asked ahead and held.

A batch answer gives, per object, either its actions (where to PUT, verify or GET it: an href,
headers, an expiry) or its error. They are asked for 100 objects to a request (`BATCH_MAX`),
requests in parallel, and held per (operation, oid) for the transfer that follows, so that an
object moves with one request of its own, not two:

- `existing()` reads presence from them. For a push (`for_upload`) it asks with operation
  "upload": an object the server answers without actions is there, and the upload actions of
  the others are held for the uploads; otherwise (gc) with "download": only an object the
  server offers to send counts as held.
- `plan()` asks for a run of objects about to move (downloads, and uploads whose actions were
  not held).
- `entry()` hands one object's answer to its transfer, asking again when the held one is about
  to expire (`expires_in`/`expires_at`) or the transfer was refused with it (`fresh`), and
  raising the server's error for that object as one line.

The transfers themselves (the bodies, the PUT, GET and verify) are lfs.py's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..hashing import Oid
from ..termtext import visible
from .lfs_api import BATCH_MAX, EXPIRY_MARGIN, LfsApi
from .lfs_endpoint import expiry
from .retry import TransferError, retry

HOLD = 4096  # actions kept from an existence check for the uploads that follow it
JOBS = 8  # git-lfs's default lfs.concurrenttransfers

Entry = dict[str, Any]  # the server's batch answer for one object


class Actions:
    """The batch answers of one LFS remote (`label`, for messages), held until used."""

    def __init__(self, api: LfsApi, label: str) -> None:
        self.api = api
        self.label = label
        self._held: dict[tuple[str, Oid], tuple[Entry, float | None]] = {}
        self._lock = threading.Lock()

    def _ask(
        self, operation: str, objects: list[tuple[Oid, int]], jobs: int, keep: bool
    ) -> dict[Oid, Entry]:
        """The batch API's entries for `objects`, BATCH_MAX to a request, in parallel; with
        `keep`, actions are held (up to HOLD) for the transfers that follow."""
        chunks = [objects[i : i + BATCH_MAX] for i in range(0, len(objects), BATCH_MAX)]
        found: dict[Oid, Entry] = {}
        if not chunks:
            return found

        def one(chunk: list[tuple[Oid, int]]) -> dict[Oid, Entry]:
            what = f"asking LFS server {self.api.host} about {len(chunk)} object(s)"
            return retry(self.label, what, lambda: self.api.batch(operation, chunk))

        with ThreadPoolExecutor(max(1, min(jobs or JOBS, len(chunks)))) as pool:
            for part in pool.map(one, chunks):
                found.update(part)
        if keep:
            with self._lock:
                for oid, entry in found.items():
                    if len(self._held) >= HOLD:
                        break
                    actions = entry.get("actions")
                    if isinstance(actions, dict) and operation in actions:
                        self._held[(operation, oid)] = (entry, _expires(actions[operation]))
        return found

    def existing(
        self, oids: Collection[Oid], jobs: int, sizes: Mapping[Oid, int], for_upload: bool
    ) -> set[Oid]:
        """The subset of `oids` the server confirms it holds (see the module doc)."""
        objects = [(o, sizes.get(o, 0)) for o in oids]
        operation = "upload" if for_upload else "download"
        found = self._ask(operation, objects, jobs, keep=for_upload)
        there = set()
        for oid, entry in found.items():
            actions = entry.get("actions")
            has = isinstance(actions, dict) and "download" in actions
            if for_upload:
                has = not entry.get("error") and not (isinstance(actions, dict) and actions)
            if has:
                there.add(oid)
        return there

    def plan(self, oids: list[Oid], sizes: Mapping[Oid, int], operation: str, jobs: int) -> None:
        """Get the actions for a run of objects about to move, in few requests."""
        with self._lock:
            need = [(o, sizes.get(o, 0)) for o in oids if (operation, o) not in self._held]
        if need:
            found = self._ask(operation, need, jobs, keep=False)
            with self._lock:
                for oid, entry in found.items():
                    actions = entry.get("actions")
                    act = actions.get(operation) if isinstance(actions, dict) else None
                    self._held[(operation, oid)] = (entry, _expires(act))

    def entry(self, operation: str, oid: Oid, size: int, fresh: bool = False) -> Entry:
        """The server's batch entry for one object: held from a plan, unless it is about to
        expire (or `fresh` asks for a new one). The server's error for it is raised."""
        with self._lock:
            held = self._held.pop((operation, oid), None)
        if held is not None and not fresh:
            entry, expires = held
            if (expires is None or expires - EXPIRY_MARGIN > time.time()) and (
                entry.get("size") in (None, size)
            ):
                self._raise_error(entry, oid, operation)
                return entry
        what = f"asking LFS server {self.api.host} about object {oid.short}"
        found = retry(self.label, what, lambda: self.api.batch(operation, [(oid, size)]))
        got = found.get(oid)
        if got is None:
            raise TransferError(
                f"the LFS server {self.api.host} did not answer about object {oid.short}; rerun"
            )
        self._raise_error(got, oid, operation)
        return got

    def _raise_error(self, entry: Entry, oid: Oid, doing: str) -> None:
        error = entry.get("error")
        if not isinstance(error, dict):
            return
        code = error.get("code")
        message = visible(str(error.get("message", ""))[:200])
        if code in (404, 410) and doing == "download":
            raise FileNotFoundError(f"object {oid.short} is not on {self.label}")
        raise TransferError(
            f"the LFS server {self.api.host} refused {doing} of object {oid.short} "
            f"(error {code}: {message}); "
            + (
                "push it again from a clone that has it"
                if doing == "download"
                else "check the host's limits for one file (see its LFS documentation)"
            )
        )


def checked_action(action: Any) -> tuple[str, dict[str, str]]:
    """(href, headers) of an action, checked: an http(s) href and string headers."""
    href = action.get("href") if isinstance(action, dict) else None
    headers = action.get("header") if isinstance(action, dict) else None
    if not isinstance(href, str) or not href.lower().startswith(("http://", "https://")):
        raise TransferError("the LFS server gave an action without an http(s) href; rerun")
    if not isinstance(headers, dict):
        headers = {}
    return href, {str(k): str(v) for k, v in headers.items() if "\n" not in f"{k}{v}"}


def _expires(action: Any) -> float | None:
    return expiry(action) if isinstance(action, dict) else None
