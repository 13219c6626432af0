"""Packs on remotes: a push of many small objects is a few packs, not a request an object, and
a pull reads them back a run of neighbours at a time, every object checked against its oid.
Real git, real stores (a directory, moto S3, sshd, Azurite); damaged and hostile packs and
indexes never put wrong bytes in the cache or the work tree."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import pytest
from conftest import Shell
from servers import (  # noqa: F401  (fixtures)
    Store,
    azurite_fixture,
    bare_origin,
    clone,
    every_store_fixture,
    s3_endpoint_fixture,
    sshd_fixture,
    store_fixture,
)

from git_model.remotes import packs
from git_model.remotes.packs import MAGIC, REC, TOP, BadIndex, check_index, encode_index

FILES = 40


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def data_set(sh: Shell, n: int = FILES, tag: str = "") -> dict[str, bytes]:
    """n small files, half text (compresses), half random (does not), and one 2 MiB file."""
    files: dict[str, bytes] = {}
    for i in range(n):
        if i % 2:
            files[f"data/t{i}.csv"] = b"".join(
                b"%d,%d,%s\n" % (i, j, tag.encode()) for j in range(400)
            )
        else:
            files[f"data/r{i}.bin"] = os.urandom(2000 + i)
    files["model.bin"] = os.urandom(2 << 20)
    for rel, data in files.items():
        sh.write(rel, data)
    return files


def first_push(tmp_path: Path, store: Store) -> tuple[Shell, dict[str, bytes]]:
    alice = clone(bare_origin(tmp_path), tmp_path / "alice", store)
    files = data_set(alice)
    alice.model("add", "model.bin", "data")
    alice.model("remote", "add", "origin", store.url, "--default")
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "v1")
    alice.model("push")
    alice.git("push", "-q", "origin", "HEAD")
    return alice, files


def same_files(sh: Shell, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        assert (sh.cwd / rel).read_bytes() == data, rel


def test_a_data_set_travels_in_packs_through_every_store(
    every_store: Store, tmp_path: Path
) -> None:
    alice, files = first_push(tmp_path, every_store)
    small = {sha(d) for rel, d in files.items() if rel != "model.bin"}
    packed = every_store.packed()
    assert set(packed) == small  # every small object in a pack, none loose
    assert every_store.loose() == {sha(files["model.bin"])}  # a large one is its own object
    assert any(frame for *_, frame in packed.values())  # the text was compressed in the pack
    assert not any(
        frame
        for oid, (*_, frame) in packed.items()
        if oid in {sha(d) for r, d in files.items() if r.endswith(".bin")}
    )

    bob = clone(tmp_path / "origin.git", tmp_path / "bob", every_store)
    same_files(bob, files)
    again = json.loads(alice.model("push", "--json").stdout)
    assert (again["transferred"], again["present"]) == (0, FILES + 1)


def test_objects_in_packs_count_as_on_the_remote_for_gc(store: Store, tmp_path: Path) -> None:
    """gc drops the cache objects nothing needs any more when the remote holds them, in a
    pack as well as loose: none is kept as if it were the only copy."""
    alice = clone(bare_origin(tmp_path), tmp_path / "alice", store)
    one = data_set(alice, tag="one")
    alice.model("add", "model.bin", "data")
    alice.model("remote", "add", "origin", store.url, "--default")
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "v1")
    alice.model("push")
    data_set(alice, tag="two")  # v1 is amended away: its objects are needed by nothing
    alice.model("add", "model.bin", "data")
    alice.git("commit", "-q", "-a", "--amend", "-m", "v1 again")
    alice.git("reflog", "expire", "--expire=now", "--all")
    out = json.loads(alice.model("gc", "--json", "--keep-days", "0").stdout)
    assert (out["freed"], out["kept_only_copy"]) == (FILES + 1, 0)
    assert {sha(d) for d in one.values()} <= store.oids()


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_on_s3_a_data_set_is_a_few_requests_each_way(store: Store, tmp_path: Path) -> None:
    """200 small objects: one PUT for the pack and one for its index, not 200 PUTs and the
    HEADs that ask for each first; a fetch lists packs/ once, reads the index once, and the
    objects in one ranged GET."""
    from test_remote import cache_holding, s3_calls

    from git_model.remotes.store import Remote

    datas = [b"%d\n" % i * (50 + i) if i % 2 else os.urandom(3000 + i) for i in range(200)]
    cache, blobs = cache_holding(tmp_path / "model", datas)
    sizes = {oid: len(d) for oid, d in blobs.items()}
    remote = Remote.open("origin", store.url, store.options, "auto", "auto")
    calls = s3_calls(remote)
    outcomes: dict[str, int | BaseException] = {}
    assert remote.existing(list(blobs), sizes=sizes, for_upload=True) == set()
    assert remote.upload_packed(cache, list(blobs), None, outcomes.__setitem__) == []
    assert outcomes == sizes
    assert calls["PutObject"] == 2 and "HeadObject" not in calls, calls
    assert sum(calls.values()) <= 5, calls  # and the listings of packs/ and objects/

    for oid in blobs:
        cache.path(oid).unlink()
    fresh = Remote.open("origin", store.url, store.options, "auto")
    calls = s3_calls(fresh)
    outcomes.clear()
    assert fresh.plan_packed(list(blobs), sizes)
    assert fresh.fetch_packed(cache, sizes, 0, None, outcomes.__setitem__) == set(blobs)
    assert outcomes == sizes
    assert all(cache.path(oid).read_bytes() == d for oid, d in blobs.items())
    assert calls == {"ListObjectsV2": 1, "GetObject": 2}, calls  # packs/; the index, the objects


def test_a_corrupt_packed_object_is_refused_marked_and_repaired_by_a_push(
    store: Store, tmp_path: Path
) -> None:
    alice, files = first_push(tmp_path, store)
    rel = "data/t1.csv"
    oid = sha(files[rel])
    name, off, stored, _size, _frame = store.packed()[oid]
    pack = bytearray(store.files("packs")[f"{name}.pack"])
    pack[off + stored // 2] ^= 0xFF
    store.put_file("packs", f"{name}.pack", bytes(pack))

    bob = clone(tmp_path / "origin.git", tmp_path / "bob", store, init=False)
    bob.model("init", check=False)  # (init restores HEAD's files: the first fetch marks it)
    pulled = bob.model("pull", check=False)
    assert pulled.returncode != 0
    assert f"object {oid[:12]} on remote origin" in pulled.stderr
    assert "found corrupt" in pulled.stderr and "push it again" in pulled.stderr
    assert not (bob.cwd / rel).exists()  # never wrong bytes in the work tree
    same_files(bob, {r: d for r, d in files.items() if r != rel})
    assert f"{oid}.bad" in store.files("packs")

    pushed = json.loads(alice.model("push", "--json").stdout)  # the bad copy does not count
    assert pushed["transferred"] == 1
    assert oid in store.loose()
    bob.model("pull")
    same_files(bob, files)


def test_a_damaged_index_is_set_aside_and_its_objects_sent_again(
    store: Store, tmp_path: Path
) -> None:
    alice, files = first_push(tmp_path, store)
    (idx_name,) = [n for n in store.files("packs") if n.endswith(".idx")]
    data = bytearray(store.files("packs")[idx_name])
    data[TOP + 40] ^= 0x01  # an offset, in place: the name no longer matches
    store.put_file("packs", idx_name, bytes(data))

    bob = clone(tmp_path / "origin.git", tmp_path / "bob", store, init=False)
    bob.model("init", check=False)
    pulled = bob.model("pull", check=False)
    assert pulled.returncode != 0  # the small files are missing, the model is there
    assert (bob.cwd / "model.bin").read_bytes() == files["model.bin"]
    assert not (bob.cwd / "data" / "t1.csv").exists()
    assert idx_name not in store.files("packs")  # set aside, not used again
    pushed = json.loads(alice.model("push", "--json").stdout)
    assert pushed["transferred"] == FILES
    bob.model("pull")
    same_files(bob, files)


def test_a_hostile_index_with_a_true_name_never_puts_wrong_bytes_anywhere(
    store: Store, tmp_path: Path
) -> None:
    """An index that hashes to its name but lies (it points an object at another one's bytes,
    past the pack's end, or claims a size it does not have) is refused or read and refused."""
    _alice, files = first_push(tmp_path, store)
    packed = store.packed()
    (name,) = {p for p, *_ in packed.values()}
    pack = store.files("packs")[f"{name}.pack"]
    a, b = sha(files["data/t1.csv"]), sha(files["data/r0.bin"])
    records = []
    for oid, (_, off, stored, size, frame) in packed.items():
        if oid == a:  # a's entry points at b's bytes
            _, off, stored, size, frame = packed[b]
        records.append((bytes.fromhex(oid), off, stored, size, frame))
    index = encode_index(records, len(pack), hashlib.sha256(pack).digest())
    evil = packs.pack_id(index)
    store.put_file("packs", f"{evil}.pack", pack)
    store.put_file("packs", f"{evil}.idx", index)
    _remove_pack(store, name)

    bob = clone(tmp_path / "origin.git", tmp_path / "bob", store, init=False)
    bob.model("init", check=False)
    pulled = bob.model("pull", check=False)
    assert pulled.returncode != 0 and a[:12] in pulled.stderr
    assert not (bob.cwd / "data" / "t1.csv").exists()
    assert (bob.cwd / "data" / "r0.bin").read_bytes() == files["data/r0.bin"]


def _remove_pack(store: Store, name: str) -> None:
    for suffix in (".idx", ".pack"):
        if store.s3 is not None:
            store.s3.delete_object(Bucket=store.bucket, Key=f"store/packs/{name}{suffix}")
        else:
            assert store.root is not None
            (store.root / "packs" / f"{name}{suffix}").unlink()


def test_pack_off_keeps_objects_loose_and_a_mixed_remote_reads_whole(
    store: Store, tmp_path: Path
) -> None:
    alice = clone(bare_origin(tmp_path), tmp_path / "alice", store)
    alice.git("config", "model.pack", "off")
    one = data_set(alice, tag="one")
    alice.model("add", "model.bin", "data")
    alice.model("remote", "add", "origin", store.url, "--default")
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "v1")
    alice.model("push")
    assert store.packed() == {} and len(store.loose()) == FILES + 1

    alice.git("config", "model.pack", "auto")
    two = data_set(alice, tag="two")
    alice.model("add", "model.bin", "data")
    alice.git("commit", "-q", "-am", "v2")
    alice.model("push")
    alice.git("push", "-q", "origin", "HEAD")
    assert len(store.packed()) == FILES  # every small file changed
    bob = clone(tmp_path / "origin.git", tmp_path / "bob", store)
    same_files(bob, two)
    bob.git("checkout", "-q", "HEAD~1")
    bob.model("pull")
    same_files(bob, one)


