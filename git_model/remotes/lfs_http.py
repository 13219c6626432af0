"""HTTP for the LFS remote: the standard library's http.client, used with care.

- One keep-alive connection per thread and host (a push of 10,000 objects makes 20,000
  requests: a new TCP and TLS connection for each would cost more than the bytes).
- Bodies stream from the file in 1 MiB blocks (http.client's default is 8 KiB), with a
  Content-Length, so a 1 GiB upload never sits in memory; responses are read as streams.
- Proxies from the environment (`https_proxy`, `http_proxy`, `no_proxy`), as git and
  urllib honour them: a CONNECT tunnel for https, the absolute URL for plain http.
- `git credential fill/approve/reject` for Basic authentication, so every credential helper
  and token a user already has for git works; a password is only ever in memory and in the
  Authorization header, never in a message, a log or a file.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import subprocess
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from ..errors import GitModelError

BLOCK = 1 << 20
TIMEOUT = 120.0  # seconds without a byte before a request is given up (then retried)
MAX_JSON = 64 << 20  # a batch response larger than this is not an LFS server's

_local = threading.local()


@dataclass(frozen=True)
class Credential:
    """What `git credential fill` answered (kept whole, so approve/reject can echo it)."""

    fields: tuple[tuple[str, str], ...]

    def get(self, key: str) -> str:
        return next((v for k, v in self.fields if k == key), "")

    def header(self) -> str:
        pair = f"{self.get('username')}:{self.get('password')}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def __repr__(self) -> str:  # never show the password, even in a traceback
        return f"Credential(username={self.get('username')!r})"


def _credential_input(url: str, fields: tuple[tuple[str, str], ...] = ()) -> bytes:
    parts = urlsplit(url)
    lines = [f"protocol={parts.scheme}", f"host={parts.netloc.rpartition('@')[2]}"]
    lines.append(f"path={parts.path.lstrip('/')}")
    if parts.username and not any(k == "username" for k, _ in fields):
        lines.append(f"username={parts.username}")
    lines += [f"{k}={v}" for k, v in fields if k not in ("protocol", "host", "path")]
    return ("\n".join(lines) + "\n\n").encode()


def credential_fill(url: str) -> Credential | None:
    """Ask git for a username and password for `url` (helpers, then a prompt where git may
    prompt); None when git has none to give."""
    try:
        proc = subprocess.run(
            ["git", "credential", "fill"],
            input=_credential_input(url),
            capture_output=True,
            check=False,
            timeout=600,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    fields = []
    for line in proc.stdout.decode(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields.append((key, value))
    cred = Credential(tuple(fields))
    return cred if cred.get("password") else None


def credential_tell(action: str, url: str, cred: Credential) -> None:
    """`git credential approve|reject`: let the helpers keep a credential that worked and
    forget one the server refused."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(
            ["git", "credential", action],
            input=_credential_input(url, cred.fields),
            capture_output=True,
            check=False,
            timeout=60,
        )


class ServerError(Exception):
    """A 5xx or a broken connection: transient, retried by retry.retry."""


def _proxy_for(scheme: str, host: str) -> str | None:
    proxies = urllib.request.getproxies()
    proxy = proxies.get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy if "://" in proxy else "http://" + proxy


def _connect(scheme: str, netloc: str) -> http.client.HTTPConnection:
    host = netloc.rpartition("@")[2]
    proxy = _proxy_for(scheme, host.rpartition(":")[0] if "]" not in host else host)
    conn: http.client.HTTPConnection
    if proxy:
        p = urlsplit(proxy)
        port = p.port or (443 if p.scheme == "https" else 80)
        if scheme == "https":
            conn = http.client.HTTPSConnection(
                p.hostname or "", port, timeout=TIMEOUT, blocksize=BLOCK
            )
            conn.set_tunnel(host)
        else:
            conn = http.client.HTTPConnection(
                p.hostname or "", port, timeout=TIMEOUT, blocksize=BLOCK
            )
            conn._git_model_proxied = True  # type: ignore[attr-defined]
        return conn
    if scheme == "https":
        return http.client.HTTPSConnection(host, timeout=TIMEOUT, blocksize=BLOCK)
    if scheme == "http":
        return http.client.HTTPConnection(host, timeout=TIMEOUT, blocksize=BLOCK)
    raise GitModelError(f"the LFS server gave a URL that is not http(s): {scheme}://…")


