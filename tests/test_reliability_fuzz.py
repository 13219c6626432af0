"""Hostile input, fuzzed: every parser either accepts its input or refuses it with one line.

Random bytes and structured mutations of manifests, directory listings, notes and config
files; whatever comes in, the result is a valid value or a `GitModelError` — never another
exception — and end to end, a mutated manifest never makes checkout write outside the tree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Shell
from faults import FaultRecorder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from git_model.errors import GitModelError
from git_model.hashing import Oid
from git_model.manifest import (
    Artifact,
    Manifest,
    format_manifest,
    parse_listing,
    parse_manifest,
)
from git_model.notes import parse_note
from git_model.paths import check_relpath

OID = "a" * 64
VALID = format_manifest(
    Manifest(
        {"model.bin": Artifact("model.bin", Oid(OID), 3), "data": Artifact("data", Oid(OID), 9, 2)}
    )
)

path_parts = st.sampled_from(
    ["..", ".", "", ".git", ".GIT", "a", "b c", "é", "/", "\\", "\0", "\n", "x/../y"]
)
hostile_paths = st.lists(path_parts, min_size=1, max_size=5).map("/".join) | st.text(max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_manifest_random_bytes(data: bytes) -> None:
    try:
        parse_manifest(data)
    except GitModelError as e:
        assert "\n" not in str(e)


@settings(max_examples=300, deadline=None)
@given(
    path=hostile_paths,
    oid=st.text(max_size=70) | st.just(OID),
    size=st.integers() | st.text(max_size=3),
    files=st.none() | st.integers(-2, 5) | st.text(max_size=2),
)
def test_manifest_structured_mutations(path: str, oid: str, size: object, files: object) -> None:
    entry = f"[artifacts.{json.dumps(path)}]\noid = {json.dumps(oid)}\nsize = {json.dumps(size)}\n"
    if files is not None:
        entry += f"files = {json.dumps(files)}\n"
    try:
        manifest = parse_manifest(b"format = 1\n" + entry.encode())
    except GitModelError as e:
        assert "\n" not in str(e)
        return
    for art in manifest.artifacts.values():  # accepted: then everything in it is safe
        check_relpath(art.path)
        assert Oid(art.oid) and isinstance(art.size, int) and art.size >= 0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(max_size=70) | st.just(OID),
            st.text(max_size=5),
            st.sampled_from(["644", "755", "777", ""]),
            hostile_paths,
        ),
        max_size=5,
    )
)
def test_listing_mutations(rows: list[tuple[str, str, str, str]]) -> None:
    data = "".join("\t".join(r) + "\n" for r in rows).encode("utf-8", "surrogatepass")
    try:
        entries = parse_listing(data, "listing")
    except GitModelError as e:
        assert "\n" not in str(e)
        return
    for e in entries:
        check_relpath(e.relpath)


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=300)
    | st.lists(
        st.dictionaries(
            st.text(max_size=8), st.integers() | st.text(max_size=8) | st.none(), max_size=4
        )
    ).map(lambda ds: "\n".join(json.dumps(d) for d in ds))
)
def test_notes_never_raise(text: str) -> None:
    for record in parse_note(text):
        assert record["format"] == 1 and isinstance(record["type"], str)


@pytest.mark.parametrize(
    "bad", ["../escape.bin", "/abs.bin", ".git/config", "sub/../../x", "ok/.git/x"]
)
def test_mutated_manifest_never_writes_outside(
    repo: Shell, tmp_path: Path, bad: str, fault: FaultRecorder
) -> None:
    repo.write("model.bin", b"payload")
    repo.model("add", "model.bin")
    repo.git("commit", "-q", "-m", "v1")
    text = repo.read(".gitmodel/manifest.toml").decode()
    repo.write(".gitmodel/manifest.toml", text.replace('"model.bin"', json.dumps(bad)))
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if ".git/model" not in str(p)}
    out = repo.model("checkout", check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if ".git/model" not in str(p)}
    assert after == before
    fault.row(
        f"manifest names `{bad}`",
        "edited manifest, then `git model checkout`",
        out.stderr,
        "nothing; nothing written",
    )


def test_listing_that_lies_about_its_oid_is_refused(repo: Shell, fault: FaultRecorder) -> None:
    repo.write("data/a.bin", b"a")
    repo.model("add", "data")
    repo.git("commit", "-q", "-m", "v1")
    listing = repo.read(".gitmodel/dirs/data.tsv").decode()
    repo.write(".gitmodel/dirs/data.tsv", listing.replace("a.bin", "../../evil.bin"))
    # only in the work tree: the listing that hashes to the manifest's oid is still in HEAD
    assert "restored 0 file(s)" in repo.model("checkout").stdout
    assert repo.read("data/a.bin") == b"a"
    # committed (past the hook): no listing anywhere matches the manifest, so it is refused
    repo.git("commit", "-q", "--no-verify", "-am", "evil")
    out = repo.model("checkout", check=False)
    assert out.returncode == 1 and "does not match" in out.stderr
    assert not (repo.cwd.parent.parent / "evil.bin").exists()
    fault.row(
        "directory listing edited to name `../../evil.bin`",
        "edited listing committed with --no-verify, then checkout",
        out.stderr,
        "nothing; nothing written",
    )


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=200))
def test_config_garbage_is_one_line(sh: Shell, data: bytes) -> None:
    from git_model.config import Settings
    from git_model.git import Repo

    sh.write(".gitmodel/config.toml", data)
    try:
        Settings(Repo.discover(sh.cwd)).get("linkType")
    except GitModelError as e:
        assert "\n" not in str(e)
