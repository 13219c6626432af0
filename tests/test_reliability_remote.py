"""Faults between a clone and its object store: kill -9 mid-transfer, remotes that lie, full
disks while downloading.

No partial or unverified object is ever visible, on the remote or in the cache; a rerun moves
only what is still missing; a remote that serves other bytes, more bytes than an object has,
or a listing full of junk is refused or ignored, with one line, and nothing is written
outside the repository.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Shell, peak_rss_mib, tmpfs
from faults import FaultRecorder, assert_cache_sound, cache_objects, kill_after, timed
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


def seeded(size: int, seed: int = 0) -> bytes:
    """Random bytes that are the same in every run (the messages in docs/faults.md name oids)."""
    return random.Random(seed).randbytes(size)


def remote_objects(store: Store) -> dict[str, bytes]:
    """oid -> bytes of every object on the remote a reader would see: under objects/, and in
    the packs an index names (a pack no index names is not seen)."""
    out: dict[str, bytes] = {}
    if store.s3 is not None:
        for oid in store.loose():
            key = f"store/objects/{oid[:2]}/{oid[2:]}"
            out[oid] = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    else:
        assert store.root is not None
        objects = store.root / "objects"
        out = {p.parent.name + p.name: p.read_bytes() for p in objects.glob("*/*") if p.is_file()}
    packs = store.files("packs")
    for oid, (name, off, stored, _size, frame) in store.packed().items():
        data = packs[f"{name}.pack"][off : off + stored]
        out[oid] = decode(data) if frame else data
    return out


def decode(frame: bytes) -> bytes:
    from git_model.remotes import codec

    reader = codec.FrameReader(io.BytesIO(frame), "packed object")
    return b"".join(iter(lambda: reader.read(1 << 16), b""))


def assert_remote_sound(store: Store) -> int:
    """Every object visible on the remote hashes to its name; returns how many there are."""
    found = remote_objects(store)
    for oid, data in found.items():
        assert sha(data) == oid, f"partial or wrong object {oid} visible on the remote"
    return len(found)


def shared_model(
    tmp_path: Path, store: Store, files: int = FILES, big: int = 24 << 20
) -> tuple[Shell, Path]:
    """alice's clone with a model of many shards and one large file, committed and pushed to
    the git remote (not yet to the object store)."""
    origin = bare_origin(tmp_path)
    alice = clone(origin, tmp_path / "alice", store)
    for i in range(files):
        alice.write(f"shards/{i:03}.bin", os.urandom(8 << 10))
    alice.write("model.bin", os.urandom(big))
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
    # (each request to the S3 server costs more than a file copy: a smaller model there)
    files, big = (FILES, 24) if store.root else (30, 4)
    alice, _ = shared_model(tmp_path, store, files, big << 20)
    wanted = files + 1
    duration = timed(alice, "push")
    if store.s3 is not None:  # start again from an empty bucket
        listed = store.s3.list_objects_v2(Bucket=store.bucket, Prefix="store/")
        for item in listed.get("Contents", []):
            store.s3.delete_object(Bucket=store.bucket, Key=item["Key"])
    else:
        assert store.root is not None
        shutil.rmtree(store.root)
    counts = []
    fractions = (0.2, 0.5, 0.8) if store.root else (0.3, 0.7)  # (S3: each run costs more)
    for fraction in fractions:
        kill_after(["push"], alice.cwd, duration * fraction)
        counts.append(assert_remote_sound(store))
    assert counts[0] < wanted, "the kills should land mid-push"
    stale = time.time() - 2 * 86400
    for temp in store.temp_files():  # what the killed pushes left, aged two days
        assert store.root is not None
        os.utime(store.root / "tmp" / temp, (stale, stale))
    resumed = json.loads(alice.model("push", "--json").stdout)
    # what arrived is not sent again (a server may still complete a request whose body it
    # had in full when the client died, so an object store can show a few more by now)
    assert resumed["present"] + resumed["transferred"] == wanted
    assert resumed["present"] == counts[-1] if store.root else resumed["present"] >= counts[-1]
    assert assert_remote_sound(store) == wanted
    assert store.temp_files() == []  # a push sweeps away what killed pushes left long ago
    fault.row(
        f"kill -9 during `git model push` ({store.kind} remote, {files} files + {big} MiB)",
        f"SIGKILL at {len(fractions)} points across the push",
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


@pytest.mark.parametrize("store", ["dir", "s3"], indirect=True)
def test_a_remote_object_larger_than_it_should_be_is_refused_unread(
    store: Store, tmp_path: Path, fault: FaultRecorder
) -> None:
    origin = bare_origin(tmp_path)
    alice = clone(origin, tmp_path / "alice", store)
    weights, small = seeded(3 << 20), seeded(1000, 1)
    alice.write("model.bin", weights)
    alice.write("small.bin", small)
    alice.model("add", "model.bin", "small.bin")
    alice.model("remote", "add", "origin", store.url, "--default")
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "v1")
    alice.git("push", "-q", "origin", "main")  # the pre-push hook uploads both
    for data, padding in ((weights, 4 << 30), (small, 8 << 20)):  # the right bytes, then more
        oid = sha(data)
        if store.s3 is not None:
            body = data + bytes(4 << 20)
            key = f"store/objects/{oid[:2]}/{oid[2:]}"
            store.s3.put_object(Bucket=store.bucket, Key=key, Body=body)
        else:
            assert store.root is not None
            path = store.root / "objects" / oid[:2] / oid[2:]
            path.chmod(0o644)
            os.truncate(path, len(data) + padding)  # 4 GiB that are mostly a hole

    bob = clone(origin, tmp_path / "bob", store)
    out, peak = peak_rss_mib(bob, "pull")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"larger than the {len(weights)} bytes it has" in out.stderr
    assert cache_objects(bob.cwd) == [] and not list((bob.cwd / ".git/model/tmp").iterdir())
    assert not (bob.cwd / "model.bin").exists() and not (bob.cwd / "small.bin").exists()
    assert peak < 100

    if store.root is not None:  # (the same on S3, where each command costs a second more)
        repaired = json.loads(alice.model("push", "--json").stdout)  # the sizes tell: not there
        assert (repaired["transferred"], repaired["present"]) == (2, 0)
        bob.model("pull")
        assert bob.read("model.bin") == weights and bob.read("small.bin") == small
    fault.row(
        f"a remote ({store.kind}) object larger than the object "
        f"({'7 MiB' if store.s3 else '4 GiB'} where 3 MiB is right)",
        "object padded on the remote",
        next(line for line in out.stderr.splitlines() if str(len(weights)) in line).replace(
            store.url, "URL"
        ),
        "nothing; nothing read past the size (peak memory under 100 MiB)"
        + (", a push repairs it" if store.root else ""),
    )


class Endless:
    """A download that never ends: the object's bytes, then zeros forever."""

    def __init__(self, data: bytes) -> None:
        self.data, self.sent = data, 0

    def read(self, n: int = -1) -> bytes:
        assert n > 0, "an unbounded read of an endless stream"
        chunk = self.data[self.sent : self.sent + n].ljust(n, b"\0")
        self.sent += n
        return chunk


