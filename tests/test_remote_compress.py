"""Objects on remotes as zstd frames (issue 18): what compresses is stored smaller, what does
not stays raw, every download is verified against the raw bytes' oid, and a bad or hostile
frame never reaches the cache. Real arrays written by NumPy and safetensors, real data that
scikit-learn ships, real git, real stores (a directory, moto S3, sshd, Azurite)."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zstandard
from conftest import Shell
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import (  # noqa: F401  (fixtures)
    Store,
    azurite_fixture,
    bare_origin,
    clone,
    every_store_fixture,
    s3_endpoint_fixture,
    sshd_fixture,
)

from git_model.errors import CorruptObject, OversizedObject
from git_model.remotes import codec


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sklearn_csv(min_size: int) -> bytes:
    """Text data as a team would track it: the CSVs scikit-learn ships, repeated to size."""
    import sklearn.datasets

    folder = Path(sklearn.datasets.__file__).parent / "data"
    text = b"".join((folder / name).read_bytes() for name in ("breast_cancer.csv", "wine_data.csv"))
    return text * (min_size // len(text) + 1)


def weights_npy(count: int, dtype: str) -> bytes:
    """A .npy file of float weights with a trained model's spread, written by NumPy."""
    rng = np.random.default_rng(7)
    out = io.BytesIO()
    np.save(out, (rng.standard_normal(count) * 0.02).astype(dtype))
    return out.getvalue()


def decode(frame: bytes) -> bytes:
    reader = codec.FrameReader(io.BytesIO(frame), "test frame")
    return b"".join(iter(lambda: reader.read(1 << 16), b""))


