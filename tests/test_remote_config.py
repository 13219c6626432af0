"""Setting remotes up: where their URLs and options live, and the errors people meet first."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import Shell

from git_model.errors import GitModelError
from git_model.remotes import TransferError, retry
from git_model.remotes.options import storage_options


def test_remote_add_list_remove(repo: Shell) -> None:
    repo.model("remote", "add", "team", "s3://bucket/models", "--default")
    config = repo.read(".gitmodel/config.toml").decode()
    assert 'remote = "team"' in config and "s3://bucket/models" in config
    assert ".gitmodel/config.toml" in repo.git("diff", "--cached", "--name-only").stdout
    repo.model("remote", "add", "backup", "backup-dir/")  # personal: git config only
    assert repo.git("config", "model.remote.backup.url").stdout.strip() == str(
        repo.cwd / "backup-dir"
    )
    assert "backup" not in repo.read(".gitmodel/config.toml").decode()
    repo.git("config", "model.remote.team.endpointurl", "http://127.0.0.1:9000")
    repo.git("config", "model.remote.team.secretkey", "hunter2")

    listed = json.loads(repo.model("remote", "list", "--json").stdout)["remotes"]
    assert [(r["name"], r["default"], r["tracked"]) for r in listed] == [
        ("backup", False, False),
        ("team", True, True),
    ]
    assert listed[1]["options"] == {"endpointurl": "http://127.0.0.1:9000", "secretkey": "***"}
    text = repo.model("remote", "list").stdout
    assert "* team" in text and "hunter2" not in text

    out = repo.model("remote", "add", "team", "s3://other/place", check=False)
    assert out.returncode == 1 and "remote remove team" in out.stderr
    repo.model("remote", "remove", "team")
    assert "remote" not in repo.read(".gitmodel/config.toml").decode()
    assert repo.git("config", "--get-regexp", "model.remote.team", check=False).stdout == ""
    out = repo.model("push", check=False)
    assert out.returncode == 1 and "git model remote add NAME URL --default" in out.stderr


def test_remote_errors_say_what_to_do(repo: Shell) -> None:
    out = repo.model("remote", "add", "bad name", "/tmp/x", check=False)
    assert out.returncode == 2
    out = repo.model("remote", "add", "t", "ssh://me:pw@host/path", "--default", check=False)
    assert out.returncode == 1 and "password" in out.stderr
    assert "pw" not in repo.read(".gitmodel/config.toml").decode()
    out = repo.model("push", "nosuch", check=False)
    assert out.returncode == 2 and "git model remote list" in out.stderr
    out = repo.model("push", "weird://bucket/x", check=False)
    assert out.returncode == 1 and "weird" in out.stderr and "Traceback" not in out.stderr
    if importlib.util.find_spec("gcsfs") is None:
        out = repo.model("push", "gs://bucket/x", check=False)
        assert out.returncode == 1 and "pip install gcsfs" in out.stderr


def test_git_config_options_become_backend_options(hermetic: object) -> None:
    s3 = storage_options(
        "s3",
        {"url": "s3://b", "endpointurl": "http://h:9000", "region": "eu-west-1", "anon": "false"},
    )
    assert s3 == {
        "endpoint_url": "http://h:9000",
        "client_kwargs": {"region_name": "eu-west-1"},
        "anon": False,
    }
    ssh = storage_options("ssh", {"port": "2222", "keyfile": "/k", "knownhosts": "none"})
    assert ssh == {"port": 2222, "client_keys": ["/k"], "known_hosts": None}
    with pytest.raises(GitModelError, match="known_hosts"):
        storage_options("ssh", {})  # never silently skip host key checks


def test_transient_errors_are_retried_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(retry.time, "sleep", sleeps.append)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("connection reset by peer")
        return "ok"

    assert retry.retry("origin", "uploading object abc", flaky) == "ok"
    assert len(sleeps) == 2 and 0.2 <= sleeps[0] < sleeps[1]  # exponential, with jitter

    def refused() -> None:
        raise PermissionError("403 Forbidden")

    with pytest.raises(TransferError, match="uploading object abc on remote origin failed"):
        retry.retry("origin", "uploading object abc", refused)
    assert len(sleeps) == 2  # not transient: no retry

    def down() -> None:
        raise TimeoutError("timed out")

    with pytest.raises(TransferError, match="failed 4 times"):
        retry.retry("origin", "uploading object abc", down)
