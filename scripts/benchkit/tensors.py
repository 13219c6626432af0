"""Inside the weights: model files stored by parts."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from .core import (
    HASH_SCRIPT,
    Bench,
    GiB,
    Row,
    Spec,
    fsync_file,
    place,
    ratio_row,
    remove,
    reset_model_repo,
    section,
    true_peak,
)

# -- inside the weights: model files stored by parts ------------------------------------------

CHECKPOINTS = 5
TENSORS = 200  # tensors of one checkpoint; 10% of them change from one checkpoint to the next


def write_checkpoint(path: Path, size: int, dtype: str, trained: dict[int, int]) -> None:
    """A safetensors file of TENSORS equal tensors filling `size` bytes, written a tensor at a
    time (memory stays flat): tensor i holds normal floats drawn from the checkpoint that last
    trained it (`trained[i]`), or from its own seed if none did."""
    import json

    import numpy as np

    itemsize = 4 if dtype == "F32" else 2
    per = size // TENSORS // itemsize
    header: dict[str, object] = {}
    for i in range(TENSORS):
        start = i * per * itemsize
        header[f"layers.{i}.weight"] = {
            "dtype": dtype,
            "shape": [per],
            "data_offsets": [start, start + per * itemsize],
        }
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text)
        for i in range(TENSORS):
            values = np.random.default_rng([trained[i], i] if i in trained else 1000 + i)
            floats = values.standard_normal(per, dtype=np.float32)
            if dtype == "BF16":
                floats = (floats.view(np.uint32) >> 16).astype(np.uint16)
            f.write(floats.tobytes())
        os.fsync(f.fileno())


def cache_bytes(repo: Path) -> int:
    objects = repo / ".git" / "model" / "objects"
    return sum(p.stat().st_size for p in objects.rglob("*") if p.is_file())


@section("tensors")
def bench_tensors(b: Bench) -> Iterator[Row]:
    """Five checkpoints of a `--size-gib` safetensors model (F32 and BF16), 10% of the
    tensors changed from each to the next: cache storage, add, checkout between checkpoints,
    push, diff and diff --stats, against hashlib, cp and the whole-file path."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        yield Row("tensors", "model files stored by parts", note="skipped: numpy not installed")
        return
    for dtype in ("BF16", "F32"):
        yield from tensor_rows(b, dtype)


