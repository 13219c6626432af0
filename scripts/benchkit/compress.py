"""compress: bytes on the remote and transfer times, model.compress auto against off
(opt-in: --only compress)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from .core import Bench, MiB, Row, Spec, place, ratio_row, remove, section, skipped
from .moto import MotoS3

# -- compress: bytes on the remote and transfer times, model.compress auto against off ------


def text_dataset(folder: Path, shards: int) -> Path:
    """Text training data from the data sets scikit-learn ships (iris, wine, breast cancer,
    diabetes, digits, linnerud), each written as CSV and as JSON lines, `shards` times with
    the rows in another order each time (so each shard is its own object, compressed alone,
    as the same data would be in a real sharded data set)."""
    import csv
    import io
    import json
    import random

    import sklearn.datasets as sk

    folder.mkdir(parents=True)
    for name in ("iris", "wine", "breast_cancer", "diabetes", "digits", "linnerud"):
        bunch = getattr(sk, f"load_{name}")()
        names = [str(n) for n in bunch.feature_names] + ["target"]
        rows = [[*x, t] for x, t in zip(bunch.data.tolist(), bunch.target.tolist())]
        for shard in range(shards):
            random.Random(shard).shuffle(rows)
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(names)
            writer.writerows(rows)
            (folder / f"{name}-{shard:03d}.csv").write_text(out.getvalue())
            lines = "".join(json.dumps(dict(zip(names, r))) + "\n" for r in rows)
            (folder / f"{name}-{shard:03d}.jsonl").write_text(lines)
    return folder


def trained_weights(folder: Path) -> tuple[Path, Path]:
    """The weights of a small MLP trained by scikit-learn on its digits, as safetensors:
    fp32, and bf16 (rounded to nearest even; stored as U16, the same bytes as a BF16
    tensor, since NumPy has no bf16 type)."""
    import warnings

    import numpy as np
    from safetensors.numpy import save_file
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    x, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged: a few epochs are enough here
        mlp = MLPClassifier(hidden_layer_sizes=(512, 512), max_iter=4, random_state=0)
        mlp.fit(x / 16, y)
    fp32 = {f"layer{i}.weight": w.astype(np.float32) for i, w in enumerate(mlp.coefs_)}
    fp32 |= {f"layer{i}.bias": w.astype(np.float32) for i, w in enumerate(mlp.intercepts_)}
    bf16 = {}
    for key, value in fp32.items():
        bits = value.view(np.uint32)
        bf16[key] = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    folder.mkdir(parents=True)
    save_file(fp32, str(folder / "fp32.safetensors"))
    save_file(bf16, str(folder / "bf16.safetensors"))
    return folder / "fp32.safetensors", folder / "bf16.safetensors"


def stored_bytes(store: str, s3: MotoS3 | None) -> int:
    """What the objects take on the remote: loose, and packs with their indexes."""
    if store.startswith("s3://"):
        assert s3 is not None
        return sum(size for key, size in s3.keys(store) if "/objects/" in key or "/packs/" in key)
    loose = sum(p.stat().st_size for p in Path(store, "objects").glob("*/*"))
    return loose + sum(p.stat().st_size for p in Path(store, "packs").glob("*"))


@section("compress", default=False)
def bench_compress(b: Bench) -> Iterator[Row]:
    """Issue 18: bytes on the remote for text, bf16 and fp32 data, and push/pull times with
    model.compress = auto against off ("today": raw objects), on a directory and moto S3."""
    if not b.has_command("push"):
        yield skipped("compress", "bytes on the remote")
        return
    try:
        s3: MotoS3 | None = MotoS3(b)
    except ImportError:
        s3 = None
        yield Row("compress", "S3 remote", note="skipped: moto/boto3 not installed")
    data = b.tmp / "data" / "compress"
    shards = 4 if b.args.quick else 16
    text = text_dataset(data / "text", shards)
    fp32, bf16 = trained_weights(data / "weights")
    try:
        kinds = ["dir", "s3"] if s3 else ["dir"]
        for label, source, rel, limit in (
            (f"text (sklearn data sets as CSV + JSONL, {shards} shards)", text, "data", 0.35),
            ("bf16 weights (sklearn MLP, safetensors)", bf16, "bf16.safetensors", 0.70),
            ("fp32 weights (sklearn MLP, safetensors)", fp32, "fp32.safetensors", 0.90),
        ):
            yield from compress_ratio_rows(b, s3, kinds, label, source, rel, limit)
        yield from compress_time_rows(b, s3, "dir", b.data_file("model.bin"), "random", 1.05)
        if s3:
            yield from compress_time_rows(b, s3, "s3", text, "text", 1.0)
            yield from compress_time_rows(b, s3, "s3", b.data_file("model.bin"), "random", 1.05)
    finally:
        if s3:
            s3.stop()


def compress_repo(b: Bench, name: str, source: Path, rel: str) -> Path:
    repo = b.repo(name)
    place(source, repo / rel)
    kind = "weights" if rel.endswith((".safetensors", ".bin")) else "data"
    b.sh("git", "model", "add", rel, "--kind", kind, cwd=repo)
    b.sh("git", "commit", "-q", "-m", "v1", cwd=repo)
    return repo


def add_remote(b: Bench, s3: MotoS3 | None, repo: Path, name: str, kind: str) -> str:
    if kind == "s3":
        assert s3 is not None
        url = s3.bucket(f"{repo.name}-{name}".lower().replace("_", "-"))
        b.sh("git", "model", "remote", "add", name, url, cwd=repo)
        b.sh("git", "config", f"model.remote.{name}.endpointurl", s3.url, cwd=repo)
        return url
    url = str(b.tmp / f"store-{repo.name}-{name}")
    b.sh("git", "model", "remote", "add", name, url, cwd=repo)
    return url


def compress_ratio_rows(
    b: Bench, s3: MotoS3 | None, kinds: list[str], label: str, source: Path, rel: str, limit: float
) -> Iterator[Row]:
    repo = compress_repo(b, f"ratio-{rel.split('.')[0]}", source, rel)
    raw = sum(p.stat().st_size for p in repo.joinpath(".git/model/objects").glob("*/*"))
    for kind in kinds:
        url = add_remote(b, s3, repo, kind, kind)
        b.sh("git", "model", "push", kind, cwd=repo)
        stored = stored_bytes(url, s3)
        ok = stored <= limit * raw
        yield Row(
            "compress",
            f"{label}: on {kind}",
            stored / MiB,
            f"raw {raw / MiB:.1f} MiB",
            target=f"≤ {limit:g}×",
            ok=ok,
            note=f"{stored / raw:.3f}× of the raw bytes",
            unit="MiB",
        )
    remove(repo)


def compress_time_rows(
    b: Bench, s3: MotoS3 | None, kind: str, source: Path, label: str, limit: float
) -> Iterator[Row]:
    """push with auto and off into an emptied remote, alternately; pull from a remote that
    auto filled and from one that off filled (today's layout), alternately."""
    rel = "data" if source.is_dir() else "model.bin"
    repo = compress_repo(b, f"time-{label}-{kind}", source, rel)
    target = add_remote(b, s3, repo, "target", kind)
    filled = {}
    for mode in ("auto", "off"):
        filled[mode] = add_remote(b, s3, repo, mode, kind)
        b.sh("git", "-c", f"model.compress={mode}", "model", "push", mode, cwd=repo)

    def empty() -> None:
        if s3 and kind == "s3":
            s3.empty(target)
        else:
            remove(Path(target))
        os.sync()  # each run starts with the disk's writeback caught up: auto and off alike

    def forget() -> None:
        remove(repo / ".git" / "model" / "objects")
        remove(repo / rel)
        os.sync()

    push = {
        mode: Spec(
            ["git", "-c", f"model.compress={mode}", "model", "push", "target"], repo, setup=empty
        )
        for mode in ("auto", "off")
    }
    pull = {
        mode: Spec(["git", "model", "pull", mode], repo, setup=forget) for mode in ("auto", "off")
    }
    b.measure(push["auto"], push["off"], swap=True)
    b.measure(pull["auto"], pull["off"], swap=True)
    size = sum(p.stat().st_size for p in repo.joinpath(".git/model/objects").glob("*/*"))
    what = f"{label} {size / MiB:.0f} MiB ({kind})"
    for verb, specs in (("push", push), ("pull", pull)):
        off = specs["off"]
        yield Row("compress", f"{verb} {what}, compress off", off.best, cpu=off.cpu)
        row = ratio_row(
            "compress", f"{verb} {what}", specs["auto"], "off", specs["off"].best, limit
        )
        row.note = "auto against off (raw objects, as before)"
        yield row
    remove(repo)
    for url in (target, *filled.values()):
        if not url.startswith("s3://"):
            remove(Path(url))
