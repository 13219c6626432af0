"""Two people share a model through a bare git remote plus an object store: a directory, S3
(moto on 127.0.0.1) and SSH (a real sshd on 127.0.0.1), the same session against each."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from conftest import Shell
from faults import FaultRecorder
from servers import (  # noqa: F401  (fixtures)
    SshServer,
    Store,
    bare_origin,
    clone,
    s3_endpoint_fixture,
    sshd_fixture,
    store_fixture,
)

from git_model.cache import Cache
from git_model.hashing import Oid
from git_model.remotes.store import Remote


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_holding(path: Path, datas: list[bytes]) -> tuple[Cache, dict[Oid, bytes]]:
    """A cache at `path` holding each of `datas` as an object (oid -> bytes, in order)."""
    cache = Cache(path)
    blobs = {Oid(sha(d)): d for d in datas}
    for oid, data in blobs.items():
        cache.path(oid).parent.mkdir(parents=True, exist_ok=True)
        cache.path(oid).write_bytes(data)
    return cache, blobs


def s3_calls(remote: Remote) -> Counter[str]:
    """Every S3 request `remote` makes from now on, counted by operation (botocore's events)."""
    calls: Counter[str] = Counter()
    remote.fs.s3.meta.events.register(
        "before-call.s3", lambda model, **_: calls.update([model.name])
    )
    return calls


def first_version(sh: Shell, store: Store) -> dict[str, bytes]:
    files = {
        "model.bin": os.urandom(3 << 20),
        "data/train/a.csv": b"x,y\n1,2\n",
        "data/train/b.csv": b"x,y\n3,4\n",
        "data/train/empty.csv": b"",
    }
    for rel, data in files.items():
        sh.write(rel, data)
    sh.model("add", "model.bin", "data/train")
    sh.model("remote", "add", "origin", store.url, "--default")
    sh.git("add", "-A")
    sh.git("commit", "-q", "-m", "v1")
    return files


def test_two_clones_share_a_model(store: Store, tmp_path: Path) -> None:
    origin = bare_origin(tmp_path)
    alice = clone(origin, tmp_path / "alice", store)
    files = first_version(alice, store)

    pushed = json.loads(alice.model("push", "--json").stdout)
    assert (pushed["transferred"], pushed["present"], pushed["missing"]) == (4, 0, [])
    assert store.oids() == {sha(d) for d in files.values()}
    again = json.loads(alice.model("push", "--json").stdout)
    assert (again["transferred"], again["present"]) == (0, 4)  # only what is missing moves
    alice.git("push", "-q", "origin", "main")

    # a fresh clone: git clone + git model init gives the exact artifacts of HEAD
    bob = clone(origin, tmp_path / "bob", store)
    for rel, data in files.items():
        assert bob.read(rel) == data
    assert json.loads(bob.model("status", "--json").stdout)["artifacts"][0]["state"] == "unchanged"

    # alice trains again: `git push` uploads the new bytes before the ref moves (pre-push)
    v2 = os.urandom(1 << 20)
    alice.write("model.bin", v2)
    alice.model("add", "model.bin")
    alice.git("commit", "-q", "-m", "v2")
    alice.git("push", "-q", "origin", "main")
    assert sha(v2) in store.oids()
    # bob: `git pull` brings the code, and its post-merge hook the bytes
    bob.git("pull", "-q")
    assert bob.read("model.bin") == v2
    assert "nothing to fetch" in bob.model("pull").stdout

    # every version is there for whoever wants it
    fetched = json.loads(bob.model("fetch", "--all", "--json").stdout)
    assert not fetched["failed"] and not fetched["missing"]
    assert (bob.cwd / ".git/model/objects" / sha(files["model.bin"])[:2]).is_dir()


def test_corrupt_object_on_the_remote_is_refused_and_reported(
    store: Store, tmp_path: Path, fault: FaultRecorder
) -> None:
    origin = bare_origin(tmp_path)
    alice = clone(origin, tmp_path / "alice", store)
    files = first_version(alice, store)
    alice.model("push")
    alice.git("push", "-q", "origin", "main")
    bad = sha(files["model.bin"])
    store.corrupt(bad)

    bob = clone(origin, tmp_path / "bob", store, init=False)
    init = bob.model("init")  # a fresh clone restores what it can, and says what it cannot
    assert "1 artifact file(s) could not be restored" in init.stderr
    assert not (bob.cwd / "model.bin").exists()  # never the wrong bytes
    states = {
        a["path"]: a["state"] for a in json.loads(bob.model("status", "--json").stdout)["artifacts"]
    }
    assert states == {"model.bin": "missing", "data/train": "unchanged"}
    out = bob.model("pull", check=False)
    assert out.returncode == 1
    assert bad[:12] in out.stderr and "origin" in out.stderr and "corrupt" in out.stderr
    assert not (bob.cwd / ".git/model/objects" / bad[:2] / bad[2:]).exists()
    assert not (bob.cwd / "model.bin").exists()
    assert bob.read("data/train/a.csv") == files["data/train/a.csv"]

    # the bad copy was set aside on the remote, so alice's next push repairs it
    assert bad not in store.oids()
    assert json.loads(alice.model("push", "--json").stdout)["transferred"] == 1
    bob.model("pull")
    assert bob.read("model.bin") == files["model.bin"]
    fault.row(
        f"a remote ({store.kind}) serves other bytes than the object's",
        "object overwritten on the remote",
        out.stderr.splitlines()[0].replace(store.url, "URL"),
        "nothing; the bad copy is set aside on the remote, a push repairs it",
    )


def test_interrupted_push_leaves_no_partial_object_and_resumes(
    store: Store, tmp_path: Path
) -> None:
    origin = bare_origin(tmp_path)
    alice = clone(origin, tmp_path / "alice", store)
    for i in range(12):
        alice.write(f"shards/{i:02}.bin", os.urandom(1000 + i))
    alice.model("add", "shards")
    alice.model("remote", "add", "origin", store.url, "--default")
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "shards")

    crash = {"GIT_MODEL_TEST_CRASH_AFTER_UPLOADS": "5"}
    out = alice.model("push", "--jobs", "1", env=crash, check=False)
    assert out.returncode == 75  # died in the middle of the sixth upload
    present = store.oids()
    assert len(present) == 5
    if store.root is not None:  # each object there is whole; the others only temp files
        for oid in present:
            assert sha((store.root / "objects" / oid[:2] / oid[2:]).read_bytes()) == oid
        assert len(store.temp_files()) >= 1

    resumed = json.loads(alice.model("push", "--json").stdout)
    assert (resumed["present"], resumed["transferred"]) == (5, 7)  # nothing sent twice
    assert len(store.oids()) == 12
    assert json.loads(alice.model("push", "--json").stdout)["transferred"] == 0


