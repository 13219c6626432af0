"""`git model gc`: frees what nothing needs, and never the only copy of anything."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import Shell


def cached(sh: Shell) -> set[str]:
    return {p.parent.name + p.name for p in (sh.cwd / ".git/model/objects").glob("*/*")}


def oid_of(sh: Shell, path: str) -> str:
    manifest = sh.read(".gitmodel/manifest.toml").decode()
    return manifest.split(f'[artifacts."{path}"]')[1].split('"')[1]


def gc(sh: Shell, *args: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(sh.model("gc", "--json", *args).stdout)
    return result


def commit_version(sh: Shell, path: str, message: str) -> str:
    sh.write(path, os.urandom(2048))
    sh.model("add", path)
    sh.git("commit", "-q", "-m", message)
    return oid_of(sh, path)


def test_gc_keeps_what_refs_reflog_stash_and_index_need(repo: Shell, tmp_path: Path) -> None:
    kept = commit_version(repo, "model.bin", "v1")
    repo.git("checkout", "-q", "-b", "experiment")
    abandoned = commit_version(repo, "model.bin", "experiment")
    repo.git("checkout", "-q", "main")
    repo.model("checkout")
    repo.git("branch", "-q", "-D", "experiment")

    # the reflog still remembers the experiment: nothing goes
    assert gc(repo, "--force", "--keep-days", "0")["freed"] == 0

    repo.write("data.bin", os.urandom(1024))
    repo.model("add", "data.bin")  # staged, not committed: the index needs it
    staged = oid_of(repo, "data.bin")
    repo.write("stashed.bin", os.urandom(1024))
    repo.model("add", "stashed.bin")
    stashed = oid_of(repo, "stashed.bin")
    repo.git("stash", "-q")
    repo.model("add", "data.bin")

    repo.git("reflog", "expire", "--expire=now", "--all")
    dry = gc(repo, "--force", "--keep-days", "0", "--dry-run")
    assert (dry["freed"], dry["dry_run"]) == (1, True)
    assert abandoned in cached(repo)
    out = repo.model("gc", "--force", "--keep-days", "0")
    assert "freed 1 object(s), 2.0 KiB" in out.stdout
    assert cached(repo) == {kept, staged, stashed}
    repo.git("stash", "pop", "-q")
    assert (repo.cwd / "stashed.bin").exists()


def test_gc_never_drops_the_only_copy_unless_forced(repo: Shell, tmp_path: Path) -> None:
    repo.model("remote", "add", "store", str(tmp_path / "store"), "--default")
    repo.git("commit", "-q", "-m", "remote")
    old = commit_version(repo, "model.bin", "v1")
    pushed = commit_version(repo, "model.bin", "v2")
    v2 = repo.git("rev-parse", "HEAD").stdout.strip()
    repo.model("push", "--all")
    repo.git("checkout", "-q", "-b", "experiment")
    unique = commit_version(repo, "model.bin", "never pushed")
    repo.git("checkout", "-q", "main")
    repo.git("branch", "-q", "-D", "experiment")
    repo.git("reset", "-q", "--hard", "HEAD~1")  # back to v1
    repo.model("checkout")
    repo.git("reflog", "expire", "--expire=now", "--all")

    out = repo.model("gc", "--keep-days", "0")
    assert "freed 1 object(s)" in out.stdout  # v2: the store has it
    assert (
        "kept 1 unneeded object(s), 2.0 KiB: not on remote store (--force drops them)" in out.stdout
    )
    assert cached(repo) == {old, unique}
    assert gc(repo, "--force")["kept_recent"] == 1  # recent objects stay whatever --force says
    assert gc(repo, "--force", "--keep-days", "0")["freed"] == 1
    assert cached(repo) == {old}

    # what gc dropped because the store had it comes back from there
    repo.model("fetch", "--rev", v2)
    assert pushed in cached(repo)
