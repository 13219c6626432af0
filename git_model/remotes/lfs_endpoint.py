"""Where a git remote's LFS server is, found the way git-lfs finds it.

`git model remote add NAME lfs` (or `lfs:GITREMOTE`) stores no URL of its own: every clone
works the endpoint out from its git set-up, in git-lfs's order (git-lfs-config(5)):

1. `lfs.url` (git config, then the tracked `.lfsconfig`),
2. `remote.<remote>.lfsurl` (the same two places),
3. derived from the git remote's URL (`git remote get-url`, so `url.<base>.insteadOf` applies):
   `https://host/owner/repo(.git)` -> `https://host/owner/repo.git/info/lfs`; an `ssh://` or
   scp-style `git@host:owner/repo.git` URL gives the same https endpoint, and the ssh server
   is asked for the real one with `git-lfs-authenticate <path> <operation>` (the LFS spec's
   SSH authentication: a JSON answer with `href`, `header` and an expiry).

An explicit `http(s)://…` URL given to `remote add` is the endpoint as it stands, like `lfs.url`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..errors import GitModelError

DERIVED = "lfs"  # the URL a remote stores when its endpoint comes from git's own set-up
_SCP = re.compile(r"(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?P<path>(?!//).*)\Z")


@dataclass
class SshAuth:
    """How to ask an ssh server for the endpoint and headers: `ssh [-p PORT] TARGET cmd`."""

    target: str  # [user@]host
    port: str | None
    path: str  # the repository path as the git URL gives it


@dataclass
class Endpoint:
    href: str  # the LFS API root: POST {href}/objects/batch
    headers: dict[str, str] = field(default_factory=dict)  # from git-lfs-authenticate
    expires: float | None = None  # when those headers stop working (time.time())
    ssh: SshAuth | None = None
    source: str = ""  # where the href came from, for messages


def git_remote_of(name: str, url: str) -> str | None:
    """The git remote whose set-up gives the endpoint (None for an explicit http(s) URL):
    `lfs:upstream` names one; plain `lfs` means the git remote of the same name if there is
    one, else `origin` (decided by `find`, which can ask git)."""
    low = url.lower()
    if low.startswith(("http://", "https://")):
        return None
    return url[len(DERIVED) + 1 :] if low.startswith(DERIVED + ":") else ""


def _git(root: Path, *args: str) -> str | None:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def _lfs_config(root: Path, key: str) -> str | None:
    """`key` from git config, else from the tracked .lfsconfig (the work tree's, else HEAD's)."""
    value = _git(root, "config", "--get", key)
    if value:
        return value
    if (root / ".lfsconfig").is_file():
        return _git(root, "config", "--file", str(root / ".lfsconfig"), "--get", key)
    return _git(root, "config", "--blob", "HEAD:.lfsconfig", "--get", key)


def derive(remote_url: str) -> tuple[str, SshAuth | None]:
    """git-lfs's endpoint for a git remote URL, and how to ask over ssh when it is one."""
    url = remote_url.strip()
    ssh: SshAuth | None = None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        host, path = parts.netloc.rpartition("@")[2], parts.path
    elif scheme in ("ssh", "git+ssh", "ssh+git", "git"):
        host, path = parts.hostname or "", parts.path
        if scheme != "git":
            target = f"{parts.username}@{parts.hostname}" if parts.username else host
            port = str(parts.port) if parts.port else None
            ssh = SshAuth(target, port, path.lstrip("/") if path.startswith("/~") else path)
        scheme = "https"
    elif not parts.scheme and (m := _SCP.match(url)) and "/" not in m["host"]:
        host, path = m["host"], "/" + m["path"].lstrip("/")
        target = f"{m['user']}@{host}" if m["user"] else host
        ssh = SshAuth(target, None, m["path"])
        scheme = "https"
    else:
        raise GitModelError(
            f"cannot find an LFS server for git remote URL {url}: it is not http(s) or ssh; "
            "set one with 'git config lfs.url https://host/owner/repo.git/info/lfs'"
        )
    if not host:
        raise GitModelError(f"the git remote URL {url} names no host; fix it with git remote")
    path = path.rstrip("/")
    path = path + "/info/lfs" if path.endswith(".git") else path + ".git/info/lfs"
    return urlunsplit((scheme, host, path, "", "")), ssh


