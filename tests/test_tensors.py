"""A model file stored by parts, as a user meets it: add, commit, checkout, share, merge, gc.

Every model file here is written by its real library; git and the hooks are real. What must
hold: the file in the work tree is always byte for byte the one committed; each tensor is one
object, stored once however many files, versions and branches hold it; only changed tensors
move on push; a listing that lies is refused and never reaches the work tree.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import Shell
from servers import (  # noqa: F401  (fixtures)
    Store,
    bare_origin,
    clone,
    s3_endpoint_fixture,
    store_fixture,
)

DATA = Path(__file__).parent / "data"
LISTING = ".gitmodel/tensors/model.safetensors.tsv"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checkpoint(seed: int, changed: tuple[int, ...] = (), n: int = 10) -> dict[str, np.ndarray]:
    """A model of `n` layers (16 KiB each); the layers in `changed` differ with `seed`."""
    out = {}
    for i in range(n):
        rng = np.random.default_rng(seed if i in changed else 1000 + i)
        out[f"layers.{i}.weight"] = rng.standard_normal((64, 64)).astype(np.float32)
    return out


def save(sh: Shell, rel: str, tensors: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save_file

    path = sh.cwd / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path.read_bytes()


def cache_objects(sh: Shell) -> set[str]:
    root = sh.cwd / ".git/model/objects"
    return {p.parent.name + p.name for p in root.glob("*/*")}


def listed_oids(sh: Shell, listing: str = LISTING) -> list[str]:
    lines = sh.read(listing).decode().splitlines()
    assert lines[0].startswith("git-model-tensors\t1\t")
    return [line.split("\t")[0] for line in lines[1:]]


def commit(sh: Shell, message: str, *paths: str) -> None:
    sh.model("add", *paths)
    sh.git("commit", "-q", "-m", message)


def test_stored_by_parts_and_rebuilt_byte_for_byte(repo: Shell) -> None:
    v1 = save(repo, "model.safetensors", checkpoint(1))
    repo.model("add", "model.safetensors", "--model", "m")
    repo.git("commit", "-q", "-m", "v1")
    manifest = repo.read(".gitmodel/manifest.toml").decode()
    assert 'layout = "safetensors"' in manifest and f'oid = "{sha(v1)}"' in manifest
    parts = listed_oids(repo)
    assert len(parts) == 11  # the header and ten tensors
    assert cache_objects(repo) == set(parts)  # each part one object; the whole file is none

    v2 = save(repo, "model.safetensors", checkpoint(2, changed=(3,)))
    commit(repo, "v2: layer 3 trained", "model.safetensors")
    new = set(listed_oids(repo)) - set(parts)
    assert len(new) == 1 and cache_objects(repo) == set(parts) | new  # one tensor more

    repo.git("checkout", "-q", "HEAD~1")  # the hook rebuilds v1 from its parts
    assert repo.read("model.safetensors") == v1
    assert "unchanged" in repo.model("status").stdout
    repo.git("checkout", "-q", "-")
    assert repo.read("model.safetensors") == v2
    assert cache_objects(repo) == set(parts) | new  # nothing set aside: the cache holds both
    cat = subprocess.run(["git", "model", "cat", sha(v1)], cwd=repo.cwd, capture_output=True)
    assert cat.returncode == 0 and cat.stdout == v1
    opened = subprocess.run(
        [
            sys.executable,
            "-c",
            "import git_model,sys; sys.stdout.buffer.write("
            "git_model.open('model.safetensors', rev='HEAD~1').read())",
        ],
        cwd=repo.cwd,
        capture_output=True,
        check=True,
    )
    assert opened.stdout == v1


def test_a_tensor_shared_by_two_files_is_stored_once(repo: Shell) -> None:
    base = checkpoint(1)
    save(repo, "a.safetensors", base)
    save(repo, "b.safetensors", {**checkpoint(2, changed=(0, 1)), "extra": np.ones(5, np.float32)})
    repo.model("add", "a.safetensors", "b.safetensors")
    a = listed_oids(repo, ".gitmodel/tensors/a.safetensors.tsv")
    b = listed_oids(repo, ".gitmodel/tensors/b.safetensors.tsv")
    shared = set(a) & set(b)
    assert len(shared) == 8  # layers 2..9 are the same bytes in both
    assert cache_objects(repo) == set(a) | set(b)
    # moved and dropped like any artifact, listings with them
    repo.model("mv", "a.safetensors", "models/a.safetensors")
    repo.model("rm", "b.safetensors")
    repo.git("commit", "-q", "-m", "a moved, b untracked")
    tracked = repo.git("ls-files", ".gitmodel/tensors").stdout.split()
    assert tracked == [".gitmodel/tensors/models/a.safetensors.tsv"]
    os.remove(repo.cwd / "models/a.safetensors")
    repo.model("checkout")
    assert listed_oids(repo, tracked[0]) == a


@pytest.mark.parametrize("fmt", ["npz", "gguf", "torch"])
def test_every_format_round_trips(repo: Shell, fmt: str) -> None:
    path = repo.cwd / "weights.bin"
    if fmt == "npz":
        with open(path, "wb") as f:
            np.savez(f, **checkpoint(1, n=4))
    elif fmt == "gguf":
        import gguf

        writer = gguf.GGUFWriter(str(path), "llama")
        for name, arr in checkpoint(1, n=4).items():
            writer.add_tensor(name, arr)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    else:
        shutil.copy(DATA / "tiny.pt", path)
    original = path.read_bytes()
    commit(repo, "v1", "weights.bin")
    head = repo.read(".gitmodel/tensors/weights.bin.tsv").decode().splitlines()[0]
    assert head == f"git-model-tensors\t1\t{fmt}\t{len(original)}"
    path.unlink()
    repo.model("checkout")
    assert path.read_bytes() == original


def test_a_listing_that_lies_never_reaches_the_work_tree(repo: Shell) -> None:
    save(repo, "model.safetensors", checkpoint(1))
    commit(repo, "v1", "model.safetensors")
    v2 = save(repo, "model.safetensors", checkpoint(2, changed=(0,)))
    commit(repo, "v2", "model.safetensors")

    # a hand edit of the listing alone: the work tree's is passed over for the one in the
    # index that hashes to the manifest's parts oid (as for a directory's listing)
    text = repo.read(LISTING).decode()
    lines = text.splitlines(keepends=True)
    a, b = lines[2].split("\t"), lines[3].split("\t")
    a[0], b[0] = b[0], a[0]  # swap two tensors of the same size
    lines[2], lines[3] = "\t".join(a), "\t".join(b)
    edited = "".join(lines)
    repo.write(LISTING, edited)
    os.remove(repo.cwd / "model.safetensors")
    repo.model("checkout")
    assert repo.read("model.safetensors") == v2
    # committed past the hooks, it is refused in one line
    repo.git("commit", "-q", "--no-verify", "-m", "hand edit", "--", LISTING)
    os.remove(repo.cwd / "model.safetensors")
    out = repo.model("checkout", "HEAD", check=False)
    assert out.returncode == 1 and "does not match the parts oid" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (repo.cwd / "model.safetensors").exists()

    # the manifest edited to match: the parts are good, but they do not make the file
    manifest = repo.read(".gitmodel/manifest.toml").decode()
    old = sha(text.encode())
    repo.write(".gitmodel/manifest.toml", manifest.replace(old, sha(edited.encode())))
    out = repo.model("checkout", check=False)
    assert out.returncode == 1 and "does not rebuild" in out.stderr
    assert not (repo.cwd / "model.safetensors").exists()
    assert not [p for p in repo.cwd.iterdir() if p.name.startswith(".model")]

    repo.git("reset", "-q", "--hard", "HEAD~1")
    repo.model("checkout")
    assert repo.read("model.safetensors") == v2


@pytest.mark.parametrize("store", ["dir", "s3"], indirect=True)
def test_push_moves_changed_tensors_and_a_corrupt_part_is_fetched_again(
    store: Store, tmp_path: Path
) -> None:
    origin = bare_origin(tmp_path)
    alice = clone(origin, tmp_path / "alice", store)
    alice.model("remote", "add", "origin", store.url, "--default")
    save(alice, "model.safetensors", checkpoint(1))
    commit(alice, "v1", "model.safetensors")
    first = json.loads(alice.model("push", "--json").stdout)
    assert first["transferred"] == 11
    v2 = save(alice, "model.safetensors", checkpoint(2, changed=(5,)))
    commit(alice, "v2", "model.safetensors")
    second = json.loads(alice.model("push", "--json").stdout)
    assert second["transferred"] == 1 and second["bytes"] == 64 * 64 * 4  # one tensor's bytes
    alice.git("push", "-q", "origin", "main")

    bob = clone(origin, tmp_path / "bob", store)
    assert bob.read("model.safetensors") == v2
    part = listed_oids(bob)[6]  # layer 5
    obj = bob.cwd / ".git/model/objects" / part[:2] / part[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"\0" * obj.stat().st_size)  # a disk error flips the tensor to zeros
    os.remove(bob.cwd / "model.safetensors")
    out = bob.model("checkout", check=False)
    assert "quarantined" in out.stdout + out.stderr
    assert not (bob.cwd / "model.safetensors").exists()
    bob.model("pull")
    assert bob.read("model.safetensors") == v2


def test_gc_keeps_every_part_a_reachable_version_needs(repo: Shell) -> None:
    save(repo, "model.safetensors", checkpoint(1))
    commit(repo, "v1", "model.safetensors")
    v1_parts = set(listed_oids(repo))
    repo.git("checkout", "-q", "-b", "experiment")
    save(repo, "model.safetensors", checkpoint(3, changed=(9,)))
    commit(repo, "experiment", "model.safetensors")
    only_experiment = set(listed_oids(repo)) - v1_parts
    repo.git("checkout", "-q", "main")
    repo.git("branch", "-q", "-D", "experiment")
    repo.git("reflog", "expire", "--expire=now", "--all")
    out = json.loads(repo.model("gc", "--force", "--keep-days", "0", "--json").stdout)
    assert out["freed"] == len(only_experiment) == 1
    assert cache_objects(repo) == v1_parts
    os.remove(repo.cwd / "model.safetensors")
    repo.model("checkout")
    assert listed_oids(repo) == [sha(b) for b in _parts_of(repo.read("model.safetensors"))]


def _parts_of(data: bytes) -> list[bytes]:
    from git_model.formats import recognise

    layout = recognise(io.BytesIO(data), len(data))
    return [data[p.offset : p.end] for p in layout.parts]


def test_branches_that_change_different_files_merge(repo: Shell) -> None:
    save(repo, "a.safetensors", checkpoint(1))
    save(repo, "b.safetensors", checkpoint(2))
    commit(repo, "base", "a.safetensors", "b.safetensors")
    repo.git("checkout", "-q", "-b", "other")
    b2 = save(repo, "b.safetensors", checkpoint(5, changed=(1,)))
    commit(repo, "b trained", "b.safetensors")
    repo.git("checkout", "-q", "main")
    a2 = save(repo, "a.safetensors", checkpoint(4, changed=(0,)))
    commit(repo, "a trained", "a.safetensors")
    repo.git("merge", "-q", "--no-edit", "other")
    assert repo.read("a.safetensors") == a2 and repo.read("b.safetensors") == b2
    assert "modified" not in repo.model("status").stdout
