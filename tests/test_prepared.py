"""A pull writes a large file into the work tree while it downloads (prepared.py): an unnamed
file beside its path, named only when the checkout gets there. The outcome must be the same as
copying it from the cache afterwards: the right bytes and mode, a user's own bytes kept first,
a file that is already right left alone, and never a byte of a refused download, nor litter."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import Shell, tmpfs
from servers import Store, bare_origin, clone, s3_endpoint_fixture, store_fixture  # noqa: F401

from git_model.cache import Cache
from git_model.errors import CorruptObject
from git_model.hashing import Oid
from git_model.incoming import store_copy, store_stream

BIG = 3 << 20  # over the 1 MiB below which objects are not written twice


def shared(tmp_path: Path, store: Store) -> tuple[Shell, dict[str, bytes]]:
    """alice pushes two large files with the same bytes (one executable) and a small one."""
    origin = bare_origin(tmp_path)
    alice = clone(origin, tmp_path / "alice", store)
    weights = os.urandom(BIG)
    files = {"model.bin": weights, "run/model-copy.bin": weights, "params.bin": b"small"}
    for rel, data in files.items():
        alice.write(rel, data)
    os.chmod(alice.cwd / "model.bin", 0o755)
    alice.model("add", *files)
    alice.model("remote", "add", "origin", store.url, "--default")
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "v1")
    alice.model("push")
    alice.git("push", "-q", "origin", "main")
    return clone(origin, tmp_path / "bob", store, init=False), files


def emptied(sh: Shell) -> None:
    """No cache: every object has to come from the remote again."""
    objects = sh.cwd / ".git" / "model" / "objects"
    for path in objects.rglob("*"):
        if path.is_file():
            path.chmod(0o644)
            path.unlink()


def states(sh: Shell) -> dict[str, str]:
    out = json.loads(sh.model("status", "--json").stdout)
    return {a["path"]: a["state"] for a in out["artifacts"]}


@pytest.mark.parametrize("store", ["dir", "s3"], indirect=True)
def test_a_pull_writes_large_files_as_they_download(store: Store, tmp_path: Path) -> None:
    bob, files = shared(tmp_path, store)
    bob.model("init")  # a fresh clone: the hook-less first checkout fetches and restores
    for rel, data in files.items():
        assert bob.read(rel) == data
    assert os.stat(bob.cwd / "model.bin").st_mode & stat.S_IXUSR
    assert not os.stat(bob.cwd / "run/model-copy.bin").st_mode & stat.S_IXUSR
    assert sorted(os.listdir(bob.cwd / "run")) == ["model-copy.bin"]  # nothing beside it

    # bob's edit is kept before the downloaded copy takes its place
    mine = os.urandom(BIG)
    bob.write("model.bin", mine)
    emptied(bob)
    out = bob.model("pull")
    assert bob.read("model.bin") == files["model.bin"]
    kept = hashlib.sha256(mine).hexdigest()
    assert f"git model cat {kept}" in out.stderr
    assert set(states(bob).values()) == {"unchanged"}


@pytest.mark.parametrize("store", ["dir"], indirect=True)
def test_a_file_already_right_is_left_alone(store: Store, tmp_path: Path) -> None:
    bob, files = shared(tmp_path, store)
    bob.model("init")
    before = os.stat(bob.cwd / "model.bin")
    emptied(bob)
    bob.model("pull")
    after = os.stat(bob.cwd / "model.bin")
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert bob.read("run/model-copy.bin") == files["run/model-copy.bin"]
    assert sorted(os.listdir(bob.cwd)) == sorted(
        [".git", ".gitattributes", ".gitignore", ".gitmodel", "model.bin", "params.bin", "run"]
    )


@pytest.mark.parametrize("store", ["dir"], indirect=True)
def test_a_download_refused_leaves_nothing_in_the_work_tree(store: Store, tmp_path: Path) -> None:
    assert store.root is not None
    bob, files = shared(tmp_path, store)
    oid = hashlib.sha256(files["model.bin"]).hexdigest()
    obj = store.root / "objects" / oid[:2] / oid[2:]
    obj.chmod(0o644)
    rotten = bytearray(obj.read_bytes())
    rotten[BIG // 2] ^= 0xFF  # the same size: it is read to the end before it is refused
    obj.write_bytes(bytes(rotten))
    out = bob.model("init", check=False)
    assert "could not be restored" in out.stderr
    assert not (bob.cwd / "model.bin").exists()
    assert not (bob.cwd / "run").exists()  # not even a folder made for the copy
    assert bob.read("params.bin") == b"small"


class Download(NamedTuple):
    cache: Cache
    remote: Path  # a large object as a local remote holds it
    data: bytes
    oid: Oid


@pytest.fixture
def download(tmp_path: Path) -> Download:
    cache = Cache(tmp_path / "model")
    cache.ensure()
    data = os.urandom(BIG)
    remote = tmp_path / "remote.bin"
    remote.write_bytes(data)
    return Download(cache, remote, data, Oid(hashlib.sha256(data).hexdigest()))


@pytest.mark.parametrize("way", ["copy", "stream"])
def test_the_copy_made_during_the_download_is_the_one_named(
    tmp_path: Path, download: Download, way: str
) -> None:
    cache, remote, data, oid = download
    dest = tmp_path / "wt" / "model.bin"
    if way == "copy":
        store_copy(cache, remote, oid, tee_to=str(dest))
    else:  # (the work-tree copy follows the cache's as it grows, chunk by chunk)
        with open(remote, "rb") as f:
            store_stream(cache, f, oid, len(data), tee_to=str(dest))
    assert len(cache.prepared) == 1 and os.listdir(dest.parent) == []  # unnamed so far
    cache.materialize(oid, dest, executable=True)
    assert len(cache.prepared) == 0 and dest.read_bytes() == data
    assert dest.stat().st_mode & stat.S_IXUSR

    store_copy(cache, remote, oid, tee_to=str(tmp_path / "wt" / "other.bin"))  # (stored: kept)
    other = Oid(hashlib.sha256(b"other bytes").hexdigest())
    with pytest.raises(CorruptObject):  # a download that is not what it claims to be
        store_copy(cache, remote, other, tee_to=str(tmp_path / "wt" / "third.bin"))
    assert len(cache.prepared) == 1
    cache.prepared.close()  # what the checkout did not name vanishes
    assert len(cache.prepared) == 0 and os.listdir(dest.parent) == ["model.bin"]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    yield from tmpfs(tmp_path, "1m")


@pytest.mark.parametrize("way", ["copy", "stream"])
def test_a_work_tree_copy_that_fails_is_dropped_not_the_download(
    tiny_disk: Path, download: Download, way: str
) -> None:
    cache, remote, data, oid = download  # (more than the tiny disk holds)
    dest = str(tiny_disk / "model.bin")
    if way == "copy":
        assert store_copy(cache, remote, oid, tee_to=dest) == BIG
    else:
        with open(remote, "rb") as f:
            assert store_stream(cache, f, oid, BIG, tee_to=dest) == BIG
    assert cache.path(oid).read_bytes() == data  # the download itself is whole
    assert len(cache.prepared) == 0 and os.listdir(tiny_disk) == []  # the short copy is gone


def test_folders_made_for_a_copy_go_again_when_it_is_not_used(
    tmp_path: Path, download: Download
) -> None:
    cache, remote, data, oid = download
    wrong = Oid(hashlib.sha256(b"other bytes").hexdigest())
    with pytest.raises(CorruptObject):
        store_copy(cache, remote, wrong, tee_to=str(tmp_path / "wt" / "a" / "b" / "x.bin"))
    store_copy(cache, remote, oid, tee_to=str(tmp_path / "wt" / "a" / "c" / "y.bin"))
    cache.prepared.close()
    assert not (tmp_path / "wt").exists()  # made for the two copies, emptied, gone
    store_copy(cache, remote, oid, tee_to=str(tmp_path / "wt" / "d" / "z.bin"))
    cache.materialize(oid, tmp_path / "wt" / "d" / "z.bin")
    cache.prepared.close()
    assert (tmp_path / "wt" / "d" / "z.bin").read_bytes() == data  # a used one stays