def test_the_cache_stops_reading_past_the_expected_size(
    tmp_path: Path, fault: FaultRecorder
) -> None:
    import tracemalloc

    from git_model.cache import Cache
    from git_model.errors import OversizedObject
    from git_model.hashing import CHUNK, Oid
    from git_model.incoming import store_stream

    cache = Cache(tmp_path / "model")
    data = seeded(3 << 20)
    stream = Endless(data)
    tracemalloc.start()
    with pytest.raises(OversizedObject) as refused:
        store_stream(cache, stream, Oid(sha(data)), len(data))  # type: ignore[arg-type]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert stream.sent <= len(data) + CHUNK  # it stopped one read past the size
    assert peak < 4 * CHUNK  # one chunk at a time, whatever the stream's length
    assert not list(cache.objects.glob("*/*")) and not list(cache.tmp.iterdir())
    fault.row(
        "a download stream that never ends",
        "an endless stream handed to the cache",
        str(refused.value),
        "nothing; reading stopped one chunk past the size, memory flat",
    )


def prefix_mates(count: int) -> list[bytes]:
    """`count` small contents whose oids share their first two hex digits (one prefix folder,
    so that the remote is asked by listing it, not object by object)."""
    by_prefix: dict[str, list[bytes]] = {}
    while True:
        data = os.urandom(64)
        group = by_prefix.setdefault(sha(data)[:2], [])
        group.append(data)
        if len(group) == count:
            return group


