"""Stamps: `git model status` and the commit hook answer "nothing changed" from stat data alone,
and never miss a change: every combination of size, timestamp and inode change, a write dated
back with utime(), an edit within the same timestamp tick, an object gone from the cache."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import Shell

HEAVY = {"click", "tomli_w", "fsspec", "tqdm", "dulwich", "yaml", "numpy", "sqlite3"}
# standard modules the no-change paths leave out too (~15 ms of imports between them)
STDLIB_HEAVY = {"re", "subprocess", "typing", "pathlib", "json", "enum"}
COMBOS = list(itertools.product((False, True), repeat=3))  # size, mtime kept, new inode


def _name(combo: tuple[bool, bool, bool]) -> str:
    size, kept, inode = combo
    return f"{'size' if size else 'same'}-{'kept' if kept else 'moved'}-{'ino' if inode else 'inplace'}"


def _next_second() -> None:
    """Let the clock pass into the next second, so that stamps taken from now on trust what
    was written before (the racy-timestamp rule)."""
    time.sleep(1.05 - time.time() % 1)


def _change(path: Path, combo: tuple[bool, bool, bool]) -> None:
    size, kept, inode = combo
    st = os.stat(path)
    old = path.read_bytes()
    new = bytes(b ^ 0xFF for b in old) + (b"+" if size else b"")
    if inode:
        tmp = path.with_name(path.name + ".new")
        tmp.write_bytes(new)
        os.replace(tmp, path)
    else:
        with open(path, "r+b") as f:
            f.write(new)
    if kept:  # the old timestamps put back, as `touch -r` or a careless tool would
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _states(repo: Shell) -> dict[str, str]:
    doc = json.loads(repo.model("status", "--json").stdout)
    return {a["path"]: a["state"] for a in doc["artifacts"]}


def _modules_after_status(repo: Shell, *args: str) -> tuple[str, set[str]]:
    """Run `git model status` in a fresh interpreter; its output and the modules it loaded."""
    code = (
        "import sys; from git_model.cli import main; code = main(sys.argv[1:]); "
        "sys.stdout.flush(); print('\\n'.join(sys.modules), file=sys.stderr); sys.exit(code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "status", *args],
        cwd=repo.cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout, {name.split(".")[0] for name in proc.stderr.split()}


def test_every_kind_of_change_is_seen_by_status_and_the_commit_hook(repo: Shell) -> None:
    for combo in COMBOS:
        repo.write(f"f-{_name(combo)}.bin", os.urandom(3000))
        for i in range(3):
            repo.write(f"d-{_name(combo)}/sub/{i}.bin", os.urandom(500))
    repo.model("add", *(f"f-{_name(c)}.bin" for c in COMBOS), *(f"d-{_name(c)}" for c in COMBOS))
    repo.git("commit", "-q", "-m", "v1")
    _next_second()
    repo.git("commit", "-q", "--allow-empty", "-m", "sealed")  # the hook stamps and seals
    assert set(_states(repo).values()) == {"unchanged"}  # the full status stamps its answer
    out, modules = _modules_after_status(repo)
    assert out.count("unchanged") == 2 * len(COMBOS) and not modules & HEAVY  # the fast one
    assert not modules & STDLIB_HEAVY
    hook = repo.git(
        "commit", "-q", "--allow-empty", "-m", "sealed", env={"PYTHONPROFILEIMPORTTIME": "1"}
    )
    names = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in hook.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "git_model" in names and not names & (HEAVY | STDLIB_HEAVY)  # the seal's path

    for combo in COMBOS:
        _change(repo.cwd / f"f-{_name(combo)}.bin", combo)
        _change(repo.cwd / f"d-{_name(combo)}/sub/1.bin", combo)
    assert set(_states(repo).values()) == {"modified"}
    repo.git("commit", "-q", "--allow-empty", "-m", "v2")
    manifest = repo.git("show", "HEAD:.gitmodel/manifest.toml").stdout
    before = repo.git("show", "HEAD~2:.gitmodel/manifest.toml").stdout
    oids = [line for line in manifest.splitlines() if line.startswith("oid")]
    assert len(oids) == 2 * len(COMBOS) and not set(oids) & set(before.splitlines())
    assert set(_states(repo).values()) == {"unchanged"}


def test_an_edit_within_the_same_tick_as_the_stamp_is_seen(repo: Shell) -> None:
    """Stamped while the file's timestamps are still the current second, then rewritten in
    place with the same size and its old mtime: every stat field may be as stamped, and the
    change must be seen all the same."""
    path = repo.write("model.bin", b"A" * 4096)
    repo.model("add", "model.bin")
    repo.git("commit", "-q", "-m", "v1")
    for _ in range(3):  # (three times: the stamp and the edit fall in one tick at least once)
        st = os.stat(path)
        assert _states(repo) == {"model.bin": "unchanged"}
        old = path.read_bytes()
        path.write_bytes(bytes([old[0] ^ 1]) + old[1:])
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert _states(repo) == {"model.bin": "modified"}
        out = repo.git("commit", "-q", "--allow-empty", "-m", "edit")
        assert "recorded model.bin" in out.stderr


def test_every_change_right_after_a_checkout_wrote_the_file_is_seen(repo: Shell) -> None:
    """A checkout dates each file back before naming it and trusts its stat record at once
    (statecache.pinned), so the next checkout does not hash it again: every kind of change
    made the moment after, same size and old timestamps included, is still seen."""
    size = 3 << 20  # (over 1 MiB: each file written and recorded on its own)
    for combo in COMBOS:
        repo.write(f"f-{_name(combo)}.bin", os.urandom(size))
    repo.model("add", *(f"f-{_name(c)}.bin" for c in COMBOS))
    repo.git("commit", "-q", "-m", "v1")
    repo.git("tag", "v1")
    for combo in COMBOS:
        repo.write(f"f-{_name(combo)}.bin", os.urandom(size))
    repo.git("commit", "-q", "--allow-empty", "-m", "v2")
    repo.git("checkout", "-q", "v1")
    for combo in COMBOS:  # at once: within the racy window of what the checkout wrote
        path = repo.cwd / f"f-{_name(combo)}.bin"
        st = os.stat(path)
        assert st.st_mtime_ns < st.st_ctime_ns  # dated back before it was named
        _change(path, combo)
    assert set(_states(repo).values()) == {"modified"}
    repo.git("commit", "-q", "--allow-empty", "-m", "v3")  # the hook records every change
    before = repo.git("show", "v1:.gitmodel/manifest.toml").stdout.splitlines()
    oids = [x for x in repo.git("show", "HEAD:.gitmodel/manifest.toml").stdout.splitlines()]
    assert len([x for x in oids if x.startswith("oid")]) == len(COMBOS)
    assert not {x for x in oids if x.startswith("oid")} & set(before)


def test_the_fast_answer_is_the_full_answer_word_for_word(repo: Shell) -> None:
    repo.write("model.bin", b"weights")
    (repo.cwd / "model.bin").chmod(0o755)
    repo.write("data/a/1.txt", "one")
    repo.write("data/b/2.txt", "two")
    repo.write("params.yaml", "lr: 0.1\n")
    repo.model("add", "model.bin", "data")
    repo.git("commit", "-q", "-m", "v1")
    _next_second()
    stamps = repo.cwd / ".git/model/stamps"
    full_text = repo.model("status").stdout
    full_json = repo.model("status", "--json").stdout
    fast_text, modules = _modules_after_status(repo)
    fast_json, json_modules = _modules_after_status(repo, "--json")
    assert not (modules | json_modules) & HEAVY
    assert (fast_text, fast_json) == (full_text, full_json)
    stamps.unlink()  # no stamps: the full status, which leaves them again
    assert repo.model("status").stdout == full_text
    assert stamps.exists()
    sub = repo.at(repo.cwd / "data" / "a")
    assert sub.model("status").stdout == full_text  # from a subfolder too


def test_an_object_that_left_the_cache_is_reported(repo: Shell) -> None:
    repo.write("data/x.bin", b"x" * 100)
    repo.write("data/y.bin", b"y" * 100)
    repo.model("add", "data")
    repo.git("commit", "-q", "-m", "v1")
    _next_second()
    assert _states(repo) == {"data": "unchanged"}
    _, modules = _modules_after_status(repo)
    assert "click" not in modules  # answered from the stamps
    objects = repo.cwd / ".git/model/objects"
    victim = next(p for p in objects.rglob("*") if p.is_file())
    victim.chmod(0o644)
    victim.write_bytes(b"rotten")
    repo.model("verify", check=False)  # quarantines it
    assert _states(repo) == {"data": "not in cache"}


def test_a_stale_seal_never_hides_a_change_status_stamped(repo: Shell) -> None:
    """status stamps the oid an artifact has now; the commit hook's seal was made for the oid
    it had then, and must not take status's stamp for its own."""
    path = repo.write("model.bin", b"v1" * 1000)
    repo.model("add", "model.bin")
    repo.git("commit", "-q", "-m", "v1")
    path.write_bytes(b"v2" * 1000)
    _next_second()
    assert _states(repo) == {"model.bin": "modified"}  # stamps model.bin as the new oid
    repo.write("README.md", "code only")
    repo.git("add", "README.md")
    out = repo.git("commit", "-q", "-m", "readme")
    assert "recorded model.bin" in out.stderr
    assert _states(repo) == {"model.bin": "unchanged"}


