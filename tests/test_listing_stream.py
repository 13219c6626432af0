"""A listing streamed a block at a time (listingstream.py: the object walk's way to read it,
and a large listing's way into a checkout, through a verified temp file) gives what the listing
held whole gives: the same entries, or the same one-line error, however the bytes are cut."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
from pathlib import Path

from conftest import Shell
from hypothesis import given, settings
from hypothesis import strategies as st

from git_model.errors import GitModelError
from git_model.hashing import Oid
from git_model.listing import iter_listing, listing_line, listing_path, verified_listing
from git_model.listingstream import stream_listing
from git_model.manifest import Artifact

OID = "a" * 64


def whole(data: bytes, art: Artifact) -> list[object]:
    """What reading the listing whole gives: its entries, or the error's message."""
    try:
        return list(iter_listing(verified_listing(lambda _: data, art), listing_path(art.path)))
    except GitModelError as e:
        return [str(e)]


def streamed(data: bytes, art: Artifact, cuts: list[int]) -> list[object]:
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    blocks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    try:
        return list(stream_listing(iter(blocks), art))
    except GitModelError as e:
        return [str(e)]


rows = st.lists(
    st.tuples(
        st.sampled_from(["a" * 64, "b" * 64, "c" * 64, "xyz", ""]),
        st.sampled_from(["0", "12", "-1", "x"]),
        st.sampled_from(["644", "755", "777"]),
        st.sampled_from(["a", "b", "c/d", "c/e", "é", "../x", "", "a\tb"]),
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(
    rows=rows,
    cuts=st.lists(st.integers(0, 10_000), max_size=6),
    newline=st.booleans(),
    count=st.integers(-1, 1),
    lie=st.booleans(),
)
def test_a_streamed_listing_reads_as_the_whole_one(
    rows: list[tuple[str, str, str, str]], cuts: list[int], newline: bool, count: int, lie: bool
) -> None:
    data = "".join("\t".join(r) + "\n" for r in rows).encode()
    if not newline and data:
        data = data[:-1]
    oid = OID if lie else hashlib.sha256(data).hexdigest()
    art = Artifact("data", Oid(oid), 0, max(len(rows) + count, 0))
    assert streamed(data, art, cuts) == whole(data, art)


def test_a_large_listing_in_small_blocks() -> None:
    lines = [listing_line(f"f{i:05}", "b" * 64, i, i % 7 == 0) for i in range(3000)]
    data = "".join(lines).encode()
    art = Artifact("data", Oid(hashlib.sha256(data).hexdigest()), 0, len(lines))
    cuts = list(range(0, len(data), 997))
    assert streamed(data, art, cuts) == whole(data, art)
    assert len(streamed(data, art, cuts)) == 3000


SPOOL = {"GIT_MODEL_TEST_SPOOL_FILES": "1"}  # every listing of 2 files or more is spooled


def test_checkout_and_pull_from_a_spooled_listing(repo: Shell, tmp_path: Path) -> None:
    files = {f"data/p{i % 3}/f{i:02}.bin": os.urandom(300 + i) for i in range(30)}
    for rel, data in files.items():
        repo.write(rel, data)
    repo.model("remote", "add", "store", str(tmp_path / "store"), "--default")
    repo.model("add", "data")
    repo.git("commit", "-q", "-m", "v1")
    repo.model("push")

    shutil.rmtree(repo.cwd / "data")
    repo.write("data/p1/stray.bin", b"not listed")
    out = repo.model("checkout", env=SPOOL)
    assert "restored 30 file(s)" in out.stdout
    assert {str(p.relative_to(repo.cwd)) for p in (repo.cwd / "data").rglob("*.bin")} == set(files)
    assert all(repo.read(rel) == data for rel, data in files.items())

    # the work tree's listing edited: the one that hashes to the manifest's oid is in HEAD
    listing = repo.read(".gitmodel/dirs/data.tsv").decode()
    repo.write(".gitmodel/dirs/data.tsv", listing.replace("f01.bin", "../../evil.bin"))
    shutil.rmtree(repo.cwd / "data")
    shutil.rmtree(repo.cwd / ".git/model/objects")
    pulled = json.loads(repo.model("pull", "--json", env=SPOOL).stdout)
    assert (pulled["fetch"]["transferred"], pulled["fetch"]["missing"]) == (30, [])
    assert all(repo.read(rel) == data for rel, data in files.items())

    # committed past the hook: nothing matches, refused as the held listing is
    repo.git("commit", "-q", "--no-verify", "-am", "evil")
    refused = [repo.model("checkout", env=env, check=False) for env in (SPOOL, {})]
    assert refused[0].returncode == refused[1].returncode == 1
    assert refused[0].stderr == refused[1].stderr and "does not match" in refused[0].stderr
    assert not (repo.cwd.parent.parent / "evil.bin").exists()
