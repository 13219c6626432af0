"""A remote whose objects live on a Git LFS server: the git host is the object store.

An LFS object id is the SHA-256 of the file's bytes, exactly git-model's oid, so an object
pushed here is an ordinary LFS object on that host (the real `git lfs` client fetches it),
stored as the raw bytes: this store never takes a codec (`compressible = False`).

Behind the same interface as `store.Remote` (transfer.py drives both):
- `existing()` asks the batch API, 100 objects to a request, requests in parallel. For a push
  (`for_upload`) it asks with operation "upload": an object the server answers without
  actions is there, and the upload actions of the others are kept for `upload()`; otherwise
  (gc) with operation "download": only an object the server offers to send counts as held.
- `plan()` asks for the actions of a run of objects before they move (downloads, and uploads
  whose actions were not kept), so each transfer is one request; an href about to expire
  (`expires_in`/`expires_at`) is asked for again, and so is one the host refuses with 401/403.
- `upload()` PUTs the cache object from the file, hashing it as it goes: the last block is
  held back until the hash matches, so a rotten cache object never reaches the server whole.
  Then the `verify` action, when the server gives one; an object counts as sent only after.
- `download()` GETs into the cache's verify-before-rename; a connection that breaks mid-body
  is resumed with a Range request where the server accepts ranges. An object that twice
  arrives as other bytes is refused and reported (the server's copy cannot be quarantined
  from here: the host keeps it).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

from ..cache import Cache
from ..errors import CorruptObject, GitModelError, MissingObject, OversizedObject
from ..hashing import Oid
from ..incoming import store_stream
from ..termtext import visible
from . import crashpoint, lfs_http
from .lfs_api import BATCH_MAX, EXPIRY_MARGIN, MEDIA, AuthFailed, LfsApi, server_message
from .lfs_endpoint import expiry
from .lfs_http import BLOCK, Response, ServerError
from .retry import ATTEMPTS, TransferError, retry

Advance = Callable[[int], None]
HOLD = 4096  # actions kept from an existence check for the uploads that follow it
JOBS = 8  # git-lfs's default lfs.concurrenttransfers


class VerifiedBody:
    """An upload body read from a cache object: hashes what it hands out, and refuses to hand
    out the last block unless the whole hashes to the oid (the request then breaks off, and
    the server never has the whole object)."""

    def __init__(self, f: BinaryIO, oid: Oid, size: int, advance: Advance | None) -> None:
        self._f, self._oid, self._left, self._advance = f, oid, size, advance
        self._hash = hashlib.sha256()

    def read(self, n: int = BLOCK) -> bytes:
        data = self._f.read(min(max(n, 1), self._left)) if self._left > 0 else b""
        self._hash.update(data)
        self._left -= len(data)
        if (not data or self._left == 0) and (
            self._left != 0 or self._hash.hexdigest() != self._oid
        ):
            raise CorruptObject(f"object {self._oid.short} does not hash to its name")
        if data and self._advance:
            self._advance(len(data))
        return data


class ResumingBody:
    """A download body that, where the server accepts ranges, picks up after a broken
    connection with `Range: bytes=N-` instead of starting over."""

    def __init__(self, opener: Callable[[int], Response], first: Response) -> None:
        self._open, self._resp, self._pos = opener, first, 0
        self._ranges = (first.headers.get("Accept-Ranges") or "").lower() == "bytes"

    def read(self, n: int = -1) -> bytes:
        for attempt in range(ATTEMPTS):
            try:
                data = self._resp.read(n)
            except ServerError:
                if not self._ranges or attempt == ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
                with contextlib.suppress(ServerError):
                    self._resp = self._open(self._pos)
                continue
            self._pos += len(data)
            return data
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._resp.close()


class LfsRemote:
    local = False
    atomic_put = True
    compressible = False  # the LFS oid is the SHA-256 of the stored bytes

    def __init__(self, name: str, url: str, api: LfsApi) -> None:
        self.name = name
        self.url = url
        self.api = api
        self._held: dict[tuple[str, Oid], tuple[dict[str, Any], float | None]] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, name: str, url: str, options: dict[str, str], root: Path) -> LfsRemote:
        return cls(name, url, LfsApi(name, url, root))

    @property
    def label(self) -> str:
        where = self.api.href if self.url == self.api.href else f"LFS {self.api.href}"
        return where if self.name == self.url else f"{self.name} ({where})"

    @property
    def default_jobs(self) -> int:
        return JOBS

    # -- asking the batch API ----------------------------------------------------------------------

    def _ask(
        self, operation: str, objects: list[tuple[Oid, int]], jobs: int, keep: bool
    ) -> dict[Oid, dict[str, Any]]:
        """The batch API's entries for `objects`, BATCH_MAX to a request, in parallel; with
        `keep`, actions are held (up to HOLD) for the transfers that follow."""
        chunks = [objects[i : i + BATCH_MAX] for i in range(0, len(objects), BATCH_MAX)]
        found: dict[Oid, dict[str, Any]] = {}
        if not chunks:
            return found

        def one(chunk: list[tuple[Oid, int]]) -> dict[Oid, dict[str, Any]]:
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
        self,
        oids: Collection[Oid],
        jobs: int = 0,
        sizes: Mapping[Oid, int] | None = None,
        *,
        for_upload: bool = False,
    ) -> set[Oid]:
        """The subset of `oids` the server confirms it holds (see the module doc)."""
        sizes = sizes or {}
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

    def plan(
        self, oids: list[Oid], sizes: Mapping[Oid, int], *, upload: bool, jobs: int = 0
    ) -> None:
        """Get the actions for a run of objects about to move, in few requests."""
        operation = "upload" if upload else "download"
        with self._lock:
            need = [(o, sizes.get(o, 0)) for o in oids if (operation, o) not in self._held]
        if need:
            found = self._ask(operation, need, jobs, keep=False)
            with self._lock:
                for oid, entry in found.items():
                    actions = entry.get("actions")
                    act = actions.get(operation) if isinstance(actions, dict) else None
                    self._held[(operation, oid)] = (entry, _expires(act))

    def _entry(self, operation: str, oid: Oid, size: int, fresh: bool = False) -> dict[str, Any]:
        """The server's batch entry for one object: held from a plan, unless it is about to
        expire (or `fresh` asks for a new one)."""
        with self._lock:
            held = self._held.pop((operation, oid), None)
        if held is not None and not fresh:
            entry, expires = held
            if (expires is None or expires - EXPIRY_MARGIN > time.time()) and (
                entry.get("size") in (None, size)
            ):
                return entry
        what = f"asking LFS server {self.api.host} about object {oid.short}"
        found = retry(self.label, what, lambda: self.api.batch(operation, [(oid, size)]))
        got = found.get(oid)
        if got is None:
            raise TransferError(
                f"the LFS server {self.api.host} did not answer about object {oid.short}; rerun"
            )
        return got

    def _object_error(self, entry: dict[str, Any], oid: Oid, doing: str) -> None:
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

    # -- moving one object ---------------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self) -> Iterator[list[tuple[Oid, int, str]]]:
        """Each upload stands alone on an LFS server: nothing to flush at the end."""
        yield []

    def finish_uploads(self) -> None:
        """Nothing to make durable here: the server answered each verify."""

    def upload(self, cache: Cache, oid: Oid, advance: Advance | None = None) -> int:
        """PUT one cache object, then verify it; returns its size."""
        src = cache.path(oid)
        try:
            size = os.stat(src).st_size
        except FileNotFoundError:
            raise MissingObject(f"object {oid.short} is not in the local cache") from None
        what = f"uploading object {oid.short}"
        entry = self._entry("upload", oid, size)
        self._object_error(entry, oid, "upload")
        for renewed in (False, True):
            try:
                retry(
                    self.label, what, functools.partial(self._put, cache, entry, oid, size, advance)
                )
                return size
            except _Expired:
                if renewed:
                    raise TransferError(
                        f"{what}: the LFS server {self.api.host} refused the href it had just "
                        "given (expired, HTTP 401/403); rerun, and check the host's status"
                    ) from None
                entry = self._entry("upload", oid, size, fresh=True)
                self._object_error(entry, oid, "upload")
        raise AssertionError("unreachable")

    def _put(
        self, cache: Cache, entry: dict[str, Any], oid: Oid, size: int, advance: Advance | None
    ) -> None:
        actions = entry.get("actions")
        if not isinstance(actions, dict) or "upload" not in actions:
            return  # the server has it already
        action = _action(actions["upload"])
        crashpoint.before_visible()
        with open(cache.path(oid), "rb") as f:
            body = VerifiedBody(f, oid, size, advance)
            try:
                resp = self._action_call(
                    "PUT", action, "upload", f"uploading {oid.short}", body, size
                )
            except CorruptObject:
                cache.quarantine(oid)
                raise CorruptObject(
                    f"cache object {oid.short} is corrupt and was quarantined, not uploaded to "
                    f"{self.label}; 'git model add' the file again, or fetch it from another "
                    "remote"
                ) from None
        resp.read()
        resp.close()
        verify = actions.get("verify")
        if isinstance(verify, dict):
            vaction = _action(verify)
            payload = json.dumps({"oid": oid, "size": size}).encode()
            headers = {"Content-Type": MEDIA, **vaction[1]}
            resp = self._action_call(
                "POST", (vaction[0], headers), "upload", f"verifying {oid.short}", payload
            )
            resp.read()
            resp.close()
        crashpoint.visible()

    def _action_call(
        self,
        method: str,
        action: tuple[str, dict[str, str]],
        operation: str,
        what: str,
        body: bytes | VerifiedBody | None = None,
        length: int | None = None,
    ) -> Response:
        """A request to an action's href with its headers (the host's own credentials are
        added only when the href is on the endpoint's host and the action brings none)."""
        href, headers = action
        same_host = urlsplit(href).netloc == urlsplit(self.api.href).netloc
        has_auth = any(k.lower() == "authorization" for k in headers)
        if isinstance(body, VerifiedBody):
            sent = {"Content-Type": "application/octet-stream", **headers}
            resp = lfs_http.request(method, href, sent, cast(BinaryIO, body), length)
            if resp.status in (401, 403):
                resp.close()
                raise _Expired()
            if resp.status >= 300:
                return self._raise_status(resp, operation, what)
            return resp
        try:
            return self.api.call(
                method, href, operation, what, body, headers, auth=same_host and not has_auth
            )
        except AuthFailed:
            raise _Expired() from None

    def _raise_status(self, resp: Response, operation: str, what: str) -> Response:
        status = resp.status
        if status >= 500 and status not in (503,):
            resp.close()
            raise ServerError(f"HTTP {status} from {self.api.host}")
        if status in (429, 503):
            resp.close()
            time.sleep(min(resp.retry_after(1.0), 60.0))
            raise ServerError(f"HTTP {status} from {self.api.host} (busy)")
        raise self.api._error(status, operation, server_message(resp), what)

    def download(
        self,
        cache: Cache,
        oid: Oid,
        advance: Advance | None = None,
        size: int | None = None,
        tee_to: str | None = None,
    ) -> int:
        """GET one object into the cache, verified before it enters; returns its size.
        FileNotFoundError when the server does not have it."""
        what = f"downloading object {oid.short}"
        for attempt in (1, 2):
            entry = self._entry("download", oid, size or 0, fresh=attempt == 2)
            self._object_error(entry, oid, "download")
            actions = entry.get("actions")
            if not isinstance(actions, dict) or "download" not in actions:
                raise FileNotFoundError(f"object {oid.short} is not on {self.label}")
            action = _action(actions["download"])
            get = functools.partial(self._get, cache, action, oid, size, tee_to, advance)
            try:
                return retry(self.label, what, get)
            except OversizedObject:
                raise OversizedObject(
                    f"object {oid.short} on {self.label} is larger than the {size} bytes it "
                    "has: it was refused, nothing stored; push it again from a clone that has it"
                ) from None
            except (CorruptObject, _Expired):
                if attempt == 2:
                    break
                advance = None  # (its bytes were counted once)
        raise CorruptObject(
            f"object {oid.short} from {self.label} does not match its oid: it was refused, "
            "nothing stored; push it again from a clone that has it"
        )

    def _get(
        self,
        cache: Cache,
        action: tuple[str, dict[str, str]],
        oid: Oid,
        size: int | None,
        tee_to: str | None,
        advance: Advance | None,
    ) -> int:
        href, headers = action

        def opener(start: int) -> Response:
            extra = {"Range": f"bytes={start}-"} if start else {}
            resp = self._action_call(
                "GET", (href, {**headers, **extra}), "download", f"downloading {oid.short}"
            )
            if start and resp.status != 206:
                resp.close()
                raise ServerError("the server did not resume the download")
            return resp

        first = opener(0)
        announced = first.headers.get("Content-Length")
        if size is not None and announced and announced.isdigit() and int(announced) > size:
            first.close()
            raise OversizedObject(f"object {oid.short} is {announced} bytes, more than {size}")
        body = ResumingBody(opener, first)
        stream = _Counting(body, advance)
        try:
            return store_stream(cache, cast(BinaryIO, stream), oid, size, tee_to)
        finally:
            body.close()


class _Expired(GitModelError):  # (a GitModelError: retry() passes it straight up)
    """An action's href was refused (401/403): it expired, or it was never good."""


class _Counting:
    def __init__(self, f: ResumingBody, advance: Advance | None) -> None:
        self._f, self._advance = f, advance

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        if data and self._advance:
            self._advance(len(data))
        return data


def _expires(action: Any) -> float | None:
    return expiry(action) if isinstance(action, dict) else None


def _action(action: Any) -> tuple[str, dict[str, str]]:
    """(href, headers) of an action, checked: an http(s) href and string headers."""
    href = action.get("href") if isinstance(action, dict) else None
    headers = action.get("header") if isinstance(action, dict) else None
    if not isinstance(href, str) or not href.lower().startswith(("http://", "https://")):
        raise TransferError("the LFS server gave an action without an http(s) href; rerun")
    if not isinstance(headers, dict):
        headers = {}
    return href, {str(k): str(v) for k, v in headers.items() if "\n" not in f"{k}{v}"}
