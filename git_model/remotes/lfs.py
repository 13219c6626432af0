"""A remote whose objects live on a Git LFS server: the git host is the object store.

An LFS object id is the SHA-256 of the file's bytes, exactly git-model's oid, so an object
pushed here is an ordinary LFS object on that host (the real `git lfs` client fetches it),
stored as the raw bytes: this store never takes a codec (`compressible = False`).

Behind the same interface as `store.Remote` (transfer.py drives both). `existing()` and
`plan()` read and gather the batch API's answers, held until each object moves
(lfs_actions.py); here is how it moves (an href the host refuses with 401/403 is asked for
once more):
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
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

from ..cache import Cache
from ..errors import CorruptObject, GitModelError, MissingObject, OversizedObject
from ..hashing import Oid
from ..incoming import store_stream
from . import crashpoint, lfs_http
from .lfs_actions import JOBS, Actions, checked_action
from .lfs_api import MEDIA, AuthFailed, LfsApi, server_message
from .lfs_http import BLOCK, Response, ServerError
from .retry import ATTEMPTS, TransferError, retry

Advance = Callable[[int], None]


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
        self.actions = Actions(api, self.label)

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

    # -- what the server holds: its batch answers (lfs_actions.py) ---------------------------

    def existing(
        self,
        oids: Collection[Oid],
        jobs: int = 0,
        sizes: Mapping[Oid, int] | None = None,
        *,
        for_upload: bool = False,
    ) -> set[Oid]:
        """The subset of `oids` the server confirms it holds (see lfs_actions.py)."""
        return self.actions.existing(oids, jobs, sizes or {}, for_upload)

    def plan(
        self, oids: list[Oid], sizes: Mapping[Oid, int], *, upload: bool, jobs: int = 0
    ) -> None:
        """Get the actions for a run of objects about to move, in few requests."""
        self.actions.plan(oids, sizes, "upload" if upload else "download", jobs)

    # -- moving one object ---------------------------------------------------------------------

    packing = False  # an LFS server holds each object under its own oid: no packs

    def upload_packed(
        self, cache: Cache, oids: list[Oid], advance: Advance | None, done: Any
    ) -> list[Oid]:
        return oids

    def plan_packed(self, oids: list[Oid], sizes: dict[Oid, int]) -> bool:
        return False

    def fetch_packed(
        self, cache: Cache, sizes: dict[Oid, int], jobs: int, advance: Advance | None, done: Any
    ) -> set[Oid]:
        return set()

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
        entry = self.actions.entry("upload", oid, size)
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
                entry = self.actions.entry("upload", oid, size, fresh=True)
        raise AssertionError("unreachable")

    def _put(
        self, cache: Cache, entry: dict[str, Any], oid: Oid, size: int, advance: Advance | None
    ) -> None:
        actions = entry.get("actions")
        if not isinstance(actions, dict) or "upload" not in actions:
            return  # the server has it already
        action = checked_action(actions["upload"])
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
            vaction = checked_action(verify)
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
            entry = self.actions.entry("download", oid, size or 0, fresh=attempt == 2)
            actions = entry.get("actions")
            if not isinstance(actions, dict) or "download" not in actions:
                raise FileNotFoundError(f"object {oid.short} is not on {self.label}")
            action = checked_action(actions["download"])
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