def test_a_bad_pack_setting_is_one_line(store: Store, tmp_path: Path) -> None:
    alice, _ = first_push(tmp_path, store)
    alice.git("config", "model.pack", "sometimes")
    out = alice.model("push", check=False)
    assert out.returncode != 0
    assert "model.pack" in out.stderr and "auto or off" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_check_index_refuses_what_is_not_a_well_formed_index() -> None:
    recs = [(hashlib.sha256(b"%d" % i).digest(), i * 10, 10, 10, False) for i in range(5)]
    good = encode_index(recs, 50, b"\0" * 32)
    check_index(good, packs.pack_id(good))
    with pytest.raises(BadIndex):
        check_index(good, "0" * 64)  # not its name

    def named(data: bytes) -> None:
        check_index(data, packs.pack_id(data))

    with pytest.raises(BadIndex):
        named(good[:-1])  # cut short
    with pytest.raises(BadIndex):
        named(b"GMPACKI9" + good[len(MAGIC) :])  # another format
    past = encode_index([*recs[:4], (recs[4][0], 45, 10, 10, False)], 50, b"\0" * 32)
    with pytest.raises(BadIndex):
        named(past)  # past the pack's end
    big = encode_index([(recs[0][0], 0, 10, packs.OBJECT_MAX + 1, True)], 50, b"\0" * 32)
    with pytest.raises(BadIndex):
        named(big)  # a size no pack holds
    swapped = bytearray(good)
    first, second = TOP, TOP + REC.size
    swapped[first : first + REC.size], swapped[second : second + REC.size] = (
        good[second : second + REC.size],
        good[first : first + REC.size],
    )
    with pytest.raises(BadIndex):
        named(bytes(swapped))  # not sorted
    head = struct.pack(">QI32s", 50, 6, b"\0" * 32)
    with pytest.raises(BadIndex):
        named(MAGIC + head + good[len(MAGIC) + len(head) :])  # a count it does not have


def test_an_object_gone_from_the_cache_is_reported_missing_and_the_rest_packed(
    tmp_path: Path,
) -> None:
    """A cache object that went (a gc beside the push) after the push looked is one object
    missing, as for a loose upload; the others are packed and sent."""
    from test_remote import cache_holding

    from git_model.errors import MissingObject
    from git_model.remotes.store import Remote

    cache, blobs = cache_holding(tmp_path / "model", [os.urandom(500 + i) for i in range(20)])
    gone = next(iter(blobs))
    cache.path(gone).unlink()
    remote = Remote.open("origin", str(tmp_path / "store"), {}, "auto", "auto")
    outcomes: dict[str, int | BaseException] = {}
    assert remote.upload_packed(cache, sorted(blobs), None, outcomes.__setitem__) == []
    assert isinstance(outcomes.pop(gone), MissingObject)
    assert outcomes == {oid: len(d) for oid, d in blobs.items() if oid != gone}
    store = Store("dir", str(tmp_path / "store"), root=tmp_path / "store")
    assert set(store.packed()) == set(blobs) - {gone}