@pytest.mark.parametrize("store", ["dir", "s3"], indirect=True)
def test_a_hostile_remote_listing_is_never_trusted(
    store: Store, tmp_path: Path, fault: FaultRecorder
) -> None:
    origin = bare_origin(tmp_path)
    alice = clone(origin, tmp_path / "alice", store)
    shards = prefix_mates(6)
    for i, data in enumerate(shards):
        alice.write(f"shards/{i}.bin", data)
    alice.model("add", "shards")
    alice.model("remote", "add", "origin", store.url, "--default")
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "v1")
    prefix = sha(shards[0])[:2]
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not yours")
    junk = {  # names under objects/PREFIX/ that are no object, or not the object they name
        "not-hex": b"junk",
        "ZZ" + "0" * 60: b"junk",
        sha(shards[0])[2:]: shards[0][:10],  # truncated
        sha(shards[1])[2:] + "/nested": b"a folder bearing an object's name",
    }
    if store.s3 is not None:
        junk["../../../escape"] = b"junk"
        for name, body in junk.items():
            key = f"store/objects/{prefix}/{name}"
            store.s3.put_object(Bucket=store.bucket, Key=key, Body=body)
    else:
        assert store.root is not None
        folder = store.root / "objects" / prefix
        for name, body in junk.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(body)
        os.symlink(outside, folder / sha(shards[2])[2:])  # a link out, named as an object

    out = alice.model("push", "--json", check=False)
    assert "Traceback" not in out.stderr
    pushed = json.loads(out.stdout)
    assert pushed["present"] == 0  # nothing the listing claims is taken on trust
    if store.s3 is not None:
        assert pushed["transferred"] == 6 and out.returncode == 0
    else:  # a folder squats one object's name on the directory remote: that one is named
        assert pushed["transferred"] == 5 and out.returncode == 1
        assert sha(shards[1])[:12] in out.stderr and "origin" in out.stderr
    assert outside.read_bytes() == b"not yours"
    assert not (tmp_path / "escape").exists() and not (tmp_path.parent / "escape").exists()
    planted = "junk names, `../../../escape`, a truncated copy, a folder bearing an object's name"
    if store.s3 is None:
        planted = "junk names, a truncated copy, a folder and a link out bearing objects' names"
    fault.row(
        f"a hostile remote ({store.kind}) listing: {planted}",
        "files and keys planted under objects/",
        "none of them counts as the object: the real objects are pushed"
        + ("" if store.s3 is not None else "; the squatted name is reported"),
        "nothing; nothing read or written outside",
    )


def test_gc_keeps_the_only_good_copy_when_the_remote_copy_is_truncated(
    repo: Shell, tmp_path: Path, fault: FaultRecorder
) -> None:
    store = tmp_path / "store"
    repo.model("remote", "add", "origin", str(store), "--default")
    data = seeded(4096)
    repo.write("scratch.bin", data)
    repo.model("add", "scratch.bin")
    repo.model("push")
    repo.model("rm", "scratch.bin")  # no longer needed: gc may drop it if the remote has it
    oid = sha(data)
    remote_copy = store / "objects" / oid[:2] / oid[2:]
    remote_copy.chmod(0o644)
    remote_copy.write_bytes(data[:100])  # but the remote's copy is cut short
    out = repo.model("gc", "--keep-days", "0").stdout
    assert "freed 0 object(s)" in out and "kept 1 unneeded object(s)" in out
    assert (repo.cwd / ".git/model/objects" / oid[:2] / oid[2:]).read_bytes() == data
    fault.row(
        "the remote's copy of an unneeded object is truncated",
        "remote file cut short, then `git model gc`",
        out.splitlines()[-1],
        "nothing; the only good copy stays",
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    yield from tmpfs(tmp_path, "48m")


def test_disk_full_while_downloading_into_the_cache(
    small_disk: Path, tmp_path: Path, fault: FaultRecorder
) -> None:
    store = Store("dir", str(tmp_path / "store"), root=tmp_path / "store")
    origin = bare_origin(tmp_path)
    alice = clone(origin, tmp_path / "alice", store)
    files = {f"data/{i}.bin": seeded(1 << 20, i) for i in range(12)}
    files["model.bin"] = seeded(6 << 20, 12)
    for rel, data in files.items():
        alice.write(rel, data)
    alice.model("add", "data", "model.bin")
    alice.model("remote", "add", "origin", store.url, "--default")
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "v1")
    alice.git("push", "-q", "origin", "main")

    bob = clone(origin, small_disk / "bob", store, init=False)
    filler = small_disk / "filler"
    filler.write_bytes(bytes(32 << 20))  # 18 MiB to fetch, about 15 MiB free
    init = bob.model("init", check=False)  # restores what fits, and stops with one line
    assert init.returncode in (0, 1) and len(init.stderr.strip().splitlines()) <= 1
    wipe_local_bytes(bob)
    out = bob.model("pull", check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "no space left on device" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert_cache_sound(bob.cwd)
    assert not list((bob.cwd / ".git/model/tmp").iterdir())  # nothing half-written
    assert litter(bob) == []
    filler.unlink()  # free some space, and the same command finishes the job
    bob.model("pull")
    assert {rel: bob.read(rel) for rel in files} == files
    fault.row(
        "disk full while downloading into the cache",
        "`git model pull` into a nearly full tmpfs",
        out.stderr,
    )


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("fault injection relies on Linux")
