"""A real Git LFS server for the tests and the bench: giftless (local storage, the `basic`
transfer adapter) behind a small WSGI wrapper that stands in for a git host's tokens.

    python tests/lfs_server.py PORT STORAGE_DIR [--user U --token T] [--die-after-puts N]
                                               [--corrupt-downloads]

- With --user/--token, the batch API needs HTTP Basic auth with that pair (as GitHub or
  GitLab take a user and a personal access token); the hrefs the batch API hands out carry
  their own headers (giftless's signed tokens), as a host's presigned URLs do.
- --die-after-puts N: the process exits at once (no reply) on the N+1th upload: a server
  that goes away mid-push.
- Downloads are served by the wrapper in 1 MiB blocks with a Content-Length, as a host's
  storage serves them (see _serve); the batch API, uploads and verify are giftless's.
- --corrupt-downloads: every download sends other bytes of the same size (the first 64
  inverted): a server that returns the wrong object.

The repository is served at http://127.0.0.1:PORT/team/models.git/info/lfs.
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any


def read_write(_request: Any) -> Any:
    """giftless's allow_anon:read_write with a named identity: the hrefs it signs carry the
    identity as the JWT subject, and PyJWT >= 2.10 refuses one that is not a string."""
    from giftless.auth.identity import DefaultIdentity, Permission

    user = DefaultIdentity(name="tester", id="tester")
    user.allow(permissions=Permission.all())
    return user


def make_app(storage: str, user: str, token: str, die_after: int, corrupt: bool) -> Any:
    from giftless.app import init_app

    app = init_app(
        additional_config={
            "AUTH_PROVIDERS": ["lfs_server:read_write"],
            "LEGACY_ENDPOINTS": False,
            # its signed hrefs: PyJWT refuses giftless's default 9-byte key
            "PRE_AUTHORIZED_ACTION_PROVIDER": {
                "factory": "giftless.auth.jwt:factory",
                "options": {"private_key": "git-model-tests-" * 4, "default_lifetime": 900},
            },
            "TRANSFER_ADAPTERS": {
                "basic": {
                    "factory": "giftless.transfer.basic_streaming:factory",
                    "options": {
                        "storage_class": "giftless.storage.local_storage:LocalStorage",
                        "storage_options": {"path": storage},
                        "action_lifetime": 900,
                    },
                }
            },
        }
    )
    inner = app.wsgi_app
    want = "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode() if user else ""
    puts = [0]

    def wrapper(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        if want and path.endswith("/objects/batch") and environ.get("HTTP_AUTHORIZATION") != want:
            # (with an escape sequence, as a hostile host could send: shown visibly, issue 20)
            body = b'{"message": "Credentials needed\\u001b]0;pwned\\u0007"}'
            start(
                "401 Unauthorized",
                [
                    ("Content-Type", "application/vnd.git-lfs+json"),
                    ("WWW-Authenticate", 'Basic realm="lfs"'),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        if method == "PUT" and die_after >= 0:
            if puts[0] >= die_after:
                os._exit(3)
            puts[0] += 1
        if method == "GET" and "/objects/storage/" in path and "/verify" not in path:
            oid = path.rstrip("/").rsplit("/", 1)[-1]
            file = os.path.join(storage, "team", "models", oid)
            if os.path.isfile(file):
                return _serve(file, start, corrupt, environ.get("werkzeug.socket"))
        return inner(environ, start)  # type: ignore[no-any-return]

    return wrapper


def _serve(
    file: str, start: Callable[..., Any], corrupt: bool, sock: socket.socket | None
) -> Iterable[bytes]:
    """An object as a host's storage sends it: a Content-Length, and the file handed to the
    kernel (`sendfile`, as nginx or a CDN serves it; giftless's own GET sends the file as an
    iterator of lines, one chunked-encoding chunk per line: ~4 million chunks for 1 GiB of
    random bytes, which any client spends a minute parsing). Without the socket, 1 MiB
    blocks. With `corrupt`, the same size in other bytes: its first 64 bytes inverted."""
    size = os.path.getsize(file)
    start(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))],
    )

    def blocks() -> Iterable[bytes]:
        with open(file, "rb") as f:
            if sock is not None and not corrupt:
                yield b""  # (werkzeug sends the status line and headers, and flushes)
                sock.sendfile(f)
                return
            while block := f.read(1 << 20):
                yield bytes(b ^ 0xFF for b in block[:64]) + block[64:] if corrupt else block

    return blocks()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("storage")
    parser.add_argument("--user", default="")
    parser.add_argument("--token", default="")
    parser.add_argument("--die-after-puts", type=int, default=-1)
    parser.add_argument("--corrupt-downloads", action="store_true")
    args = parser.parse_args()
    from werkzeug.serving import WSGIRequestHandler, run_simple

    WSGIRequestHandler.log_request = lambda *a, **k: None  # type: ignore[method-assign]
    app = make_app(args.storage, args.user, args.token, args.die_after_puts, args.corrupt_downloads)
    run_simple("127.0.0.1", args.port, app, threaded=True)


if __name__ == "__main__":
    main()
