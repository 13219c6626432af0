"""Many small objects to and from a directory remote share one flush to disk per batch, and
a large object just downloaded is copied into the work tree without hashing it twice: the
same guarantees hold. Rotten bytes are refused on the way out and on the way in, nothing is
visible under an object's name before it is durable, and an error inside a batch leaves
only temp files that vanish."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from conftest import Shell
from faults import assert_cache_sound
from servers import Store, bare_origin, clone

from git_model.cache import Cache
from git_model.copying import SMALL_FILE
from git_model.errors import CorruptObject
from git_model.hashing import Oid
from git_model.incoming import store_copy
from git_model.remotes import directory
from git_model.remotes.directory import DirectoryWriter


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def shards_pushed(
    tmp_path: Path, count: int = 40, pack: str = "off"
) -> tuple[Shell, Path, Store, dict[str, bytes]]:
    """alice's clone with `count` small shards committed, its code pushed, its bytes not
    (`pack`: model.pack; off, the batches of loose objects these tests are about)."""
    store = Store("dir", str(tmp_path / "store"), root=tmp_path / "store")
    origin = bare_origin(tmp_path)
    alice = clone(origin, tmp_path / "alice", store)
    alice.git("config", "model.pack", pack)
    files = {f"shards/{i:02}.bin": os.urandom(2000 + i) for i in range(count)}
    for rel, data in files.items():
        alice.write(rel, data)
    alice.model("add", "shards")
    alice.model("remote", "add", "origin", store.url, "--default")
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "shards")
    alice.git("push", "-q", "--no-verify", "origin", "main")
    return alice, origin, store, files


@pytest.mark.parametrize("pack", ["off", "auto"])
def test_a_batched_push_refuses_a_rotten_cache_object_and_sends_the_rest(
    tmp_path: Path, pack: str
) -> None:
    alice, _, store, files = shards_pushed(tmp_path, pack=pack)
    rotten = sha(files["shards/07.bin"])
    obj = alice.cwd / ".git/model/objects" / rotten[:2] / rotten[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"bit rot")

    out = alice.model("push", "--json", check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    pushed = json.loads(out.stdout)
    assert pushed["transferred"] == len(files) - 1
    assert [f["oid"] for f in pushed["failed"]] == [rotten]
    assert store.oids() == {sha(d) for d in files.values()} - {rotten}
    assert store.temp_files() == []  # the refused copy never stays, not even as a temp file
    assert not obj.exists()  # quarantined in the cache: never used again
    assert store.loose() == set() if pack == "auto" else store.loose() == store.oids()
    for oid in store.loose():
        assert store.root is not None
        assert sha((store.root / "objects" / oid[:2] / oid[2:]).read_bytes()) == oid


def test_a_batched_pull_refuses_a_rotten_remote_object_and_restores_the_rest(
    tmp_path: Path,
) -> None:
    alice, origin, store, files = shards_pushed(tmp_path)
    alice.model("push")
    rotten = sha(files["shards/11.bin"])
    store.corrupt(rotten)

    bob = clone(origin, tmp_path / "bob", store, init=False)
    bob.model("init", check=False)
    out = bob.model("pull", check=False)
    assert out.returncode == 1 and rotten[:12] in out.stderr and "corrupt" in out.stderr
    assert not (bob.cwd / "shards/11.bin").exists()  # never the wrong bytes
    for rel, data in files.items():
        if rel != "shards/11.bin":
            assert bob.read(rel) == data
    assert_cache_sound(bob.cwd)
    assert list((bob.cwd / ".git/model/tmp").iterdir()) == []
    assert rotten not in store.oids()  # set aside on the remote: a push repairs it
    alice.model("push")
    bob.model("pull")
    assert bob.read("shards/11.bin") == files["shards/11.bin"]


@pytest.mark.parametrize("syncfs", [True, False], ids=["syncfs", "fsync-each"])
def test_nothing_is_visible_before_the_batch_is_flushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, syncfs: bool
) -> None:
    if not syncfs:  # a system without syncfs: an fsync per file, then per folder
        monkeypatch.setattr(directory, "syncfs", lambda folder: False)
    cache = Cache(tmp_path / "model")
    blobs = [os.urandom(100 + i) for i in range(5)]
    oids = [cache.store_file(_write(tmp_path / f"f{i}", b))[0] for i, b in enumerate(blobs)]
    root = tmp_path / "store"
    writer = DirectoryWriter(str(root))

    def dest(oid: Oid) -> Path:
        return root / "objects" / oid[:2] / oid[2:]

    failed: list[directory.Failure] = []
    with writer.batch(failed):
        for oid in oids:
            writer.write(cache.path(oid), oid, str(dest(oid)), None)
        assert not any(dest(o).exists() for o in oids)  # written, not yet durable: not there
        assert len(list((root / "tmp").iterdir())) == len(oids)
    writer.finish()
    assert failed == []
    assert [dest(o).read_bytes() for o in oids] == blobs
    assert list((root / "tmp").iterdir()) == []

    # an error inside a batch: what waited is dropped, nothing half-done is left
    other = cache.store_file(_write(tmp_path / "g", b"more bytes"))[0]
    with pytest.raises(KeyboardInterrupt), writer.batch(failed):
        writer.write(cache.path(other), other, str(dest(other)), None)
        raise KeyboardInterrupt
    assert not dest(other).exists() and list((root / "tmp").iterdir()) == []

    # a rotten cache object is refused before the batch ever sees it
    rotten = cache.path(oids[0])
    rotten.chmod(0o644)
    rotten.write_bytes(b"rot")
    with pytest.raises(CorruptObject), writer.batch(failed):
        writer.write(rotten, oids[0], str(tmp_path / "elsewhere"), None)
    assert not (tmp_path / "elsewhere").exists()


def test_only_bytes_this_process_hashed_skip_the_second_hash(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "model")
    data = os.urandom(SMALL_FILE + 4096)
    oid = Oid(sha(data))
    remote_copy = _write(tmp_path / "remote-copy", data)
    assert store_copy(cache, remote_copy, oid) == len(data)
    assert oid in cache.verified  # hashed as it came in

    cache.materialize(oid, tmp_path / "work" / "model.bin")  # copied out, not hashed again
    assert (tmp_path / "work" / "model.bin").read_bytes() == data

    # a cache that did not download it (another process) hashes as it copies, and refuses rot
    other = Cache(tmp_path / "model")
    obj = other.path(oid)
    obj.chmod(0o644)
    obj.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit rotten
    with pytest.raises(CorruptObject):
        other.materialize(oid, tmp_path / "work" / "again.bin")
    assert not (tmp_path / "work" / "again.bin").exists()
    cache.quarantine(oid)
    assert oid not in cache.verified

    # bytes that do not match are refused and never remembered as verified
    bad = _write(tmp_path / "bad", data[:-1] + bytes([data[-1] ^ 2]))
    with pytest.raises(CorruptObject):
        store_copy(cache, bad, oid)
    assert oid not in cache.verified and not cache.has(oid)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