def encode_file(path: Path) -> tuple[int | None, bytes]:
    """(the width the probe picks or None, the frame streamed from the file with it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        width = codec.probe(fd, size, codec.AUTO)
        out = io.BytesIO()
        encoded = codec.encode(fd, size, width or 0, codec.AUTO, out.write)
    finally:
        os.close(fd)
    assert (encoded.digest, encoded.size, encoded.stored) == (
        sha(path.read_bytes()),
        size,
        len(out.getvalue()),
    )
    return width, out.getvalue()


# -- the codec on its own ------------------------------------------------------------------------


@given(st.binary(max_size=300), st.sampled_from(codec.GROUPS))
@settings(max_examples=60, deadline=None)
def test_byte_grouping_is_lossless_for_any_bytes(data: bytes, width: int) -> None:
    grouped = codec.group(data, width)
    assert len(grouped) == len(data) and codec.ungroup(grouped, width) == data


def test_real_float_files_are_grouped_and_come_back_exactly(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(1)
    tensors = {
        "embed.weight": (rng.standard_normal((512, 300)) * 0.05).astype(np.float16),
        "head.bias": np.zeros(7, dtype=np.float16),  # an odd tail
    }
    save_file(tensors, str(tmp_path / "model.safetensors"))
    (tmp_path / "fp32.npy").write_bytes(weights_npy(600_001, "<f4"))
    # bf16 as it sits in a file: the top half of each fp32 value (no numpy dtype for it)
    fp32 = np.frombuffer(weights_npy(600_000, "<f4")[128:], "<u4")
    (tmp_path / "bf16.bin").write_bytes((fp32 >> 16).astype("<u2").tobytes())

    for name, width in (("model.safetensors", 2), ("fp32.npy", 4), ("bf16.bin", 2)):
        raw = (tmp_path / name).read_bytes()
        picked, frame = encode_file(tmp_path / name)
        assert picked == width, name
        assert decode(frame) == raw
        plain = len(zstandard.ZstdCompressor(level=3).compress(raw))
        assert len(frame) < plain < len(raw)  # grouping beats zstd alone, which beats nothing
    npz = np.load(io.BytesIO(decode(encode_file(tmp_path / "fp32.npy")[1])))
    assert npz.dtype == np.float32 and npz.shape == (600_001,)


def test_incompressible_bytes_stay_raw_and_text_is_packed_whole() -> None:
    assert codec.pack(os.urandom(200_000), codec.AUTO) is None
    assert codec.pack(b"", codec.AUTO) is None
    text = sklearn_csv(100_000)[:100_000]
    frame = codec.pack(text, codec.AUTO)
    assert frame is not None and len(frame) < 0.5 * len(text)
    assert decode(frame) == text


def test_a_frame_that_expands_without_bound_stops_one_byte_past_its_size() -> None:
    cobj = zstandard.ZstdCompressor(level=1).compressobj()  # no content size in the frame
    body = b"".join(cobj.compress(bytes(1 << 20)) for _ in range(64)) + cobj.flush()
    reader = codec.FrameReader(io.BytesIO(codec.header(1000, 0) + body), "bomb")
    got = 0
    with pytest.raises(CorruptObject, match="more than the 1000 bytes"):
        while chunk := reader.read(100):
            got += len(chunk)
    assert got == 1000  # everything up to the size it records, and not a byte more


@pytest.mark.parametrize(
    "frame, why",
    [
        (b"", "cut short"),
        (b"\x28\xb5\x2f\xfd" + bytes(40), "no git-model header"),
        (codec.header(5, 0) + b"not zstd at all", "does not decompress"),
        (codec.header(5, 3) + b"", "format this git-model does not know"),
    ],
)
def test_a_frame_that_does_not_decode_is_corrupt(frame: bytes, why: str) -> None:
    with pytest.raises(CorruptObject, match=why):
        decode(frame)


def test_model_compress_values() -> None:
    assert codec.parse_level("auto") == codec.AUTO and codec.parse_level(9) == 9
    assert codec.parse_level("off") is None
    with pytest.raises(Exception, match="use auto, off or a zstd level"):
        codec.parse_level("fast")


# -- through real remotes ------------------------------------------------------------------------


def dataset(sh: Shell) -> dict[str, bytes]:
    files = {
        "data/train.csv": sklearn_csv(1 << 20),  # large: probed, then streamed
        "data/labels.csv": sklearn_csv(1)[:20_000],  # small: compressed whole
        "weights/fp32.npy": weights_npy(300_000, "<f4"),
        "weights/noise.bin": os.urandom(1 << 20 | 1),  # incompressible: raw after the probe
        "weights/tiny.bin": os.urandom(100),
    }
    for rel, data in files.items():
        sh.write(rel, data)
    sh.model("add", "data", "weights")
    return files


def test_round_trip_through_every_store(every_store: Store, tmp_path: Path) -> None:
    store = every_store
    origin = bare_origin(tmp_path)
    alice = clone(origin, tmp_path / "alice", store)
    files = dataset(alice)
    alice.model("remote", "add", "origin", store.url, "--default")
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "v1")
    out = alice.model("push", "-v")
    assert "saved" in out.stdout
    framed = {sha(files[r]) for r in ("data/train.csv", "data/labels.csv", "weights/fp32.npy")}
    assert store.frames() == framed
    assert store.oids() == {sha(d) for d in files.values()}
    pushed = json.loads(alice.model("push", "--json").stdout)
    assert (pushed["transferred"], pushed["present"]) == (0, 5)  # frames count as there
    alice.git("push", "-q", "origin", "main")

    bob = clone(origin, tmp_path / "bob", store)  # init restores HEAD: frames decoded
    for rel, data in files.items():
        assert bob.read(rel) == data, rel


def test_a_remote_shared_with_a_clone_that_does_not_compress(tmp_path: Path) -> None:
    store = Store("dir", str(tmp_path / "store"), root=tmp_path / "store")
    origin = bare_origin(tmp_path)
    old = clone(origin, tmp_path / "old", store)  # as an old git-model leaves a remote: raw
    old.git("config", "model.compress", "off")
    text = sklearn_csv(2 << 20)
    old.write("data/v1.csv", text)
    old.model("add", "data")
    old.model("remote", "add", "origin", store.url, "--default")
    old.git("add", "-A")
    old.git("commit", "-q", "-m", "v1")
    old.git("push", "-q", "origin", "main")  # the pre-push hook uploads
    assert store.oids() == {sha(text)} and not store.frames()

    new = clone(origin, tmp_path / "new", store)  # new code reads the old layout
    assert new.read("data/v1.csv") == text
    new.write("data/v2.csv", text[: 1 << 20])
    new.model("add", "data")
    new.git("commit", "-q", "-am", "v2")
    new.git("push", "-q", "origin", "main")
    assert store.frames() == {sha(text[: 1 << 20])}  # the same remote, both kinds

    old.git("pull", "-q")  # the post-merge hook fetches the frame the other clone pushed
    assert old.read("data/v2.csv") == text[: 1 << 20]

    team = new.cwd / ".gitmodel/config.toml"
    team.write_text('compress = "fast"\n' + team.read_text())  # (before any [table])
    out = new.model("push", check=False)
    assert out.returncode == 1 and "model.compress = 'fast'" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_and_unbounded_frames_never_reach_the_cache(repo: Shell, tmp_path: Path) -> None:
    store = Store("dir", str(tmp_path / "store"), root=tmp_path / "store")
    files = {f"data/{i}.csv": sklearn_csv(1)[i * 5000 : (i + 1) * 5000 + 4000] for i in range(3)}
    for rel, data in files.items():
        repo.write(rel, data)
    repo.model("add", "data")
    repo.model("remote", "add", "origin", store.url, "--default")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "v1")
    repo.model("push")
    garbled, other, bomb = (sha(files[f"data/{i}.csv"]) for i in range(3))
    cobj = zstandard.ZstdCompressor(level=19).compressobj()
    endless = b"".join(cobj.compress(bytes(1 << 20)) for _ in range(256)) + cobj.flush()
    frames = {
        garbled: codec.header(len(files["data/0.csv"]), 0) + b"\x28\xb5\x2f\xfd garbage",
        other: codec.pack(files["data/0.csv"], 3) or b"",
        bomb: codec.header(len(files["data/2.csv"]), 0) + endless,  # 256 MiB of zeros
    }
    for oid, frame in frames.items():
        store.replace(f"{oid[:2]}/{oid[2:]}.zst", frame)

    for rel in files:
        (repo.cwd / rel).unlink()
    objects = repo.cwd / ".git/model/objects"
    for oid in frames:
        (objects / oid[:2] / oid[2:]).unlink()
    out = repo.model("fetch", "--json", check=False)
    assert out.returncode == 1
    failed = {f["oid"]: f["error"] for f in json.loads(out.stdout)["failed"]}
    assert set(failed) == set(frames)
    assert "does not decompress" in failed[garbled]
    assert "decodes to more than" in failed[bomb]
    assert all(not (objects / o[:2] / o[2:]).exists() for o in frames)
    assert not list((repo.cwd / ".git/model/tmp").iterdir())  # no partial object left
    quarantined = {p.name.removesuffix(".zst") for p in (tmp_path / "store/quarantine").iterdir()}
    assert quarantined == set(frames)
    assert not store.oids() & set(frames)

    # a clone that has the bytes repairs the remote, and its frames read back
    for rel, data in files.items():
        repo.write(rel, data)
    repo.model("add", "data")
    assert json.loads(repo.model("push", "--json").stdout)["transferred"] == 3
    for oid in frames:
        (objects / oid[:2] / oid[2:]).unlink()
    repo.model("fetch")
    assert all((objects / o[:2] / o[2:]).is_file() for o in frames)


MEMORY_SCRIPT = """\
import io, resource, sys, zstandard
from git_model.remotes import codec
size = int(sys.argv[1])
cobj = zstandard.ZstdCompressor(level=1).compressobj(size=size)
body = b"".join(cobj.compress(bytes(1 << 26)) for _ in range(size >> 26)) + cobj.flush()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
reader = codec.FrameReader(io.BytesIO(codec.header(size, 4) + body), "big")
total = 0
while chunk := reader.read(1 << 20):
    total += len(chunk)