def tensor_rows(b: Bench, dtype: str) -> Iterator[Row]:
    sec = dtype.lower()
    label = f"{b.size / GiB:g} GiB {dtype} safetensors"
    folder = b.tmp / "data" / f"checkpoints-{dtype}"
    folder.mkdir(parents=True)
    rng = __import__("random").Random(7)
    files = []
    trained: dict[int, int] = {}
    for n in range(CHECKPOINTS):
        if n:  # each checkpoint trains another 10% of the tensors
            trained.update((i, n) for i in rng.sample(range(TENSORS), TENSORS // 10))
        path = folder / f"ckpt{n + 1}.safetensors"
        write_checkpoint(path, b.size, dtype, trained)
        files.append(path)
    size = files[0].stat().st_size
    repo = b.repo(f"tensors-{dtype}")
    store = b.tmp / f"store-tensors-{dtype}"

    # add: the first checkpoint into an empty cache, beside a SHA-256 pass and cp
    place(files[0], repo / "model.safetensors")
    hashed = Spec([sys.executable, "-c", HASH_SCRIPT, str(files[0])], b.tmp)
    copy_dest = b.tmp / "cp-tensors"
    cp = Spec(
        ["cp", str(files[0]), str(copy_dest)],
        b.tmp,
        setup=lambda: remove(copy_dest),
        after=lambda: fsync_file(copy_dest),
    )
    add = Spec(["git", "model", "add", "model.safetensors"], repo, setup=reset_model_repo(b, repo))
    whole = b.repo(f"tensors-whole-{dtype}")  # today's path: the same bytes, not recognised
    opaque = b.data_file("model.bin")
    place(opaque, whole / "model.bin")
    add_whole = Spec(["git", "model", "add", "model.bin"], whole, setup=reset_model_repo(b, whole))
    b.measure(hashed, cp, add, add_whole)
    yield Row(sec, f"hashlib sha256 pass over {label}", hashed.best, cpu=hashed.cpu)
    yield Row(sec, f"cp {label}", cp.best, cpu=cp.cpu)
    yield ratio_row(sec, f"git model add {label} (by parts)", add, "hashlib", hashed.best, 1.25)
    yield Row(sec, "  git model add, whole-file path", add_whole.best, "hashlib", hashed.best)
    remove(whole)
    specs = [add]

    # five checkpoints committed and pushed one after the other
    b.sh("git", "model", "remote", "add", "store", str(store), "--default", cwd=repo)
    b.sh("git", "model", "add", "model.safetensors", cwd=repo)
    b.sh("git", "commit", "-q", "-m", "ckpt1", cwd=repo)
    b.sh("git", "tag", "ckpt1", cwd=repo)
    b.sh("git", "model", "push", cwd=repo)
    pushed = []
    for n, path in enumerate(files[1:], start=2):
        remove(repo / "model.safetensors")
        place(path, repo / "model.safetensors")
        b.sh("git", "model", "add", "model.safetensors", cwd=repo)
        b.sh("git", "commit", "-q", "-m", f"ckpt{n}", cwd=repo)
        b.sh("git", "tag", f"ckpt{n}", cwd=repo)
        out = b.sh("git", "model", "push", "--json", cwd=repo)
        pushed.append(__import__("json").loads(out)["bytes"])
    stored = cache_bytes(repo)
    naive = CHECKPOINTS * size
    yield Row(
        sec,
        f"cache storage of {CHECKPOINTS} checkpoints (naive {naive / GiB:.2f} GiB)",
        stored / naive,
        target="≤ 0.30×",
        ok=stored / naive <= 0.30,
        unit="×",
        note="ideal for this workload: 0.28×",
    )
    share = pushed[0] / size
    yield Row(
        sec,
        "push of checkpoint 2 after 1: bytes moved / file",
        share,
        target="≤ 0.12×",
        ok=share <= 0.12,
        unit="×",
    )

    # git checkout between two checkpoints (the hook rebuilds the file from its parts)
    def at(tag: str) -> Callable[[], None]:
        return lambda: b.sh("git", "checkout", "-q", tag, cwd=repo)

    target = repo / "model.safetensors"
    checkout = Spec(
        ["git", "checkout", "-q", "ckpt1"],
        repo,
        setup=at("ckpt2"),
        after=lambda: fsync_file(target),
    )
    b.measure(checkout, cp, hashed)
    slower, base = max((cp.best, "cp"), (hashed.best, "hashlib"))
    yield ratio_row(sec, "git checkout ckpt2 -> ckpt1", checkout, base, slower, 1.3)
    specs.append(checkout)

    # diff: names from the listings alone (empty cache); --stats reads both versions
    objects = repo / ".git" / "model" / "objects"
    aside = b.tmp / f"objects-aside-{dtype}"
    os.rename(objects, aside)
    diff = Spec(["git", "model", "diff", "ckpt1", "ckpt2"], repo)
    b.measure(diff)
    os.rename(aside, objects)
    yield Row(
        sec,
        "git model diff ckpt1 ckpt2 (empty cache)",
        diff.best,
        target="≤ 1 s",
        ok=diff.best <= 1.0,
        cpu=diff.cpu,
    )
    stats = Spec(["git", "model", "diff", "ckpt1", "ckpt2", "--stats"], repo)
    read_both = Spec(["cat", str(files[0]), str(files[1])], b.tmp)
    b.measure(stats, read_both)
    yield ratio_row(sec, "git model diff --stats ckpt1 ckpt2", stats, "cat both", read_both.best, 2)
    peak = true_peak(b, [stats, diff, checkout, add])  # (add's set-up empties the cache: last)
    yield Row(sec, "peak memory of git model", peak, target="< 100 MiB", ok=peak < 100, unit="MiB")
    remove(copy_dest)
    remove(repo)
    remove(store)
    for path in files:
        path.unlink()
