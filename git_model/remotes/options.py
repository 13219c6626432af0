"""From a remote's URL and its `git config model.remote.NAME.*` values to an fsspec file system.

git config keys are lower-case letters, digits and dashes, so `endpointurl` or `endpoint-url`
has to become s3fs's `endpoint_url`: a short alias table per protocol covers the options people
set most, and any other key passes through with dashes made underscores. Values are typed the
way git would read them (true/false, integers). Credentials never come from here unless the
user puts them in their own untracked git config: the libraries find them where they always
do (environment, `~/.aws`, the ssh agent and `~/.ssh`).

A missing backend library is a one-line error naming the extra to install, so the base install
carries no cloud library and a local directory remote still works out of the box.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import GitModelError

# extra -> the package it installs (named in hints: it installs today, git-model[extra] needs
# git-model on the package index)
EXTRA_PACKAGES = {"s3": "s3fs", "ssh": "sshfs", "gcs": "gcsfs", "azure": "adlfs"}
# protocol -> the extra that installs its backend
EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "ssh": "ssh",
    "sftp": "ssh",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "adl": "azure",
}

# protocol -> git config key -> fsspec keyword (a dotted name goes into a nested dict)
ALIASES: dict[str, dict[str, str]] = {
    "s3": {
        "endpointurl": "endpoint_url",
        "region": "client_kwargs.region_name",
        "requesterpays": "requester_pays",
        "profile": "profile",
    },
    "ssh": {
        "user": "username",
        "keyfile": "client_keys",
        "knownhosts": "known_hosts",
    },
    "gs": {"credentialpath": "token", "projectname": "project"},
    "az": {"accountname": "account_name"},
}
ALIASES["s3a"] = ALIASES["s3"]
ALIASES["sftp"] = ALIASES["ssh"]
ALIASES["gcs"] = ALIASES["gs"]
ALIASES["abfs"] = ALIASES["abfss"] = ALIASES["az"]

# options that are ours, not the backend's
OWN_KEYS = frozenset({"url", "jobs", "compress", "pack"})


def protocol_of(url: str) -> str:
    head, sep, _ = url.partition("://")
    return head.lower() if sep else "file"


def _typed(value: str) -> Any:
    low = value.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low.lstrip("-").isdigit():
        return int(low)
    return value


def storage_options(protocol: str, raw: dict[str, str]) -> dict[str, Any]:
    """fsspec keyword arguments from raw `model.remote.NAME.*` values (minus our own keys)."""
    aliases = ALIASES.get(protocol, {})
    out: dict[str, Any] = {}
    for key, value in sorted(raw.items()):
        if key in OWN_KEYS:
            continue
        name = aliases.get(key, key.replace("-", "_"))
        typed: Any = _typed(value)
        if name == "client_keys":
            typed = [os.path.expanduser(value)]
        elif name == "known_hosts":
            typed = None if value.lower() == "none" else os.path.expanduser(value)
        if "." in name:
            outer, inner = name.split(".", 1)
            out.setdefault(outer, {})[inner] = typed
        else:
            out[name] = typed
    if protocol in ("ssh", "sftp") and "known_hosts" not in out:
        # sshfs turns host key checking off unless told otherwise; keep ssh's own default
        known = os.path.expanduser("~/.ssh/known_hosts")
        if not os.path.isfile(known):
            raise GitModelError(
                f"no {known} to check the SSH server's host key: connect once with 'ssh' to "
                "trust it, or point git config model.remote.NAME.knownhosts at a known_hosts file"
            )
        out["known_hosts"] = known
    return out


def connect(url: str, raw: dict[str, str]) -> tuple[Any, str]:
    """(file system, root path inside it) for a remote URL; one clear line when it cannot."""
    protocol = protocol_of(url)
    kwargs = storage_options(protocol, raw)
    if protocol in ("file", "local") and not kwargs:
        # a local folder needs no fsspec (its import costs ~60 ms): Remote works it with os
        path = url.partition("://")[2] if "://" in url else url
        return None, os.path.abspath(os.path.expanduser(path)).rstrip("/") or "/"
    try:
        import fsspec.core

        fs, root = fsspec.core.url_to_fs(url, **kwargs)
    except ImportError:
        extra = EXTRAS.get(protocol)
        package = EXTRA_PACKAGES.get(extra or "")
        hint = (
            f"pip install {package} (git-model's [{extra}] extra)"
            if package
            else ("install its fsspec backend")
        )
        raise GitModelError(
            f"the {protocol}:// remote {url} needs a library that is not installed: {hint}"
        ) from None
    except ValueError as e:
        raise GitModelError(
            f"cannot use remote {url}: {e}; give a directory or a URL such as s3://bucket/path"
        ) from None
    if protocol == "file":
        root = os.path.abspath(root)
    return fs, str(root).rstrip("/")
