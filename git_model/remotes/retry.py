"""Retrying transient failures of a remote, and naming the ones that are not.

Networks drop connections and object stores throttle: a push of 10,000 objects should not die
of one reset. A failure that may pass (a connection reset, a timeout, a throttled request) is
retried with exponential backoff and jitter; one that will not (permission denied, no such
bucket, an untrusted host key, a full disk) is reported at once. Either way the message names
what was being done and the remote it was done to.

Object-store clients (s3fs through botocore, gcsfs, adlfs) already retry with backoff, throttling
included; their remotes get one attempt here, so an unreachable endpoint fails in seconds
instead of retries multiplying retries.
"""

from __future__ import annotations

import errno
import random
import time
from collections.abc import Callable
from typing import TypeVar

from ..errors import GitModelError

T = TypeVar("T")
ATTEMPTS = 4
# errors that retrying cannot fix (matched by class name: the backends' own exception types)
PERMANENT = frozenset(
    {
        "PermissionDenied",
        "HostKeyNotVerifiable",
        "KeyImportError",
        "NoCredentialsError",
        "ClientAuthenticationError",
        "NoSuchBucket",
    }
)


class TransferError(GitModelError):
    """An object could not be moved to or from a remote."""


def _transient(e: BaseException) -> bool:
    if not isinstance(e, Exception) or isinstance(e, GitModelError):
        return False
    if isinstance(e, (PermissionError, FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        return False
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return False
    if isinstance(e, (TypeError, ValueError, ImportError, AttributeError, KeyError)):
        return False
    return not any(cls.__name__ in PERMANENT for cls in type(e).__mro__)


def describe(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text and text[0] else type(e).__name__


def retry(label: str, what: str, fn: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """Run `fn`, retrying transient failures with exponential backoff and jitter."""
    delay = 0.2
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except (FileNotFoundError, GitModelError):
            raise
        except Exception as e:
            if not _transient(e):
                raise TransferError(f"{what} on remote {label} failed: {describe(e)}") from e
            if attempt == attempts:
                times = f" {attempts} times" if attempts > 1 else ""
                raise TransferError(
                    f"{what} on remote {label} failed{times} ({describe(e)}); "
                    "rerun once the remote is reachable: only what is missing moves"
                ) from e
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")
