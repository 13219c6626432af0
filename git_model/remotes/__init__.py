"""Remote object stores: where a team shares the bytes that git does not hold.

`store.Remote` is one remote (any fsspec URL: a directory, s3://, ssh://, gs://, az://…) laid
out like the cache, `objects/ab/cdef…`; `options` turns a URL and its git config into a
connected file system. Importing this package imports no backend: fsspec and the cloud
libraries load only when a remote is opened.
"""

from __future__ import annotations

from .retry import TransferError
from .store import Remote

__all__ = ["Remote", "TransferError"]