def _hook_imports(repo: Shell, *args: str) -> set[str]:
    out = repo.git(*args, env={"PYTHONPROFILEIMPORTTIME": "1"})
    names = set()
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "git_model" in names  # the hook did run in a profiled interpreter
    return names


def test_the_commit_after_add_finds_the_index_sealed(repo: Shell) -> None:
    """`git model add` stages the manifest the commit will hold and seals it: the commit's
    hook checks the seal (no TOML parser, no stat cache) and the note still gets the version."""
    from git_model.hooks.handoff import PENDING
    from git_model.pending import NAME

    assert PENDING == NAME
    repo.write("model.bin", os.urandom(5000))
    repo.write("data/a.bin", os.urandom(100))
    time.sleep(0.15)  # older than the racy window: add's stamps hold at commit time
    repo.model("add", "model.bin", "data")
    assert not _hook_imports(repo, "commit", "-q", "-m", "v1") & (HEAVY | {"tomllib"})
    manifest = repo.read(".gitmodel/manifest.toml").decode()
    note = json.loads(repo.git("notes", "--ref=model", "show", "HEAD").stdout)
    (name, version), *_ = note["models"].items()
    assert f'version = "{version}"' in manifest
    repo.write("README.md", "code only")
    repo.git("add", "README.md")
    assert not _hook_imports(repo, "commit", "-q", "-m", "code") & (HEAVY | {"tomllib"})
    assert json.loads(repo.git("notes", "--ref=model", "show", "HEAD").stdout)["models"] == {
        name: version
    }
    # an artifact edited after the seal: the full path records it
    repo.write("model.bin", os.urandom(5000))
    repo.write("README.md", "and the weights")
    assert "tomllib" in _hook_imports(repo, "commit", "-q", "-am", "edited")
    assert _states(repo) == {"data": "unchanged", "model.bin": "unchanged"}
    assert repo.git("diff", "HEAD~1", "--stat", "--", ".gitmodel").stdout.strip()


