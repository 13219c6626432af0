"""Many small files out of the cache: the tight loop (smallfiles.py) and its split across
processes (parallel.iter_split). Each outcome must be what the general path would give:
verified bytes with the right mode, a missing or corrupt object named and nothing written,
a file that replaces another swapped in whole, and a failed worker's share done again."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Shell, stored

from git_model import parallel
from git_model.cache import Cache
from git_model.hashing import hash_bytes
from git_model.smallfiles import CORRUPT, MISSING, SLOW, WRITTEN, can_write_small, write_small

pytestmark = pytest.mark.skipif(not can_write_small("copy"), reason="no unnamed files here")


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    c = Cache(tmp_path / "model")
    c.ensure()
    return c


def test_each_outcome_of_the_loop(cache: Cache, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    good, exe, rotten, big = b"good bytes", b"#!/bin/sh\n", b"was fine", b"x" * 100
    oids = [stored(cache, d) for d in (good, exe, rotten, big)]
    obj = cache.path(oids[2])
    obj.chmod(0o644)
    obj.write_bytes(b"was finE")  # same size, other bytes
    (out / "replaced").write_bytes(b"old")
    items = [
        (oids[0], f"{out}/replaced", False, len(good)),
        (oids[1], f"{out}/run.sh", True, len(exe)),
        (oids[2], f"{out}/rotten", False, len(rotten)),
        (hash_bytes(b"nowhere"), f"{out}/missing", False, 7),
        (oids[3], f"{out}/lied-about", False, 10),  # the listing says 10 bytes
    ]
    results = write_small(os.fspath(cache.objects), items, frozenset())
    assert [r[0] for r in results] == [WRITTEN, WRITTEN, CORRUPT, MISSING, SLOW]
    assert sorted(os.listdir(out)) == ["replaced", "run.sh"]  # no temp file, nothing else
    assert (out / "replaced").read_bytes() == good and (out / "run.sh").read_bytes() == exe
    st = os.stat(out / "run.sh")
    assert st.st_mode & stat.S_IXUSR and not os.stat(out / "replaced").st_mode & stat.S_IXUSR
    assert results[1][1:] == (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def test_an_object_hashed_on_arrival_is_not_hashed_again(cache: Cache, tmp_path: Path) -> None:
    oid = stored(cache, b"fetched")
    results = write_small(os.fspath(cache.objects), [(oid, f"{tmp_path}/f", False, 7)], {oid})
    assert results[0][0] == WRITTEN and (tmp_path / "f").read_bytes() == b"fetched"


SPLIT = """
import json, os, sys
from git_model import parallel
parent = os.getpid()
if sys.argv[1] == "nofork":  # the second fork is refused (a process limit)
    real_fork, forks = os.fork, []
    def fork():
        forks.append(1)
        if len(forks) > 1:
            raise OSError(11, "Resource temporarily unavailable")
        return real_fork()
    os.fork = fork
def work(items):
    if os.getpid() != parent and sys.argv[1] == "fail":
        raise RuntimeError("a worker that dies")
    return [(i * 2, os.getpid()) for i in items]
got, starts = [], []
for start, results in parallel.iter_split(work, list(range(3000)), 3):
    starts.append(start)
    got.extend(results)
print(json.dumps({"values": [v for v, _ in got], "pids": sorted({p for _, p in got}),
                  "parent": parent, "starts": starts, "first": got[0][1]}))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="the split forks on Linux only")
@pytest.mark.parametrize("how", ["ok", "fail", "nofork"])
def test_split_across_processes_keeps_order_and_redoes_a_failed_share(how: str) -> None:
    # in a fresh interpreter: a fork needs a process with no other thread, which pytest's
    # own process may not be
    proc = subprocess.run(
        [sys.executable, "-c", SPLIT, how], capture_output=True, text=True, check=True
    )
    got = json.loads(proc.stdout)
    assert got["values"] == [i * 2 for i in range(3000)]
    assert got["starts"] == [0, 1000, 2000]  # each share as it is done, in order
    assert got["first"] == got["parent"]  # this process's own share comes first
    if how == "ok":
        assert len(got["pids"]) == 3  # three processes each did a share
    elif how == "nofork":
        assert len(got["pids"]) == 2  # the share no child could take, done here
    else:
        assert got["pids"] == [got["parent"]]  # the shares of the dead workers, done here


def test_split_runs_in_process_when_small_or_threaded() -> None:
    got = list(parallel.iter_split(lambda xs: [x + 1 for x in xs], [1, 2, 3], 4))
    assert got == [(0, [2, 3, 4])]  # too few items to fork for: one share, here


def test_checkout_of_many_small_files_through_the_split(repo: Shell) -> None:
    files = {f"data/p{i // 300}/f{i:04d}": os.urandom(i % 700) for i in range(1500)}
    files["data/run.sh"] = b"#!/bin/sh\n"
    for rel, data in files.items():
        repo.write(rel, data)
    os.chmod(repo.cwd / "data/run.sh", 0o755)
    repo.model("add", "data")
    repo.git("commit", "-qm", "data")
    listing = repo.read(".gitmodel/dirs/data.tsv").decode().splitlines()
    rotten_oid = listing[7].split("\t")[0]  # one object rots in the cache
    obj = Path(repo.git("rev-parse", "--git-common-dir").stdout.strip())
    obj = repo.cwd / obj / "model" / "objects" / rotten_oid[:2] / rotten_oid[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"\0" + obj.read_bytes()[1:] if obj.stat().st_size else b"!")
    rotten = "data/" + listing[7].split("\t")[3]
    for rel in files:
        (repo.cwd / rel).unlink()
    result = repo.model("checkout", check=False)
    assert result.returncode == 1 and "corrupt" in result.stderr and rotten in result.stderr
    for rel, data in files.items():
        if rel != rotten:
            assert repo.read(rel) == data, rel
    assert not (repo.cwd / rotten).exists()
    assert os.stat(repo.cwd / "data/run.sh").st_mode & stat.S_IXUSR
    status = json.loads(repo.model("status", "--json").stdout)
    assert [a["state"] for a in status["artifacts"]] == ["modified"]  # the one file short
