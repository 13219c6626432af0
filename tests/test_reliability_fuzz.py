"""Hostile input, fuzzed: every parser either accepts its input or refuses it with one line.

Random bytes and structured mutations of manifests, directory listings, notes and config
files; whatever comes in, the result is a valid value or a `GitModelError` — never another
exception — and end to end, a mutated manifest never makes checkout write outside the tree,
and fuzzed notes never make log, show, metrics or diff fail with more than one line.
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
from git_model.listing import parse_listing
from git_model.manifest import Artifact, Manifest, format_manifest, parse_manifest
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
        settings = Settings(Repo.discover(sh.cwd).root)
        settings.get("linkType")
        assert isinstance(settings.team, dict)  # (get parses only a file that spells the key)
    except GitModelError as e:
        assert "\n" not in str(e)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
note_records = st.fixed_dictionaries(
    {
        "format": st.sampled_from([1, 1, 1, 2, "1", None]),
        "type": st.sampled_from(["versions", "metrics", "other", 3]),
    },
    optional={
        "time": st.text(max_size=30) | st.integers() | st.just("2026-01-01T00:00:00.000000Z"),
        "models": st.dictionaries(st.sampled_from(["clf", "", "x"]), json_values, max_size=2)
        | json_values,
        "model": st.sampled_from(["clf", None, "", "nope"]) | json_values,
        "metrics": st.dictionaries(st.text(max_size=6), json_values, max_size=3) | json_values,
        "recipe": st.sampled_from([1, 2]) | json_values,
        "versions": json_values,
        "author": json_values,
    },
)
note_lines = st.lists(
    note_records.map(lambda r: json.dumps(r, allow_nan=True)) | st.text(max_size=40),
    min_size=1,
    max_size=6,
)
REPORTS = [
    ["log"],
    ["log", "--json"],
    ["show"],
    ["show", "HEAD~1", "--json"],
    ["metrics", "show"],
    ["metrics", "show", "HEAD~1", "--json"],
    ["diff", "HEAD~1", "HEAD"],
    ["registry", "--json"],
]


def run_in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`git model ARGS` through the CLI's own entry point, in this process (a subprocess per
    example would make the fuzzing slow); returns (exit code, stderr)."""
    from git_model.cli import main

    capsys.readouterr()
    code = main(args)
    return code, capsys.readouterr().err


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(notes=st.lists(note_lines, min_size=3, max_size=3))
def test_fuzzed_notes_through_log_show_and_metrics(
    versioned: Shell,
    capsys: pytest.CaptureFixture[str],
    fault: FaultRecorder,
    notes: list[list[str]],
) -> None:
    for rev, lines in zip(("HEAD~2", "HEAD~1", "HEAD"), notes):
        text = "\n".join(lines).encode()
        versioned.git("notes", "--ref=refs/notes/model", "add", "-f", "-F", "-", rev, input=text)
    for args in REPORTS:
        code, err = run_in_process(args, capsys)
        assert code in (0, 1), (args, code, err)
        assert code == 0 or len(err.strip().splitlines()) == 1, (args, err)
    fault.row(
        "note records fuzzed: wrong types, NaN, unknown formats, garbage lines",
        "`git notes add` on three commits, then log, show, metrics show, diff, registry",
        "never a traceback: exit 0, or 1 with one line",
    )


@pytest.fixture
def versioned(repo: Shell, monkeypatch: pytest.MonkeyPatch) -> Shell:
    """Three commits of a model, and the process inside the repository (for in-process runs)."""
    repo.write("params.yaml", "lr: 1\n")
    repo.model("add", "params.yaml", "--model", "clf", "--kind", "params")
    for n in range(3):
        repo.write("model.bin", f"weights {n}")
        repo.model("add", "model.bin", "--model", "clf")
        repo.git("commit", "-q", "-m", f"v{n}")
    monkeypatch.chdir(repo.cwd)
    return repo