def find(root: Path, name: str, url: str, *, operation: str = "download") -> Endpoint:
    """The LFS endpoint of remote NAME whose stored URL is `url` (see the module doc)."""
    remote = git_remote_of(name, url)
    if remote is None:
        return Endpoint(url.rstrip("/"), source="the remote's URL")
    if not remote:
        remotes = (_git(root, "remote") or "").split()
        remote = name if name in remotes else "origin"
    for key in ("lfs.url", f"remote.{remote}.lfsurl"):
        value = _lfs_config(root, key)
        if value:
            return Endpoint(value.rstrip("/"), source=key)
    remote_url = _git(root, "remote", "get-url", remote)
    if not remote_url:
        raise GitModelError(
            f"no git remote {remote!r} to find the LFS server from: add it with "
            f"'git remote add {remote} URL', or set 'git config lfs.url URL'"
        )
    href, ssh = derive(remote_url)
    endpoint = Endpoint(href, ssh=ssh, source=f"git remote {remote}")
    if ssh is not None:
        ssh_authenticate(root, endpoint, operation)
    return endpoint


def _ssh_command(root: Path) -> list[str]:
    """ssh as git runs it: GIT_SSH_COMMAND, core.sshCommand, GIT_SSH, else `ssh`."""
    command = os.environ.get("GIT_SSH_COMMAND") or _git(root, "config", "--get", "core.sshCommand")
    if command:
        return ["sh", "-c", command + ' "$@"', "ssh"]
    return [os.environ.get("GIT_SSH") or "ssh"]


def ssh_authenticate(root: Path, endpoint: Endpoint, operation: str) -> None:
    """Ask the ssh server for the endpoint and its headers (LFS spec, "SSH authentication")."""
    ssh = endpoint.ssh
    assert ssh is not None
    args = [*_ssh_command(root), *(["-p", ssh.port] if ssh.port else []), "--", ssh.target]
    args.append(f"git-lfs-authenticate {shlex.quote(ssh.path)} {operation}")
    try:
        proc = subprocess.run(args, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GitModelError(f"could not run ssh to {ssh.target} for LFS access: {e}") from None
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise GitModelError(
            f"'ssh {ssh.target} git-lfs-authenticate' failed"
            + (f" ({detail[-1][:200]})" if detail else "")
            + "; check that 'ssh "
            + ssh.target
            + "' works and that the host serves Git LFS"
        )
    try:
        answer = json.loads(proc.stdout)
        href = answer.get("href") or endpoint.href
        headers = answer.get("header") or {}
        if not isinstance(href, str) or not isinstance(headers, dict):
            raise ValueError("unexpected fields")
    except (ValueError, AttributeError):
        raise GitModelError(
            f"ssh {ssh.target} git-lfs-authenticate did not answer with LFS JSON; "
            "set the endpoint with 'git config lfs.url https://…/info/lfs'"
        ) from None
    endpoint.href = href.rstrip("/")
    endpoint.headers = {str(k): str(v) for k, v in headers.items()}
    endpoint.expires = expiry(answer)


def expiry(obj: dict[str, object]) -> float | None:
    """time.time() at which an LFS action or ssh answer expires (`expires_in` seconds, or an
    RFC 3339 `expires_at`); None when it gives neither."""
    now = time.time()
    expires_in = obj.get("expires_in")
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
        return now + float(expires_in)
    expires_at = obj.get("expires_at")
    if isinstance(expires_at, str) and expires_at and not expires_at.startswith("0001-"):
        from datetime import datetime

        try:
            return datetime.fromisoformat(expires_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None
