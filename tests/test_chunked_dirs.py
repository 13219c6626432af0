"""A tracked directory is worked through a chunk of files at a time (so memory stays flat at
100,000 files). Chunks of 7 files here, against the default in the `git model` subprocesses:
the listing, the status and the restored work tree must come out the same either way."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import Shell

from git_model import parallel
from git_model.ops import status as status_op
from git_model.ops.checkout import checkout
from git_model.ops.context import Context


def make_tree(sh: Shell) -> dict[str, bytes]:
    """Files in nested folders, with names that sort differently as paths than as names
    ('a.txt' < 'a/…' < 'a0'), and duplicated bytes."""
    files = {f"data/part{i // 6}/f{i:03d}.bin": os.urandom(40 + i) for i in range(40)}
    files |= {
        "data/a.txt": b"dot",
        "data/a/x.bin": b"in a folder",
        "data/a/y/z.bin": b"deeper",
        "data/a0": b"after the folder",
        "data/b-same": b"dup",
        "data/b/same": b"dup",
    }
    for rel, data in files.items():
        sh.write(rel, data)
    return files


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "CHUNK", 7)


def test_scan_in_chunks_gives_the_listing_of_one_pass(repo: Shell, small_chunks: None) -> None:
    make_tree(repo)
    repo.model("add", "data")
    written = repo.read(".gitmodel/dirs/data.tsv")
    lines = written.decode().splitlines()
    paths = [line.split("\t")[3] for line in lines]
    assert paths == sorted(paths) and len(paths) == 46
    with Context.open(repo.cwd) as ctx:
        scanned = ctx.workspace().scan("data", store=False)
        assert scanned is not None and scanned.listing == written
        assert [s.state for s in status_op.status(ctx)] == ["unchanged"]

    repo.write("data/a/x.bin", b"changed")
    (repo.cwd / "data/part0/f001.bin").unlink()
    repo.write("data/a.new", b"added")
    with Context.open(repo.cwd) as ctx:
        (st,) = status_op.status(ctx)
    assert (st.state, st.added, st.removed, st.modified) == (
        "modified",
        ["a.new"],
        ["part0/f001.bin"],
        ["a/x.bin"],
    )


def test_restore_in_chunks_puts_back_the_committed_tree(repo: Shell, small_chunks: None) -> None:
    files = make_tree(repo)
    repo.model("add", "data")
    repo.git("commit", "-q", "-m", "data")
    committed = tree(repo.cwd / "data")
    assert len(committed) == len(files)

    # deleted, modified and extra files, a folder where a file was
    for rel in ("data/part0/f000.bin", "data/part3/f020.bin", "data/a0"):
        (repo.cwd / rel).unlink()
    repo.write("data/part1/f007.bin", b"edited")
    repo.write("data/part1/extra.bin", b"not tracked")
    repo.write("data/zz/extra.bin", b"extra folder")
    (repo.cwd / "data/a/y/z.bin").unlink()
    (repo.cwd / "data/a.txt").unlink()
    for i in range(12):  # more than a chunk: the restore takes the folder away mid-walk
        repo.write(f"data/a.txt/inside{i:02d}", f"a folder where a file was {i}")
    with Context.open(repo.cwd) as ctx:
        report = checkout(ctx)
    assert tree(repo.cwd / "data") == committed
    assert report.ok
    assert report.written == sorted(report.written)
    assert set(report.written) == {
        "data/part0/f000.bin",
        "data/part3/f020.bin",
        "data/a0",
        "data/part1/f007.bin",
        "data/a/y/z.bin",
        "data/a.txt",
    }
    assert report.removed[-2:] == ["data/part1/extra.bin", "data/zz/extra.bin"]
    saved = {rel for rel, _ in report.saved}  # every replaced byte kept in the cache
    assert {"data/part1/f007.bin", "data/part1/extra.bin", "data/zz/extra.bin"} <= saved
    assert {f"data/a.txt/inside{i:02d}" for i in range(12)} <= saved
    assert not (repo.cwd / "data/zz").exists()

    with Context.open(repo.cwd) as ctx:
        again = checkout(ctx)
    assert again.written == [] and again.removed == [] and again.unchanged == len(files)
    out = repo.model("status").stdout
    assert "unchanged" in out and "data" in out
