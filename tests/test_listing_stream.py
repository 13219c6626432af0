"""A listing streamed a block at a time (listingstream.py, the object walk's way to read it)
gives what the listing held whole gives: the same entries, or the same one-line error, however
the bytes are cut into blocks."""

from __future__ import annotations

import hashlib
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from git_model.errors import GitModelError
from git_model.hashing import Oid
from git_model.listingstream import stream_listing
from git_model.manifest import Artifact, iter_listing, listing_line, listing_path, verified_listing

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
