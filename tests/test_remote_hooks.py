"""`git push` uploads the bytes first; checkout fetches what it lacks; notes travel and merge."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import Shell
from servers import bare_origin, clone

from git_model.git import Repo
from git_model.notes import append_records, read_records


def setup_alice(tmp_path: Path) -> tuple[Path, Shell, Path]:
    origin = bare_origin(tmp_path)
    objects = tmp_path / "store"
    alice = clone(origin, tmp_path / "alice")
    alice.model("remote", "add", "origin", str(objects), "--default")
    alice.write("README.md", "# demo\n")
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "set up")
    return origin, alice, objects


def stored(objects: Path) -> set[str]:
    return {p.parent.name + p.name for p in (objects / "objects").glob("*/*")}


def test_git_push_uploads_objects_before_the_refs_move(tmp_path: Path) -> None:
    origin, alice, objects = setup_alice(tmp_path)
    for n in (1, 2):  # two commits in one push: both versions' bytes go up
        alice.write("model.bin", os.urandom(4096))
        alice.model("add", "model.bin")
        alice.git("commit", "-q", "-m", f"v{n}")
    alice.git("push", "-q", "origin", "main")
    assert len(stored(objects)) == 2

    # a commit whose bytes are nowhere (not in the cache, not on the store) is never published
    alice.write("lost.bin", os.urandom(4096))
    alice.model("add", "lost.bin")
    alice.git("commit", "-q", "-m", "lost")
    manifest = alice.read(".gitmodel/manifest.toml").decode()
    oid = manifest.split('[artifacts."lost.bin"]')[1].split('"')[1]
    cached = alice.cwd / ".git/model/objects" / oid[:2] / oid[2:]
    cached.chmod(0o644)
    cached.unlink()
    out = alice.git("push", "origin", "main", check=False)
    assert out.returncode != 0
    assert "lost.bin" in out.stderr and oid[:12] in out.stderr
    remote_main = alice.git("ls-remote", str(origin), "refs/heads/main").stdout.split()[0]
    assert remote_main == alice.git("rev-parse", "HEAD~1").stdout.strip()


def test_checkout_of_an_old_version_fetches_its_objects(tmp_path: Path) -> None:
    origin, alice, _ = setup_alice(tmp_path)
    v1 = os.urandom(2048)
    alice.write("model.bin", v1)
    alice.model("add", "model.bin")
    alice.git("commit", "-q", "-m", "v1")
    alice.git("tag", "v1")
    alice.write("model.bin", os.urandom(2048))
    alice.model("add", "model.bin")
    alice.git("commit", "-q", "-m", "v2")
    alice.git("push", "-q", "--tags", "origin", "main")

    bob = clone(origin, tmp_path / "bob")  # fetches HEAD's bytes only
    bob.git("checkout", "-q", "v1")
    out = bob.model("checkout", "--json")
    assert json.loads(out.stdout)["missing"] == []
    assert bob.read("model.bin") == v1


def metrics(sh: Shell, commit: str, who: str, acc: float) -> None:
    record = {"format": 1, "type": "metrics", "time": f"2026-01-0{len(who)}", "by": who}
    append_records(Repo.discover(sh.cwd), commit, [{**record, "metrics": {"acc": acc}}])


def accuracies(sh: Shell, commit: str) -> list[float]:
    records = read_records(Repo.discover(sh.cwd), commit)
    return sorted(r["metrics"]["acc"] for r in records if r["type"] == "metrics")


def commit_and_push(sh: Shell, name: str, ref: str = "main") -> None:
    sh.write(f"{name}.txt", name)
    sh.git("add", "-A")
    sh.git("commit", "-q", "-m", name)
    sh.git("push", "-q", "origin", f"HEAD:{ref}")


def test_metrics_recorded_in_two_clones_on_one_commit_both_survive(tmp_path: Path) -> None:
    origin, alice, _ = setup_alice(tmp_path)
    alice.git("push", "-q", "origin", "main")
    bob = clone(origin, tmp_path / "bob")
    fetch_specs = bob.git("config", "--get-all", "remote.origin.fetch").stdout.split()
    assert "+refs/notes/model*:refs/notes/remotes/origin/model*" in fetch_specs
    assert not any(s.endswith(":refs/notes/model") for s in fetch_specs)  # never overwritten
    bob.git("fetch", "-q")  # a remote with no notes yet is fine
    base = alice.git("rev-parse", "HEAD").stdout.strip()

    # alice's push carries her notes; bob's `git pull` merges them (post-merge hook)
    metrics(alice, base, "alice", 0.91)
    commit_and_push(alice, "a1")
    bob.git("pull", "-q")
    assert accuracies(bob, base) == [0.91]

    # both record on the same commit; alice pushes first, so bob's push finds the remote's
    # notes moved on: they are fetched and merged, then pushed (cat_sort_uniq keeps all)
    metrics(bob, base, "bob", 0.87)
    metrics(alice, base, "alice again", 0.95)
    commit_and_push(alice, "a2")
    commit_and_push(bob, "b1", "bob-exp")
    assert accuracies(bob, base) == [0.87, 0.91, 0.95]
    alice.model("fetch")
    assert accuracies(alice, base) == [0.87, 0.91, 0.95]
    carol = clone(origin, tmp_path / "carol")  # a fresh clone gets them with its init
    assert accuracies(carol, base) == [0.87, 0.91, 0.95]
