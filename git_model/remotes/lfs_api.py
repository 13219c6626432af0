"""The Git LFS batch API: one request names up to 100 objects, the answer gives each one's
actions (where to PUT or GET it, with which headers, until when) or its error.

Authentication goes the way git-lfs does it: a request first goes without credentials (a
public repository needs none; an ssh endpoint's headers come from git-lfs-authenticate); a
401 or 403 asks `git credential fill`; a credential that then works is approved, one the
server refuses is rejected and asked for once more, and a second refusal is one line that
says what to do. Every error from the host (404, 413, 422, 429/503 after waiting what its
Retry-After asks, 5xx after retries) becomes one line naming the host and what to do.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import GitModelError
from ..hashing import Oid, is_oid
from ..termtext import visible
from . import lfs_http
from .lfs_endpoint import Endpoint, find, ssh_authenticate
from .lfs_http import Credential, Response, ServerError
from .retry import TransferError

MEDIA = "application/vnd.git-lfs+json"
BATCH_MAX = 100  # objects in one batch request (hosts refuse more: GitHub's limit is 100)
BUSY_WAITS = 5  # 429/503 answers waited out (as Retry-After asks) before giving up
BUSY_MAX_WAIT = 60.0
EXPIRY_MARGIN = 10.0  # an href this close to expiring is asked for again before use


class AuthFailed(TransferError):
    """The host refused the credentials (or had none to refuse)."""


def server_message(resp: Response) -> str:
    """The `message` of an LFS error answer, made printable and short."""
    try:
        body = resp.json()
    except GitModelError:
        return ""
    text = body.get("message") if isinstance(body, dict) else None
    if not isinstance(text, str):
        return ""
    text = visible(text.strip())
    return text[:200] + ("…" if len(text) > 200 else "")


class LfsApi:
    """One LFS endpoint: the batch API, and the credentials every request shares."""

    def __init__(self, name: str, url: str, root: Path) -> None:
        self.name = name
        self.url = url
        self._root = root
        self._lock = threading.Lock()
        self._endpoints: dict[str, Endpoint] = {}
        self._cred: Credential | None = None
        self._approved = False
        self.href = self.endpoint("download").href

    @property
    def host(self) -> str:
        return urlsplit(self.href).netloc.rpartition("@")[2]

    def endpoint(self, operation: str) -> Endpoint:
        """The endpoint for an operation (an ssh remote asks per operation, and again once
        the answer expires)."""
        with self._lock:
            ep = self._endpoints.get(operation)
            if ep is None:
                ep = self._endpoints[operation] = find(
                    self._root, self.name, self.url, operation=operation
                )
            elif ep.ssh is not None and ep.expires and ep.expires - EXPIRY_MARGIN < time.time():
                ssh_authenticate(self._root, ep, operation)
            return ep

    def _error(self, status: int, operation: str, message: str, what: str) -> GitModelError:
        host, said = self.host, f": {message}" if message else ""
        if status in (401, 403):
            access = "write to" if operation == "upload" else "read"
            return AuthFailed(
                f"the LFS server {host} refused access (HTTP {status}{said}) {what}; check "
                f"that the token git gives for {host} ('git credential fill') may {access} "
                "this repository, or log in again"
            )
        if status == 404:
            return TransferError(
                f"no LFS repository at {self.href} (HTTP 404{said}); check that the "
                "repository exists and your account may see it, and the endpoint "
                "(git model remote list; git config lfs.url)"
            )
        if status == 413:
            return TransferError(
                f"the LFS server {host} refused {what} as too large (HTTP 413{said}); "
                "the host limits the size of one file: see its LFS limits"
            )
        if status == 422:
            return TransferError(
                f"the LFS server {host} refused {what} as invalid (HTTP 422{said}); "
                "check that the endpoint is a Git LFS server"
            )
        if status in (429, 503):
            return TransferError(
                f"the LFS server {host} is busy (HTTP {status}{said}) {what}, still after "
                f"{BUSY_WAITS} waits; rerun later: only what is missing moves"
            )
        return TransferError(
            f"the LFS server {host} answered HTTP {status}{said} {what}; rerun, or check "
            "the endpoint (git model remote list)"
        )

    def call(
        self,
        method: str,
        url: str,
        operation: str,
        what: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        auth: bool = True,
    ) -> Response:
        """One request to the LFS server with the shared credentials; a non-2xx answer is
        a one-line GitModelError (5xx and broken connections: ServerError, to be retried)."""
        waits = 0
        asked = 0  # credentials got from git for this request
        while True:
            sent = {"Accept": MEDIA, **(headers or {})}
            if body is not None:
                sent.setdefault("Content-Type", MEDIA)
            cred = None
            if auth:
                ep = self.endpoint(operation)
                sent = {**ep.headers, **sent}
                cred = self._cred
                if cred is not None and not any(k.lower() == "authorization" for k in sent):
                    sent["Authorization"] = cred.header()
            resp = lfs_http.request(method, url, sent, body)
            status = resp.status
            if status < 300:
                if cred is not None and not self._approved:
                    self._approved = True
                    lfs_http.credential_tell("approve", self.href, cred)
                return resp
            if status >= 500 and status != 503:
                resp.close()
                raise ServerError(f"HTTP {status} from {self.host}")
            message = server_message(resp)
            if status in (429, 503) and waits < BUSY_WAITS:
                waits += 1
                time.sleep(min(resp.retry_after(2.0**waits), BUSY_MAX_WAIT))
                continue
            if status in (401, 403) and auth and asked < 2 and self._renew(cred, operation):
                asked += 1
                continue
            raise self._error(status, operation, message, what)

    def _renew(self, refused: Credential | None, operation: str) -> bool:
        """After a 401/403: reject the credential the server refused and ask git for one
        (another thread may already have). False when git has none to give."""
        with self._lock:
            if self._cred is not refused:
                return True  # another request already renewed it: try with that
            if refused is not None:
                lfs_http.credential_tell("reject", self.href, refused)
                self._cred, self._approved = None, False
            ep = self._endpoints.get(operation)
            if ep is not None and ep.ssh is not None and refused is None and ep.headers:
                ssh_authenticate(self._root, ep, operation)  # its token may have expired
            self._cred = lfs_http.credential_fill(self.href)
            return self._cred is not None

    def batch(
        self, operation: str, objects: Iterable[tuple[Oid, int]]
    ) -> dict[Oid, dict[str, Any]]:
        """Ask about up to BATCH_MAX objects: oid -> the server's entry for it ({"actions":
        {...}} or {"error": {"code", "message"}}; neither: an upload the server needs not)."""
        wanted = dict(objects)
        payload = {
            "operation": operation,
            "transfers": ["basic"],
            "objects": [{"oid": o, "size": s} for o, s in wanted.items()],
            "hash_algo": "sha256",
        }
        ep = self.endpoint(operation)
        what = f"for a batch of {len(wanted)} object(s)"
        resp = self.call(
            "POST", ep.href + "/objects/batch", operation, what, json.dumps(payload).encode()
        )
        answer = resp.json()
        if not isinstance(answer, dict) or not isinstance(answer.get("objects"), list):
            raise TransferError(
                f"{self.host} did not answer like a Git LFS server at {ep.href}/objects/batch; "
                "check the endpoint (git model remote list; git config lfs.url)"
            )
        transfer = answer.get("transfer", "basic")
        if transfer not in (None, "basic"):
            raise TransferError(f"the LFS server {self.host} offers only transfer {transfer!r}")
        found: dict[Oid, dict[str, Any]] = {}
        for entry in answer["objects"]:
            if not isinstance(entry, dict) or not is_oid(str(entry.get("oid", ""))):
                continue
            oid = Oid(entry["oid"])
            if oid in wanted:  # an answer about an object not asked about is ignored
                found[oid] = entry
        return found
