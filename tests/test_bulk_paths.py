"""The bulk paths the benchmarks tune: many files added in one flush, a directory restored in
parallel, and the stat cache's racy-timestamp rule. Each behaves as the one-file path does."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import cast

from conftest import Shell

from git_model.statecache import RACY_NS, StateCache

INJECT = str(Path(__file__).parent / "inject")


def cache_objects(sh: Shell) -> list[Path]:
    root = sh.cwd / ".git/model/objects"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def make_files(sh: Shell, top: str, count: int) -> dict[str, bytes]:
    files = {f"{top}/part{i // 50}/f{i:04d}.bin": os.urandom(64 + i) for i in range(count)}
    for rel, data in files.items():
        sh.write(rel, data)
    return files


def test_many_small_files_are_stored_soundly_in_one_flush(repo: Shell) -> None:
    files = make_files(repo, "data", 300)  # several batches, several threads
    repo.write("data/same-a.bin", b"dup")
    repo.write("data/same-b.bin", b"dup")  # same bytes twice in one batch: stored once
    repo.model("add", "data")
    objects = cache_objects(repo)
    assert len(objects) == len(files) + 1
    for obj in objects:
        assert hashlib.sha256(obj.read_bytes()).hexdigest() == obj.parent.name + obj.name
        assert not obj.stat().st_mode & 0o222
    assert list((repo.cwd / ".git/model/tmp").iterdir()) == []
    assert "unchanged data" in repo.model("add", "data").stdout


def test_a_failed_batch_leaves_no_object_and_no_temp_file(repo: Shell) -> None:
    make_files(repo, "data", 120)
    before = repo.read(".gitmodel/manifest.toml")
    env = {
        "GIT_MODEL_INJECT": "replace:/model/objects/:EACCES",
        "PYTHONPATH": os.pathsep.join(filter(None, [INJECT, os.environ.get("PYTHONPATH")])),
    }
    out = repo.model("add", "data", check=False, env=env)
    assert out.returncode == 1 and "permission denied" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert cache_objects(repo) == []
    assert list((repo.cwd / ".git/model/tmp").iterdir()) == []
    assert repo.read(".gitmodel/manifest.toml") == before
    repo.model("add", "data")
    assert len(cache_objects(repo)) == 120


def test_directory_checkout_repairs_every_kind_of_drift(repo: Shell) -> None:
    files = make_files(repo, "data", 120)
    tool = repo.write("data/run.sh", b"#!/bin/sh\n")
    tool.chmod(0o755)
    repo.model("add", "data")
    repo.git("commit", "-q", "-m", "v1")

    (repo.cwd / "data/part0/f0000.bin").unlink()  # deleted
    repo.write("data/part0/f0001.bin", b"local edit")  # modified: kept in the cache
    repo.write("data/extra.bin", b"an extra file")  # not in the listing: kept, removed
    (repo.cwd / "data/part1/f0050.bin").unlink()
    repo.write("data/part1/f0050.bin/inner.bin", b"a folder where a file was")
    os.chmod(repo.cwd / "data/run.sh", 0o644)  # mode only
    for p in (repo.cwd / "data/part2").iterdir():  # a whole folder gone
        p.unlink()
    (repo.cwd / "data/part2").rmdir()

    out = repo.model("checkout", "--json")
    report = json.loads(out.stdout)
    for rel, data in files.items():
        assert repo.read(rel) == data, rel
    assert os.stat(repo.cwd / "data/run.sh").st_mode & stat.S_IXUSR
    assert not (repo.cwd / "data/extra.bin").exists()
    assert report["removed"] == ["data/extra.bin", "data/part1/f0050.bin/inner.bin"]
    assert report["written"] == sorted(report["written"])
    assert len(report["written"]) == 1 + 1 + 1 + 20  # deleted, edited, folder, part2
    saved = {s["path"]: s["oid"] for s in report["saved"]}
    assert set(saved) == {
        "data/extra.bin",
        "data/part0/f0001.bin",
        "data/part1/f0050.bin/inner.bin",
    }
    assert repo.model("cat", saved["data/part0/f0001.bin"]).stdout == "local edit"
    states = json.loads(repo.model("status", "--json").stdout)["artifacts"]
    assert [s["state"] for s in states] == ["unchanged"]
    again = json.loads(repo.model("checkout", "--json").stdout)
    assert again["written"] == [] and again["unchanged"] == len(files) + 1


def test_directory_checkout_reports_missing_and_corrupt_objects(repo: Shell) -> None:
    files = make_files(repo, "data", 60)
    repo.model("add", "data")
    repo.git("commit", "-q", "-m", "v1")
    missing_rel, corrupt_rel = "data/part0/f0003.bin", "data/part0/f0004.bin"
    for rel in (missing_rel, corrupt_rel):
        (repo.cwd / rel).unlink()
    digest = hashlib.sha256(files[missing_rel]).hexdigest()
    (repo.cwd / ".git/model/objects" / digest[:2] / digest[2:]).unlink()
    digest = hashlib.sha256(files[corrupt_rel]).hexdigest()
    obj = repo.cwd / ".git/model/objects" / digest[:2] / digest[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"not the bytes")
    (repo.cwd / "data/part0/f0005.bin").unlink()  # fine: restored

    out = repo.model("checkout", "--json", check=False)
    assert out.returncode == 1
    report = json.loads(out.stdout)
    assert [m["path"] for m in report["missing"]] == [missing_rel]
    assert [c["path"] for c in report["corrupt"]] == [corrupt_rel]
    assert report["written"] == ["data/part0/f0005.bin"]
    assert not (repo.cwd / missing_rel).exists() and not (repo.cwd / corrupt_rel).exists()


def test_a_file_rewritten_right_after_checkout_is_seen_as_modified(repo: Shell) -> None:
    repo.write("model.bin", b"A" * 5000)
    repo.model("add", "model.bin")
    repo.git("commit", "-q", "-m", "v1")
    (repo.cwd / "model.bin").unlink()
    repo.model("checkout")
    repo.write("model.bin", b"B" * 5000)  # same size, within the same second
    states = json.loads(repo.model("status", "--json").stdout)["artifacts"]
    assert states[0]["state"] == "modified"


def _stat(mtime_ns: int, size: int = 10) -> os.stat_result:
    fields = SimpleNamespace(st_size=size, st_mtime_ns=mtime_ns, st_ino=7, st_ctime_ns=5)
    return cast(os.stat_result, fields)


def test_racy_rule_for_fine_and_whole_second_timestamps() -> None:
    from git_model.hashing import hash_bytes
    from git_model.statecache import stat_key

    oid = hash_bytes(b"x")

    def trusted(mtime_ns: int, hashed_ns: int) -> bool:
        st = _stat(mtime_ns)
        return StateCache.trusted((stat_key(st), oid, hashed_ns), st) == oid

    fine = 1_700_000_000_123_456_789
    assert not trusted(fine, fine + RACY_NS // 2)  # hashed within a tick or so: racy
    assert trusted(fine, fine + RACY_NS + 1)
    whole = 1_700_000_000_000_000_000  # a file system with whole-second timestamps
    assert not trusted(whole, whole + 999_000_000)  # same second
    assert trusted(whole, whole + 1_000_000_000)
    st = _stat(fine)
    other = _stat(fine, size=11)
    assert StateCache.trusted((stat_key(other), oid, fine + 10**9), st) is None


def test_the_first_commit_after_a_checkout_hashes_what_it_wrote_without_copying(
    repo: Shell,
) -> None:
    """The files a checkout just wrote have no trusted stat record yet; the commit hook reads
    them and finds the bytes the listing gives, already cached: it needs no room in the cache
    (here: none can be made). A file changed since is stored, as ever."""
    make_files(repo, "data", 200)
    big = repo.write("data/big.bin", os.urandom(3 << 20))  # larger than a small file
    repo.model("add", "data")
    repo.git("commit", "-q", "-m", "v1")
    for path in sorted((repo.cwd / "data").rglob("*.bin")):
        path.unlink()
    repo.model("checkout")
    no_room = {
        "GIT_MODEL_INJECT": "open:/model/tmp/:EACCES",
        "PYTHONPATH": os.pathsep.join(filter(None, [INJECT, os.environ.get("PYTHONPATH")])),
    }
    repo.git("commit", "-q", "--allow-empty", "-m", "after the checkout", env=no_room)
    big.write_bytes(os.urandom(3 << 20))
    repo.write("data/part0/f0001.bin", b"changed since")
    out = repo.git("commit", "-q", "-am", "changed", check=False, env=no_room)
    assert out.returncode != 0 and "permission denied" in out.stderr
    repo.git("commit", "-q", "--allow-empty", "-m", "changed")  # with room: stored
    assert repo.model("status").stdout.count("unchanged") == 1
