"""Faults between a clone and its object store: kill -9 mid-transfer, remotes that lie, full
disks while downloading.

No partial or unverified object is ever visible, on the remote or in the cache; a rerun moves
only what is still missing; a remote that serves other bytes, more bytes than an object has,
or a listing full of junk is refused or ignored, with one line, and nothing is written
outside the repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Shell
from faults import FaultRecorder, assert_cache_sound, cache_objects, kill_group
from servers import (  # noqa: F401  (fixtures)
    Store,
    bare_origin,
    clone,
    s3_endpoint_fixture,
    store_fixture,
)

FILES = 150


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def remote_objects(store: Store) -> dict[str, bytes]:
    """oid -> bytes of every object under the store's objects/ (what a reader would see)."""
    if store.s3 is not None:
        out = {}
        for oid in store.oids():
            key = f"store/objects/{oid[:2]}/{oid[2:]}"
            out[oid] = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
        return out
    assert store.root is not None
    objects = store.root / "objects"
    return {p.parent.name + p.name: p.read_bytes() for p in objects.glob("*/*") if p.is_file()}


def assert_remote_sound(store: Store) -> int:
    """Every object visible on the remote hashes to its name; returns how many there are."""
    found = remote_objects(store)
    for oid, data in found.items():
        assert sha(data) == oid, f"partial or wrong object {oid} visible on the remote"
    return len(found)


def kill_after(args: list[str], cwd: Path, delay: float) -> int:
    """kill -9 `git model ARGS` after `delay` seconds: git and the git-model process it runs
    (a child, which a kill of git alone would leave running), and their git subprocesses."""
    proc = subprocess.Popen(
        ["git", "model", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(delay)
    return kill_group(proc)


def timed(sh: Shell, *args: str) -> float:
    start = time.monotonic()
    sh.model(*args)
    return time.monotonic() - start


def shared_model(tmp_path: Path, store: Store, files: int = FILES) -> tuple[Shell, Path]:
    """alice's clone with a model of many shards and one large file, committed and pushed to
    the git remote (not yet to the object store)."""
    origin = bare_origin(tmp_path)
    alice = clone(origin, tmp_path / "alice", store)
    for i in range(files):
        alice.write(f"shards/{i:03}.bin", os.urandom(8 << 10))
    alice.write("model.bin", os.urandom(24 << 20))
    alice.model("add", "shards", "model.bin")
    alice.model("remote", "add", "origin", store.url, "--default")
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "v1")
    alice.git("push", "-q", "--no-verify", "origin", "main")  # code only: no pre-push upload
    return alice, origin


def litter(sh: Shell) -> list[Path]:
    """Temp files of a checkout left in the work tree."""
    return [p for p in sh.cwd.rglob(".*.gitmodel*") if ".git/" not in str(p)]


def wipe_local_bytes(sh: Shell) -> None:
    shutil.rmtree(sh.cwd / ".git/model/objects", ignore_errors=True)
    shutil.rmtree(sh.cwd / "shards", ignore_errors=True)
    (sh.cwd / "model.bin").unlink(missing_ok=True)


@pytest.mark.parametrize("store", ["dir", "s3"], indirect=True)
def test_kill_9_during_push_then_rerun(store: Store, tmp_path: Path, fault: FaultRecorder) -> None:
    files = FILES if store.root else 30  # (each S3 request costs more than a file)
    alice, _ = shared_model(tmp_path, store, files)
    wanted = files + 1
    duration = timed(alice, "push")
    if store.s3 is not None:  # start again from an empty bucket
        for oid in store.oids():
            store.s3.delete_object(Bucket=store.bucket, Key=f"store/objects/{oid[:2]}/{oid[2:]}")
    else:
        assert store.root is not None
        shutil.rmtree(store.root)
    counts = []
    for fraction in (0.2, 0.5, 0.8):
        kill_after(["push"], alice.cwd, duration * fraction)
        counts.append(assert_remote_sound(store))
    assert counts[0] < wanted, "the kills should land mid-push"
    resumed = json.loads(alice.model("push", "--json").stdout)
    # what arrived is not sent again (a server may still complete a request whose body it
    # had in full when the client died, so an object store can show a few more by now)
    assert resumed["present"] + resumed["transferred"] == wanted
    assert resumed["present"] == counts[-1] if store.root else resumed["present"] >= counts[-1]
    assert assert_remote_sound(store) == wanted
    fault.row(
        f"kill -9 during `git model push` ({store.kind} remote, {files} files + 24 MiB)",
        "SIGKILL at 3 points across the push",
        "(killed) — rerun: pushed only the missing object(s); the rest already there",
        "nothing; nothing sent twice",
    )


def test_kill_9_during_pull_then_rerun(tmp_path: Path, fault: FaultRecorder) -> None:
    store = Store("dir", str(tmp_path / "store"), root=tmp_path / "store")
    alice, origin = shared_model(tmp_path, store)
    alice.model("push")
    bob = clone(origin, tmp_path / "bob", store)  # init restores everything: time that
    wipe_local_bytes(bob)
    duration = timed(bob, "pull")
    wipe_local_bytes(bob)
    have = []
    for fraction in (0.2, 0.5, 0.8):
        kill_after(["pull"], bob.cwd, duration * fraction)
        have.append(len(cache_objects(bob.cwd)))
        assert_cache_sound(bob.cwd)
        for path in [bob.cwd / "model.bin", *(bob.cwd / "shards").glob("[!.]*")]:
            rel = str(path.relative_to(bob.cwd))  # absent (before) or whole (after)
            assert not path.exists() or path.read_bytes() == alice.read(rel), rel
    assert have[0] < FILES + 1, "the kills should land mid-pull"
    resumed = json.loads(bob.model("pull", "--json").stdout)
    assert resumed["fetch"]["transferred"] == FILES + 1 - have[-1]  # what arrived stays
    assert bob.read("model.bin") == alice.read("model.bin")
    assert bob.read("shards/007.bin") == alice.read("shards/007.bin")
    assert_cache_sound(bob.cwd)
    assert litter(bob) == []
    fault.row(
        f"kill -9 during `git model pull` (directory remote, {FILES} files + 24 MiB)",
        "SIGKILL at 3 points across the pull",
        "(killed) — rerun: fetched only the missing object(s), then restored the files",
        "nothing; nothing fetched twice",
    )


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("fault injection relies on Linux")
