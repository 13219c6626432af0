"""Push, fetch, the pre-push hook and gc over more objects than one group holds (wanted.py:
past `limit` distinct objects the walk goes to a temp file and comes back a range of oid
prefixes at a time). The outcome is the one a single group gives: the same counts, the same
paths named, the same objects moved or dropped."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from conftest import Shell
from servers import Store

from git_model.hashing import Oid
from git_model.ops.wanted import GROUP_ENV, PREFIXES, Wanted

SMALL = {GROUP_ENV: "4"}  # a handful of objects a group: many groups out of a few dozen


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cached(sh: Shell) -> set[str]:
    return {p.parent.name + p.name for p in (sh.cwd / ".git/model/objects").glob("*/*")}


def stored(store: Path) -> set[str]:
    """The objects a directory remote holds, loose or in packs."""
    return Store("dir", str(store), root=store).oids()


def history(repo: Shell) -> tuple[set[str], set[str]]:
    """Two versions of a 30-file directory (10 files changed, 2 the same bytes as another file)
    and a file artifact; (the oids of version 1, of version 2)."""
    v1 = {f"data/f{i:02}.bin": os.urandom(500 + i) for i in range(30)}
    v1["data/same.bin"] = v1["data/f03.bin"]
    for rel, data in v1.items():
        repo.write(rel, data)
    repo.write("model.bin", b"weights 1")
    repo.model("add", "data", "model.bin")
    repo.git("commit", "-q", "-m", "v1")
    v2 = dict(v1, **{f"data/f{i:02}.bin": os.urandom(400 + i) for i in range(10)})
    for rel, data in v2.items():
        repo.write(rel, data)
    repo.write("model.bin", b"weights 2")
    repo.model("add", "data", "model.bin")
    repo.git("commit", "-q", "-m", "v2")
    return {sha(d) for d in [*v1.values(), b"weights 1"]}, {
        sha(d) for d in [*v2.values(), b"weights 2"]
    }


def as_json(out: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(out)
    for key in ("remote", "url"):
        result.pop(key, None)
    return result


def test_push_fetch_and_gc_in_groups_give_what_one_group_gives(repo: Shell, tmp_path: Path) -> None:
    repo.model("remote", "add", "grouped", str(tmp_path / "grouped"), "--default")
    repo.model("remote", "add", "whole", str(tmp_path / "whole"))
    v1, v2 = history(repo)
    everything = v1 | v2
    lost = sorted(v1 - v2)[0]  # in no cache and on no remote: both pushes must name it
    (repo.cwd / ".git/model/objects" / lost[:2] / lost[2:]).unlink()

    grouped = repo.model("push", "grouped", "--all", "--json", env=SMALL, check=False)
    whole = repo.model("push", "whole", "--all", "--json", check=False)
    assert grouped.returncode == whole.returncode == 1
    assert as_json(grouped.stdout) == as_json(whole.stdout)
    pushed = json.loads(grouped.stdout)
    assert (pushed["wanted"], pushed["transferred"], pushed["present"]) == (
        len(everything),
        len(everything) - 1,
        0,
    )
    assert [m["oid"] for m in pushed["missing"]] == [lost]
    assert stored(tmp_path / "grouped") == stored(tmp_path / "whole") == everything - {lost}

    again = json.loads(repo.model("push", "grouped", "--json", env=SMALL).stdout)
    assert (again["wanted"], again["present"], again["transferred"]) == (len(v2), len(v2), 0)

    # the cache emptied, then filled again from the grouped remote, group by group
    shutil.rmtree(repo.cwd / ".git/model/objects")
    fetched = repo.model("fetch", "grouped", "--all", "--json", env=SMALL, check=False)
    got = json.loads(fetched.stdout)
    assert (got["wanted"], got["transferred"], [m["oid"] for m in got["missing"]]) == (
        len(everything),
        len(everything) - 1,
        [lost],
    )
    assert cached(repo) == everything - {lost}

    # gc: v1 forgotten, its objects dropped where the default remote holds them
    repo.git("reset", "-q", "--soft", "HEAD~2")
    repo.git("commit", "-q", "-m", "v2 alone", "--no-verify")
    repo.git("reflog", "expire", "--expire=now", "--all")
    dry = [
        json.loads(repo.model("gc", "--keep-days", "0", "--dry-run", "--json", env=env).stdout)
        for env in (SMALL, {})
    ]
    assert dry[0] == dry[1]
    out = json.loads(repo.model("gc", "--keep-days", "0", "--json", env=SMALL).stdout)
    assert out == dict(dry[0], dry_run=False, tmp_removed=0)
    assert out["needed"] >= len(v2) and out["freed"] > 0 and out["kept_only_copy"] == 0
    assert v2 <= cached(repo) and len(cached(repo)) == len(everything) - 1 - out["freed"]


def test_the_pre_push_hook_uploads_in_groups(repo: Shell, tmp_path: Path) -> None:
    v1, v2 = history(repo)
    origin = tmp_path / "origin.git"
    repo.git("init", "-q", "--bare", str(origin))
    repo.git("remote", "add", "origin", str(origin))
    repo.model("remote", "add", "store", str(tmp_path / "store"), "--default")
    out = repo.git("push", "-q", "origin", "main", env=SMALL)
    assert f"uploaded {len(v1 | v2)} object(s)" in out.stderr + out.stdout
    assert stored(tmp_path / "store") == v1 | v2


def test_groups_split_the_oid_space_and_keep_the_first_file_met(tmp_path: Path) -> None:
    oids = [Oid(sha(str(i).encode())) for i in range(100)]
    tmp = tmp_path / "tmp"
    wanted = Wanted(tmp, limit=7)
    for i, oid in enumerate(oids):
        wanted.add(oid, i, f"first{i}", "top")
    for i, oid in enumerate(reversed(oids)):  # met again, by other files
        wanted.add(oid, i, f"again{i}", "top")
    groups = list(wanted.groups())
    assert len(groups) > 3
    assert [p for prefixes, _ in groups for p in prefixes] == PREFIXES
    seen: dict[str, str] = {}
    for prefixes, objects in groups:
        assert all(oid[:2] in prefixes for oid in objects)
        seen.update({oid: ref.path for oid, ref in objects.items()})
    assert seen == {oid: f"top/first{i}" for i, oid in enumerate(oids)}
    assert list(tmp.iterdir()) == []  # the temp file was never named

    few = Wanted(tmp, limit=1000, refs=False)  # within the limit: one group, no file
    for oid in oids[:3]:
        few.add(oid)
    assert [(len(p), set(o)) for p, o in few.groups()] == [(256, set(oids[:3]))]