print(total, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


@pytest.mark.slow
def test_decoding_a_10_gib_frame_keeps_memory_flat() -> None:
    import subprocess
    import sys

    size = 10 << 30
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(size)], capture_output=True, text=True, check=True
    )
    total, grew_kib = map(int, out.stdout.split())
    assert total == size
    assert grew_kib < 64 << 10  # a few chunks, never the object


@pytest.mark.parametrize("every_store", ["az"], indirect=True)
def test_on_azure_a_small_object_is_one_get(every_store: Store, tmp_path: Path) -> None:
    """adlfs's `open` asks a blob's properties before its bytes: a pull of a data set's small
    files made two requests a file. A small object (a frame or raw bytes) is now one GET; a
    larger one still goes through `open` (the SDK's single GET would hold up to 32 MiB).
    Counted at the transport every request of the file system goes through."""
    from git_model.cache import Cache
    from git_model.hashing import Oid
    from git_model.remotes.directory import SMALL
    from git_model.remotes.store import Remote

    store = every_store
    cache = Cache(tmp_path / "model")
    text = sklearn_csv(1)[:200_000]  # compressible: a frame
    blobs = {Oid(sha(d)): d for d in (text, os.urandom(1 << 16), b"", os.urandom(SMALL + 1))}
    for oid, data in blobs.items():
        cache.path(oid).parent.mkdir(parents=True, exist_ok=True)
        cache.path(oid).write_bytes(data)
    remote = Remote.open("origin", store.url, store.options, "auto")
    for oid in blobs:
        remote.upload(cache, oid)
    assert store.frames() == {sha(text)}

    transport = remote.fs.service_client._pipeline._transport
    sent: list[str] = []
    send = transport.send

    async def counting(request: Any, **kwargs: Any) -> Any:
        sent.append(request.method)
        return await send(request, **kwargs)

    transport.send = counting
    for oid, data in blobs.items():
        cache.path(oid).unlink()
        sent.clear()
        assert remote.download(cache, oid, size=len(data)) == len(data)
        assert cache.path(oid).read_bytes() == data
        if oid == sha(text):
            assert sent == ["GET"]  # the frame, looked for first
        elif data and len(data) <= SMALL:
            assert sent == ["GET", "GET"]  # no frame (404), then the raw bytes
        elif data:
            assert "HEAD" in sent  # through `open`: the blob's properties first

    # a small object's blob that is larger than the object: refused, never read past its range
    small = next(o for o, d in blobs.items() if len(d) == 1 << 16)
    store.azure.upload_blob(
        f"store/objects/{small[:2]}/{small[2:]}", os.urandom(3 << 20), overwrite=True
    )
    cache.path(small).unlink()
    with pytest.raises(OversizedObject):
        remote.download(cache, small, size=1 << 16)
    assert not cache.path(small).exists()
