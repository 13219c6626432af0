"""A user's first session: init, add, status, checkout, rm, verify."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

from conftest import Shell

from git_model.newfiles import REMOVE_LATER
from git_model.restore import is_temp_name


def objects(sh: Shell) -> list[Path]:
    return [p for p in (sh.cwd / ".git/model/objects").rglob("*") if p.is_file()]


def test_init_is_idempotent_and_works_in_a_linked_worktree(sh: Shell, tmp_path: Path) -> None:
    sh.model("init")
    sh.model("init")
    assert (sh.cwd / ".gitmodel/manifest.toml").is_file()
    assert (sh.cwd / ".git/model/objects").is_dir()
    sh.git("commit", "-q", "-m", "setup")
    sh.git("worktree", "add", "-q", str(tmp_path / "wt"))
    wt = sh.at(tmp_path / "wt")
    wt.write("w.bin", b"weights")
    wt.model("add", "w.bin")
    # the cache is shared through the common git dir
    assert any(p.name for p in objects(sh))


def test_add_file_and_directory_round_trip(repo: Shell) -> None:
    weights = os.urandom(3 << 20)
    repo.write("model.bin", weights)
    repo.write("data/train/a.csv", "x,y\n1,2\n")
    repo.write("data/train/nested/deep/b.csv", "")  # empty file
    repo.write("data/train/spaced name é.txt", "unicode")
    tool = repo.write("data/train/run.sh", "#!/bin/sh\n")
    tool.chmod(0o755)
    out = repo.model("add", "model.bin", "data/train")
    assert "added model.bin" in out.stdout
    manifest = repo.read(".gitmodel/manifest.toml").decode()
    assert "files = 4" in manifest
    listing = repo.read(".gitmodel/dirs/data/train.tsv").decode().splitlines()
    assert [line.split("\t")[3] for line in listing] == [
        "a.csv",
        "nested/deep/b.csv",
        "run.sh",
        "spaced name é.txt",
    ]
    assert listing[2].split("\t")[2] == "755"
    ignored = repo.read(".gitignore").decode()
    assert "/model.bin" in ignored and "/data/train" in ignored
    staged = repo.git("diff", "--cached", "--name-only").stdout.split()
    assert ".gitmodel/manifest.toml" in staged and "model.bin" not in staged
    repo.git("commit", "-q", "-m", "v1")

    repo.write("model.bin", b"overwritten")
    (repo.cwd / "data/train/a.csv").unlink()
    repo.write("data/train/extra.csv", "new")
    st = json.loads(repo.model("status", "--json").stdout)
    states = {a["path"]: a for a in st["artifacts"]}
    assert states["model.bin"]["state"] == "modified"
    assert states["data/train"]["added"] == ["extra.csv"]
    assert states["data/train"]["removed"] == ["a.csv"]

    out = repo.model("checkout")
    assert repo.read("model.bin") == weights
    assert repo.read("data/train/a.csv") == b"x,y\n1,2\n"
    assert not (repo.cwd / "data/train/extra.csv").exists()
    assert os.stat(repo.cwd / "data/train/run.sh").st_mode & stat.S_IXUSR
    # nothing was lost: the replaced bytes are in the cache and the message says how to get them
    assert "git model cat" in out.stderr
    line = next(x for x in out.stderr.splitlines() if "model.bin" in x)
    oid = line.split("git model cat ")[1].split()[0]
    assert repo.model("cat", oid).stdout == "overwritten"
    st = json.loads(repo.model("status", "--json").stdout)
    assert {a["state"] for a in st["artifacts"]} == {"unchanged"}


def test_same_bytes_are_stored_once(repo: Shell) -> None:
    repo.write("a.bin", b"same")
    repo.write("b.bin", b"same")
    repo.model("add", "a.bin", "b.bin")
    assert len(objects(repo)) == 1
    obj = objects(repo)[0]
    assert not obj.stat().st_mode & 0o222  # read-only


def test_checkout_of_an_older_revision(repo: Shell) -> None:
    repo.write("model.bin", b"v1")
    repo.model("add", "model.bin")
    repo.git("commit", "-q", "-m", "v1")
    repo.write("model.bin", b"v2")
    repo.model("add", "model.bin")
    repo.git("commit", "-q", "-m", "v2")
    repo.model("checkout", "HEAD~1", "--", "model.bin")
    assert repo.read("model.bin") == b"v1"
    repo.model("checkout", "HEAD")
    assert repo.read("model.bin") == b"v2"
    bad = repo.model("checkout", "nope", check=False)
    assert bad.returncode == 2 and "unknown revision" in bad.stderr


def test_switching_large_files_leaves_no_old_bytes_or_temp_files(repo: Shell) -> None:
    # files over 1 MiB are swapped into place (an atomic exchange of names where the system
    # has one) and the replaced file removed, from REMOVE_LATER on by a detached process
    sizes = {"big.bin": REMOVE_LATER, "mid.bin": 2 << 20}
    for tag, fill in (("v1", b"a"), ("v2", b"b")):
        for name, size in sizes.items():
            repo.write(name, fill * size)
        repo.model("add", *sizes)
        repo.git("commit", "-q", "-m", tag)
        repo.git("tag", tag)
    for tag, fill in (("v1", b"a"), ("v2", b"b"), ("v1", b"a")):
        repo.git("checkout", "-q", tag)
        for name, size in sizes.items():
            data = repo.read(name)
            assert len(data) == size and data.count(fill) == size

    def temp_files() -> list[str]:
        return [p.name for p in repo.cwd.iterdir() if p.is_file() and is_temp_name(p.name)]

    deadline = time.monotonic() + 30
    while temp_files() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not temp_files()
    assert "unchanged" in repo.model("status").stdout


def test_re_add_of_unchanged_files_is_a_no_op(repo: Shell) -> None:
    repo.write("data/x.bin", b"1" * 10000)
    repo.model("add", "data")
    out = repo.model("add", "data")
    assert "unchanged data" in out.stdout


def test_symlinks_are_reported_clearly(repo: Shell) -> None:
    repo.write("real.bin", b"r")
    os.symlink("real.bin", repo.cwd / "link.bin")
    out = repo.model("add", "link.bin", check=False)
    assert out.returncode == 1
    assert "symlink" in out.stderr and "Traceback" not in out.stderr
    os.makedirs(repo.cwd / "d")
    os.symlink("/etc", repo.cwd / "d/etc")
    out = repo.model("add", "d", check=False)
    assert out.returncode == 1 and "symlink" in out.stderr


def test_rm_stops_tracking_and_keeps_the_file(repo: Shell) -> None:
    repo.write("model.bin", b"w")
    repo.model("add", "model.bin")
    repo.model("rm", "model.bin")
    assert repo.read("model.bin") == b"w"
    assert "model.bin" not in repo.read(".gitmodel/manifest.toml").decode()
    assert "/model.bin" not in repo.read(".gitignore").decode()


def test_verify_quarantines_corrupt_objects(repo: Shell) -> None:
    repo.write("model.bin", b"good bytes")
    repo.model("add", "model.bin")
    (obj,) = objects(repo)
    obj.chmod(0o644)
    obj.write_bytes(b"evil bytes")
    out = repo.model("verify", check=False)
    assert out.returncode == 1 and "corrupt" in out.stdout
    assert not obj.exists()
    assert (repo.cwd / ".git/model/quarantine").is_dir()


def test_corrupt_or_truncated_object_never_reaches_the_work_tree(repo: Shell) -> None:
    repo.write("model.bin", b"0123456789" * 1000)
    repo.model("add", "model.bin")
    repo.git("commit", "-q", "-m", "v1")
    (obj,) = objects(repo)
    obj.chmod(0o644)
    with open(obj, "r+b") as f:
        f.truncate(5000)
    repo.write("model.bin", b"local edit")
    out = repo.model("checkout", check=False)
    assert out.returncode == 1 and "corrupt" in out.stderr
    assert repo.read("model.bin") == b"local edit"


def test_hostile_manifest_paths_are_refused(repo: Shell, tmp_path: Path) -> None:
    repo.write("model.bin", b"w")
    repo.model("add", "model.bin")
    repo.git("commit", "-q", "-m", "v1")
    manifest = repo.read(".gitmodel/manifest.toml").decode()
    hook = repo.read(".git/hooks/pre-commit")  # git-model's own shim: must stay as it is
    for bad in ("../escape.bin", "/tmp/abs.bin", ".git/hooks/pre-commit", "a/../../x"):
        repo.write(".gitmodel/manifest.toml", manifest.replace('"model.bin"', json.dumps(bad)))
        out = repo.model("checkout", check=False)
        assert out.returncode == 1, bad
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "escape.bin").exists()
    assert not Path("/tmp/abs.bin").exists()
    assert repo.read(".git/hooks/pre-commit") == hook


def test_not_a_repository_and_not_initialised(tmp_path: Path) -> None:
    sh = Shell(tmp_path)
    out = sh.model("status", check=False)
    assert out.returncode == 1 and "git init" in out.stderr
    sh.git("init", "-q")
    out = sh.model("status", check=False)
    assert out.returncode == 1 and "git model init" in out.stderr


def test_the_files_git_model_writes_in_the_work_tree_take_the_umask(repo: Shell) -> None:
    """The manifest and the listings get 0o666 less the umask, as the files git checks
    out do (a temp file's 0o600 kept them from a group sharing the work tree)."""
    old = os.umask(0o027)
    try:
        repo.write("data/a.csv", "x\n")
        repo.write("model.bin", os.urandom(1000))
        repo.model("add", "data", "model.bin")
        repo.git("commit", "-q", "-m", "v1")
        repo.write("data/b.csv", "y\n")
        repo.git("commit", "-q", "--allow-empty", "-m", "v2")  # (the hook rewrites them)
    finally:
        os.umask(old)
    for rel in (".gitmodel/manifest.toml", ".gitmodel/dirs/data.tsv"):
        assert stat.S_IMODE(os.stat(repo.cwd / rel).st_mode) == 0o640, rel
    assert "b.csv" in repo.read(".gitmodel/dirs/data.tsv").decode()
