"""The git host as the object store: a remote that speaks the Git LFS batch API, against a
real giftless server on 127.0.0.1 (tests/lfs_server.py), with real git, its `store`
credential helper, and the real `git lfs` client for interoperability."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Shell, peak_rss_mib
from servers import (  # noqa: F401  (fixtures)
    LFS_TOKEN,
    LfsServer,
    bare_origin,
    clone,
    lfs_credentials,
    lfs_fixture,
    start_lfs,
)

from git_model.hashing import hash_file
from git_model.remotes.lfs_endpoint import derive


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lfs_project(tmp_path: Path, server: LfsServer, files: dict[str, bytes]) -> tuple[Path, Shell]:
    """alice's clone: a tracked .lfsconfig names the server (as a self-hosted team does),
    `git model remote add origin lfs --default`, the files added and committed."""
    origin = bare_origin(tmp_path)
    alice = clone(origin, tmp_path / "alice")
    alice.write(".lfsconfig", f"[lfs]\n\turl = {server.url}\n")
    for rel, data in files.items():
        alice.write(rel, data)
    alice.model("add", *sorted({rel.split("/")[0] for rel in files}))
    out = alice.model("remote", "add", "origin", "lfs", "--default").stdout
    assert "added remote origin -> lfs" in out
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "v1")
    return origin, alice


def test_push_clone_pull_and_gc_through_an_lfs_server(
    lfs: LfsServer, tmp_path: Path, hermetic: Path
) -> None:
    creds = lfs_credentials(hermetic, lfs.port)
    files = {"model.bin": os.urandom(3 << 20), "data/a.csv": b"x\n1\n", "data/empty.csv": b""}
    origin, alice = lfs_project(tmp_path, lfs, files)

    alice.git("push", "-q", "origin", "main")  # the pre-push hook uploads first
    assert {sha(d) for d in files.values()} <= lfs.oids()
    assert (lfs.storage / "team/models" / sha(files["model.bin"])).read_bytes() == files[
        "model.bin"
    ]  # stored as the raw bytes: a valid LFS object
    assert LFS_TOKEN in creds.read_text()  # approved, kept by the helper
    listed = json.loads(alice.model("remote", "list", "--json").stdout)["remotes"]
    assert listed[0]["url"] == "lfs" and LFS_TOKEN not in json.dumps(listed)

    bob = clone(origin, tmp_path / "bob")  # clone + init: HEAD's bytes, with git's credentials
    for rel, data in files.items():
        assert bob.read(rel) == data

    v2 = os.urandom(1 << 20)
    alice.write("model.bin", v2)
    alice.model("add", "model.bin")
    alice.git("commit", "-q", "-m", "v2")
    pushed = json.loads(alice.model("push", "--json").stdout)
    assert (pushed["transferred"], pushed["failed"]) == (1, [])
    again = json.loads(alice.model("push", "--json").stdout)
    assert again["transferred"] == 0 and again["present"] == again["wanted"]
    alice.git("push", "-q", "origin", "main")
    bob.git("pull", "-q")
    assert bob.read("model.bin") == v2
    fetched = json.loads(bob.model("fetch", "--all", "--json").stdout)
    assert not fetched["failed"] and not fetched["missing"]

    # gc: an unneeded object the server confirmed it holds may go; one it lacks stays
    for pushed in (True, False):
        alice.write("model.bin", os.urandom(1000))
        alice.model("add", "model.bin")
        alice.git("commit", "-q", "-m", "pushed" if pushed else "not pushed")
        if pushed:
            alice.model("push")
    alice.git("reset", "-q", "--hard", "HEAD~2")
    alice.git("reflog", "expire", "--expire=now", "--all")
    gc = json.loads(alice.model("gc", "--keep-days", "0", "--json").stdout)
    assert (gc["remote"], gc["freed"], gc["kept_only_copy"]) == ("origin", 1, 1)

    # the real git-lfs client fetches what git-model pushed, from the same server
    if shutil.which("git-lfs") is None:
        pytest.skip("git-lfs is not installed (apt-get install git-lfs)")
    plain = Shell(tmp_path / "plain")
    plain.cwd.mkdir()
    plain.git("init", "-q")
    plain.git("config", "lfs.url", lfs.url)
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha(v2)}\nsize {len(v2)}\n"
    got = subprocess.run(
        ["git", "lfs", "smudge", "model.bin"],
        cwd=plain.cwd,
        input=pointer.encode(),
        capture_output=True,
        check=True,
    )
    assert got.stdout == v2


def test_a_wrong_token_is_rejected_and_said_in_one_line(
    lfs: LfsServer, tmp_path: Path, hermetic: Path
) -> None:
    creds = lfs_credentials(hermetic, lfs.port, token="wrong-token")
    _, alice = lfs_project(tmp_path, lfs, {"model.bin": os.urandom(1000)})
    out = alice.model("push", check=False)
    assert out.returncode == 1
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert any(
        "refused access (HTTP 401" in line and "git credential fill" in line for line in lines
    )
    assert "wrong-token" not in out.stdout + out.stderr
    assert "Credentials needed\\x1b]0;pwned\\x07" in out.stderr  # the host's text, visibly
    assert "\x1b" not in out.stderr and "\x07" not in out.stderr
    assert "wrong-token" not in creds.read_text()  # rejected: the helper forgot it
    lfs_credentials(hermetic, lfs.port)  # the right token: the rerun works
    assert json.loads(alice.model("push", "--json").stdout)["transferred"] == 1


def test_a_server_returning_the_wrong_object_is_refused(
    lfs: LfsServer, tmp_path: Path, hermetic: Path
) -> None:
    lfs_credentials(hermetic, lfs.port)
    data = os.urandom(200_000)
    origin, alice = lfs_project(tmp_path, lfs, {"model.bin": data})
    alice.git("push", "-q", "origin", "main")
    bad = start_lfs(lfs.storage, "--corrupt-downloads")
    try:
        bob = clone(origin, tmp_path / "bob", init=False)
        bob.write(".lfsconfig", f"[lfs]\n\turl = {bad.url}\n")
        lfs_credentials(hermetic, bad.port)
        bob.model("init", check=False)
        out = bob.model("pull", check=False)
    finally:
        bad.stop()
    assert out.returncode == 1
    assert "does not match its oid: it was refused, nothing stored" in out.stderr
    assert not (bob.cwd / "model.bin").exists()
    assert not (bob.cwd / ".git/model/objects" / sha(data)[:2]).exists()


def test_a_server_restarted_mid_push_then_rerun_completes(tmp_path: Path, hermetic: Path) -> None:
    server = start_lfs(tmp_path / "storage", "--die-after-puts", "1")
    try:
        lfs_credentials(hermetic, server.port)
        files = {f"data/{i}.bin": os.urandom(50_000 + i) for i in range(3)}
        _, alice = lfs_project(tmp_path, server, files)
        first = alice.model("push", "-j", "1", check=False)
        assert first.returncode == 1 and "rerun" in first.stderr
        server.proc.wait(10)  # type: ignore[union-attr]
        server.start()  # the same port and storage: a restarted host
        rerun = json.loads(alice.model("push", "--json").stdout)
        assert rerun["failed"] == [] and rerun["transferred"] + rerun["present"] == 3
        assert {sha(d) for d in files.values()} <= server.oids()
        for data in files.values():
            assert (server.storage / "team/models" / sha(data)).read_bytes() == data
    finally:
        server.stop()


@pytest.mark.slow  # ~15 s on the 2-core VM
def test_a_thousand_small_objects_go_in_batches(
    lfs: LfsServer, tmp_path: Path, hermetic: Path
) -> None:
    lfs_credentials(hermetic, lfs.port)
    files = {f"data/{i:04}.txt": f"{i} {os.urandom(8).hex()}\n".encode() for i in range(1000)}
    origin, alice = lfs_project(tmp_path, lfs, files)
    pushed = json.loads(alice.model("push", "--json").stdout)
    assert (pushed["transferred"], pushed["failed"]) == (1000, [])
    bob = clone(origin, tmp_path / "bob", init=False)
    alice.git("push", "-q", "origin", "main")
    bob.git("pull", "-q")
    bob.model("init")
    assert bob.read("data/0999.txt") == files["data/0999.txt"]


@pytest.mark.slow  # ~30 s on the 2-core VM
def test_a_gib_object_goes_both_ways_with_memory_flat(
    lfs: LfsServer, tmp_path: Path, hermetic: Path
) -> None:
    lfs_credentials(hermetic, lfs.port)
    origin, alice = lfs_project(tmp_path, lfs, {"data/a.csv": b"x\n1\n"})
    with open(alice.cwd / "model.bin", "wb") as f:
        f.truncate(1 << 30)  # (zeros: the size is what matters here)
    alice.model("add", "model.bin")
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "weights")
    pushed, peak = peak_rss_mib(alice, "push")
    assert pushed.returncode == 0 and peak < 100, (pushed.stderr, peak)
    oid = hash_file(alice.cwd / "model.bin")[0]
    assert oid in lfs.oids()
    alice.git("push", "-q", "origin", "main")
    bob = clone(origin, tmp_path / "bob", init=False)
    pulled, peak = peak_rss_mib(bob, "init")  # (a fresh clone's init fetches and restores)
    assert pulled.returncode == 0 and peak < 100, (pulled.stderr, peak)
    assert hash_file(bob.cwd / "model.bin") == (oid, 1 << 30)


@pytest.mark.parametrize(
    ("remote", "endpoint", "ssh"),
    [
        ("https://github.com/o/r.git", "https://github.com/o/r.git/info/lfs", None),
        ("https://user@gitlab.com/g/s/r", "https://gitlab.com/g/s/r.git/info/lfs", None),
        (
            "git@github.com:o/r.git",
            "https://github.com/o/r.git/info/lfs",
            ("git@github.com", None, "o/r.git"),
        ),
        (
            "ssh://git@host:2222/o/r.git",
            "https://host/o/r.git/info/lfs",
            ("git@host", "2222", "/o/r.git"),
        ),
    ],
)
def test_the_endpoint_is_derived_as_git_lfs_does(
    remote: str, endpoint: str, ssh: tuple[str, str | None, str] | None
) -> None:
    href, auth = derive(remote)
    assert href == endpoint
    assert (auth and (auth.target, auth.port, auth.path)) == ssh


def test_ssh_remotes_ask_git_lfs_authenticate(
    lfs: LfsServer, tmp_path: Path, hermetic: Path
) -> None:
    """An scp-style git remote: the endpoint and its headers come from `ssh HOST
    git-lfs-authenticate PATH OPERATION` (ssh here is GIT_SSH_COMMAND, a script that answers
    as a host would, and records what it was asked)."""
    asked = tmp_path / "asked.txt"
    fake = tmp_path / "fake-ssh"
    token = __import__("base64").b64encode(f"alice:{LFS_TOKEN}".encode()).decode()
    answer = json.dumps({"href": lfs.url, "header": {"Authorization": f"Basic {token}"}})
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {asked}\necho '{answer}'\n")
    fake.chmod(0o755)
    data = os.urandom(5000)
    sh = Shell(tmp_path / "w")
    sh.cwd.mkdir()
    sh.git("init", "-q")
    sh.git("remote", "add", "origin", "git@git.example.com:team/models.git")
    sh.git("config", "core.sshCommand", str(fake))
    sh.model("init")
    sh.write("model.bin", data)
    sh.model("add", "model.bin")
    sh.model("remote", "add", "origin", "lfs", "--default")
    sh.git("commit", "-q", "-am", "v1")
    assert json.loads(sh.model("push", "--json").stdout)["transferred"] == 1
    assert sha(data) in lfs.oids()
    assert "git@git.example.com git-lfs-authenticate team/models.git upload" in asked.read_text()
