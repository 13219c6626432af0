"""Remote object stores: where a team shares the bytes that git does not hold.

`store.Remote` is one remote (any fsspec URL: a directory, s3://, ssh://, gs://, az://…) laid
out like the cache, `objects/ab/cdef…`; `options` turns a URL and its git config into a
connected file system. `lfs.LfsRemote` keeps the objects on a Git LFS server (the git host)
through the LFS batch API, behind the same interface. Importing this package imports no backend: fsspec and the cloud
libraries load only when a remote is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .retry import TransferError
from .store import Remote

if TYPE_CHECKING:
    from .lfs import LfsRemote

    Store = Remote | LfsRemote

__all__ = ["Remote", "TransferError", "is_lfs", "open_store"]


def is_lfs(url: str) -> bool:
    """Is this remote URL a Git LFS endpoint (`lfs`, `lfs:GITREMOTE`, or http(s)://)?"""
    low = url.lower()
    return low == "lfs" or low.startswith(("lfs:", "http://", "https://"))


def open_store(
    name: str,
    url: str,
    options: dict[str, str],
    root: Path,
    compress: object = "off",
    pack: object = "off",
    index_dir: Path | None = None,
) -> Store:
    """The store behind a remote: a Git LFS server (lfs.py, which imports http.client only
    when used), or any fsspec URL (store.py). `root`: the work tree, whose git set-up says
    where an LFS server is. `compress`: model.compress for uploads (codec.py; LFS takes none);
    `pack`: model.pack for uploads, `index_dir` where pack indexes are kept (packs.py; LFS
    has no packs)."""
    if is_lfs(url):
        from .lfs import LfsRemote

        return LfsRemote.open(name, url, options, root)
    return Remote.open(name, url, options, compress, pack, index_dir)