def test_a_checkout_with_nothing_to_do_trusts_the_stamps_and_nothing_else(repo: Shell) -> None:
    """`git model checkout` skips an artifact whose stamp holds for the oid it restores (no
    walk through the cache, no fetch); any change since, same size and old mtime included, is
    restored all the same, and so is an artifact whose stamp is for another oid."""
    for i in range(3):
        repo.write(f"data/{i}/x.bin", os.urandom(300))
    repo.write("model.bin", os.urandom(5000))
    repo.model("add", "data", "model.bin")
    repo.git("commit", "-q", "-m", "v1")
    _next_second()
    repo.git("commit", "-q", "--allow-empty", "-m", "stamped")
    assert "restored 0 file(s), 4 already up to date" in repo.model("checkout").stdout
    path = repo.cwd / "data/1/x.bin"
    before = path.read_bytes()
    _change(path, (False, True, False))  # same size, old timestamps put back
    _change(repo.cwd / "model.bin", (False, True, True))
    assert set(_states(repo).values()) == {"modified"}  # stamps now for the changed oids
    out = repo.model("checkout").stdout
    assert "restored 2 file(s), 2 already up to date" in out
    assert path.read_bytes() == before
    assert set(_states(repo).values()) == {"unchanged"}


def test_a_checkout_that_finds_everything_in_place_stamps_it(repo: Shell) -> None:
    """The first `git model checkout` after a restore walks and finds nothing to do: it stamps
    what it found (fingerprinted before it looked), so the next one trusts the stamp."""
    import marshal
    import shutil

    for i in range(3):
        repo.write(f"data/{i}/x.bin", os.urandom(300))
    repo.model("add", "data")
    repo.git("commit", "-q", "-m", "v1")
    shutil.rmtree(repo.cwd / "data")
    assert "restored 3 file(s)" in repo.model("checkout").stdout
    _next_second()  # (what the checkout wrote is no longer racy)
    stamps = repo.cwd / ".git" / "model" / "stamps"
    stamps.unlink()
    assert "restored 0 file(s), 3 already up to date" in repo.model("checkout").stdout
    oid = next(
        line.split('"')[1]
        for line in repo.read(".gitmodel/manifest.toml").decode().splitlines()
        if line.startswith("oid")
    )
    assert marshal.loads(stamps.read_bytes())["artifacts"]["data"][1] == oid
    _change(repo.cwd / "data/1/x.bin", (False, True, False))
    assert "restored 1 file(s), 2 already up to date" in repo.model("checkout").stdout