def test_an_ssh_server_with_an_unknown_host_key_is_refused(
    sshd: SshServer, repo: Shell, hermetic: Path, tmp_path: Path
) -> None:
    ssh = hermetic / ".ssh"
    ssh.mkdir(mode=0o700)
    shutil.copy(sshd.client_key, ssh / "id_ed25519")
    (ssh / "id_ed25519").chmod(0o600)
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    impostor = (tmp_path / "other_key.pub").read_text().split()[:2]
    (ssh / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {' '.join(impostor)}\n")
    repo.write("w.bin", b"weights")
    repo.model("add", "w.bin")
    url = f"ssh://{getpass.getuser()}@127.0.0.1:{sshd.port}{tmp_path / 'store'}"
    out = repo.model("push", url, check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "HostKeyNotVerifiable" in out.stderr
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_a_file_sent_to_s3_in_parts_arrives_whole(store: Store, tmp_path: Path) -> None:
    """A file over twice the upload's part size goes in parts (S3_PUT bounds what one upload
    holds in memory): every part is one S3 accepts, and the object is the file, byte for byte."""
    from git_model.remotes.base import S3_PUT

    origin = bare_origin(tmp_path)
    alice = clone(origin, tmp_path / "alice", store)
    data = os.urandom(2 * S3_PUT["chunksize"] + 12345)
    alice.write("model.bin", data)
    alice.model("add", "model.bin")
    alice.model("remote", "add", "origin", store.url, "--default")
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "v1")
    alice.model("push")
    alice.git("push", "-q", "origin", "main")
    assert store.read(f"{sha(data)[:2]}/{sha(data)[2:]}") == data

    bob = clone(origin, tmp_path / "bob", store)
    assert bob.read("model.bin") == data


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_on_s3_an_object_is_found_with_one_request_and_never_a_list_of_objects(
    store: Store, tmp_path: Path
) -> None:
    """Requests are what S3 bills and what slows a push of many small objects: s3fs's `info`
    answers a missing key with a HEAD and then a LIST (a dearer request), a raw object used to
    be looked for as a frame that way first, and its `open` asks a HEAD before each GET.
    Counted with botocore's own events."""
    text = b"".join(b"%d,%d,label-%d\n" % (i, i * i, i % 7) for i in range(20000))
    cache, blobs = cache_holding(tmp_path / "model", [text, os.urandom(1 << 16)])  # frame, raw
    remote = Remote.open("origin", store.url, store.options, "auto")
    calls = s3_calls(remote)

    assert remote.existing(set(blobs), for_upload=True) == set()
    # each: its frame, its raw bytes; no LIST but the one of packs/ a command makes
    assert calls == {"HeadObject": 4, "ListObjectsV2": 1}
    for oid in blobs:
        remote.upload(cache, oid)
    assert store.frames() == {sha(text)} and store.oids() == set(blobs)

    calls.clear()
    assert remote.existing(set(blobs), for_upload=True) == set(blobs)
    assert calls == {"HeadObject": 3}  # the frame found first; raw bytes after a miss

    for oid in blobs:
        cache.path(oid).unlink()
    calls.clear()
    for oid, data in blobs.items():
        assert remote.download(cache, oid) == len(data)
        assert cache.path(oid).read_bytes() == data
    assert calls == {"GetObject": 3}  # one GET each (no HEAD first); raw bytes after a miss


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_an_s3_body_read_in_small_pieces_gives_the_object_byte_for_byte(
    store: Store, tmp_path: Path
) -> None:
    """A small read of a GET's body keeps what arrived beyond it for the next read (a frame's
    head and header are read that way): whatever the sizes asked, the bytes are the object's,
    in order, and the end is the end."""
    from git_model.remotes.fetching import BODY_BLOCK, _get

    data = os.urandom(BODY_BLOCK + 54321)
    cache, blobs = cache_holding(tmp_path / "model", [data])
    (oid,) = blobs
    remote = Remote.open("origin", store.url, store.options, "off")
    remote.upload(cache, oid)
    key = remote.key(oid)
    for sizes in ([8, 100, 3, BODY_BLOCK, 7], [1] * 50, [BODY_BLOCK * 2]):
        got = []
        with _get(remote.fs, key) as body:
            assert body.size == len(data)
            for n in sizes:
                got.append(body.read(n))
                assert len(got[-1]) <= n
            got.append(body.read(-1))
            assert body.read(10) == b""
        assert b"".join(got) == data


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_on_s3_many_wanted_objects_are_answered_by_one_listing(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first push of a data set asked two HEADs a file (its frame, its raw bytes): on a
    remote that one LIST page or a few can describe, one flat listing answers for them all,
    with the same rules (a frame counts; raw bytes only at the object's size). A remote too
    large for that is asked per prefix and per object, as before."""
    from git_model.remotes import base
    from git_model.remotes.store import FLAT_FROM

    text = b"".join(b"%d,%d\n" % (i, i * i) for i in range(20000))
    datas = [text, *(os.urandom(100 + i) for i in range(FLAT_FROM))]
    cache, blobs = cache_holding(tmp_path / "model", datas)
    remote = Remote.open("origin", store.url, store.options, "auto")
    calls = s3_calls(remote)
    sizes = {oid: len(data) for oid, data in blobs.items()}

    assert remote.existing(set(blobs), sizes=sizes, for_upload=True) == set()  # an empty bucket
    assert calls == {"ListObjectsV2": 2}  # (packs/, once a command; then the objects)
    pushed = list(blobs)[: len(blobs) // 2]
    for oid in pushed:
        remote.upload(cache, oid)
    assert store.frames() == {sha(text)}
    short = list(blobs)[-1]  # a truncated copy is not the object
    store.s3.put_object(
        Bucket=store.bucket, Key=f"store/objects/{short[:2]}/{short[2:]}", Body=b"x"
    )

    calls.clear()
    assert remote.existing(set(blobs), sizes=sizes, for_upload=True) == set(pushed)
    assert calls == {"ListObjectsV2": 1}

    monkeypatch.setattr(base, "LIST_PAGE", 3)  # the remote now holds more than a listing may cost
    prefixes = sum(1 for n in Counter(o[:2] for o in blobs).values() if n > 4)
    calls.clear()
    assert remote.existing(set(blobs), sizes=sizes, for_upload=True) == set(pushed)
    assert calls["ListObjectsV2"] == len(blobs) // 8 + prefixes  # pages allowed, then prefixes
    assert calls["HeadObject"] > 0
    calls.clear()  # and this Remote does not try listing it whole again
    assert remote.existing(set(blobs), sizes=sizes, for_upload=True) == set(pushed)
    assert calls["ListObjectsV2"] == prefixes


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_on_s3_a_pull_from_a_remote_of_both_forms_makes_one_get_an_object(
    store: Store, tmp_path: Path
) -> None:
    """A remote holds frames and raw bytes side by side (text and random data). Looked for in
    the form found more often so far, about one object in two cost a miss first; planned from
    one flat listing, each is one GET. A pull plans a batch at a time: the remote is listed
    once for all of them."""
    from git_model.remotes.store import FLAT_FROM

    datas = []
    for i in range(FLAT_FROM):
        text = b"".join(b"%d,%d,%d\n" % (i, j, j * i) for j in range(3000))
        datas += [text, os.urandom(1000 + i)]
    cache, blobs = cache_holding(tmp_path / "model", datas)
    remote = Remote.open("origin", store.url, store.options, "auto")
    for oid in blobs:
        remote.upload(cache, oid)
    assert len(store.frames()) == FLAT_FROM

    def pull(plan: bool) -> Counter[str]:
        fresh = Remote.open("origin", store.url, store.options, "auto")
        calls = s3_calls(fresh)
        for oid in blobs:
            cache.path(oid).unlink()
        items = list(blobs.items())
        for batch in (items[: len(items) // 2], items[len(items) // 2 :]):  # (each >= FLAT_FROM)
            if plan:
                fresh.plan([oid for oid, _ in batch], {}, upload=False)
            for oid, data in batch:
                assert fresh.download(cache, oid, size=len(data)) == len(data)
                assert cache.path(oid).read_bytes() == data
        return calls

    assert pull(plan=False)["GetObject"] > len(blobs)  # (misses: the form guessed wrong)
    assert pull(plan=True) == {"ListObjectsV2": 1, "GetObject": len(blobs)}