def _connection(scheme: str, netloc: str) -> http.client.HTTPConnection:
    pool: dict[tuple[str, str], http.client.HTTPConnection] | None = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    conn = pool.get((scheme, netloc))
    if conn is None:
        conn = pool[(scheme, netloc)] = _connect(scheme, netloc)
    return conn


def _drop(scheme: str, netloc: str) -> None:
    pool = getattr(_local, "pool", None)
    if pool is not None and (conn := pool.pop((scheme, netloc), None)) is not None:
        conn.close()


def close_all() -> None:
    """Close this thread's connections."""
    pool = getattr(_local, "pool", None) or {}
    for conn in pool.values():
        conn.close()
    pool.clear()


class Response:
    """A response whose body is read as a stream; `close()` keeps the connection for reuse
    only when the whole body was read."""

    def __init__(self, raw: http.client.HTTPResponse, key: tuple[str, str]) -> None:
        self.raw = raw
        self.status = raw.status
        self.headers = raw.headers
        self._key = key

    def read(self, n: int = -1) -> bytes:
        try:
            return self.raw.read(n) if n >= 0 else self.raw.read()
        except (OSError, http.client.HTTPException) as e:
            _drop(*self._key)
            raise ServerError(f"the connection broke while reading: {e}") from e

    def json(self) -> Any:
        import json

        length = self.raw.getheader("Content-Length")
        if length and length.isdigit() and int(length) > MAX_JSON:
            raise GitModelError("the LFS server sent an oversized answer; is the URL right?")
        data = self.read(MAX_JSON + 1)
        self.close()
        if len(data) > MAX_JSON:
            raise GitModelError("the LFS server sent an oversized answer; is the URL right?")
        try:
            return json.loads(data)
        except ValueError:
            return None

    def text(self, limit: int = 4096) -> str:
        data = self.read(limit)
        self.close()
        return data.decode(errors="replace")

    def close(self) -> None:
        if not self.raw.isclosed():
            # a body not read to the end cannot leave the connection reusable
            _drop(*self._key)
        self.raw.close()

    def retry_after(self, default: float) -> float:
        """Seconds the server asks to wait (Retry-After as seconds or an HTTP date)."""
        value = (self.raw.getheader("Retry-After") or "").strip()
        if value.isdigit():
            return float(value)
        if value:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
        return default


def request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | BinaryIO | None = None,
    length: int | None = None,
) -> Response:
    """Send one request on this thread's connection to the URL's host. A connection the server
    closed while idle is reopened once when the body can be sent again (bytes); any other
    failure to connect or send is a ServerError (transient)."""
    parts = urlsplit(url)
    key = (parts.scheme.lower(), parts.netloc)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    all_headers = {"User-Agent": "git-model", **headers}
    if body is not None:
        size = len(body) if isinstance(body, bytes) else length
        all_headers["Content-Length"] = str(size)
    for attempt in (1, 2):
        conn = _connection(*key)
        path = url if getattr(conn, "_git_model_proxied", False) else target
        try:
            conn.request(method, path, body=body, headers=all_headers)
            raw = conn.getresponse()
        except GitModelError:  # the body refused to be sent (see lfs.VerifiedBody)
            _drop(*key)
            raise
        except (ConnectionError, http.client.HTTPException, TimeoutError, OSError) as e:
            _drop(*key)
            stale = isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError))
            if attempt == 1 and stale and not (body is not None and not isinstance(body, bytes)):
                continue
            raise ServerError(f"{type(e).__name__}: {e}") from e
        return Response(raw, key)
    raise AssertionError("unreachable")
