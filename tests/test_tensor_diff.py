"""`git model diff` inside the weights: which tensors changed, from the listings alone, and with
`--stats` how far each moved. Model files are written by safetensors; git and hooks are real."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import Shell

from git_model.ops import tensordiff


def layers(n: int = 10) -> dict[str, np.ndarray]:
    return {
        f"layers.{i}.weight": np.random.default_rng(i).standard_normal((64, 64)).astype(np.float32)
        for i in range(n)
    }


def save(sh: Shell, tensors: dict[str, np.ndarray], rel: str = "model.safetensors") -> None:
    from safetensors.numpy import save_file

    save_file(tensors, str(sh.cwd / rel))


def commit(sh: Shell, message: str) -> None:
    sh.model("add", "model.safetensors", "--model", "m")
    sh.git("commit", "-q", "-m", message)


def test_diff_names_each_kind_of_tensor_change(repo: Shell) -> None:
    v1 = layers()
    save(repo, v1)
    commit(repo, "v1")
    v2 = dict(v1)
    v2["layers.3.weight"] = v1["layers.3.weight"].copy()
    v2["layers.3.weight"][:32] += 0.5  # half the elements move by 0.5
    v2["layers.7.weight"] = v1["layers.7.weight"].astype(np.float16)  # retyped
    v2["layers.8.weight"] = v1["layers.8.weight"].reshape(32, 128)  # reshaped
    del v2["layers.9.weight"]  # removed
    v2["head.bias"] = np.zeros(64, np.float32)  # added
    save(repo, v2)
    commit(repo, "v2")

    shutil.rmtree(repo.cwd / ".git/model/objects")  # the names need no cache
    out = json.loads(repo.model("diff", "HEAD~1", "HEAD", "--json").stdout)
    (component,) = out["models"][0]["components"]
    tensors = component["tensors"]
    statuses = {c["name"]: c["status"] for c in tensors["changes"]}
    assert statuses == {
        "head.bias": "added",
        "layers.3.weight": "modified",
        "layers.7.weight": "retyped",
        "layers.8.weight": "reshaped",
        "layers.9.weight": "removed",
    }
    assert (tensors["tensors"], tensors["changed"]) == (10, 5)
    assert tensors["parameters"] == 9 * 64 * 64 + 64
    modified = next(c for c in tensors["changes"] if c["status"] == "modified")
    assert modified["new"] == {
        "dtype": "F32",
        "shape": [64, 64],
        "bytes": 64 * 64 * 4,
        "oid": modified["new"]["oid"],
    }
    assert modified["stats"] is None
    text = repo.model("diff", "HEAD~1", "HEAD").stdout
    share = 100 * (4 * 64 * 64 + 64) / (9 * 64 * 64 + 64)
    assert f"5 of 10 tensors changed ({share:.1f}% of parameters)" in text
    assert "layers.0.weight" not in text  # frozen layers: not listed


def test_stats_measure_how_far_each_tensor_moved(repo: Shell) -> None:
    v1 = layers(4)
    save(repo, v1)
    commit(repo, "v1")
    v2 = dict(v1)
    v2["layers.1.weight"] = v1["layers.1.weight"].copy()
    v2["layers.1.weight"][:16] += 0.25
    save(repo, v2)
    out = json.loads(repo.model("diff", "--stats", "--json").stdout)  # HEAD vs the work tree
    (change,) = out["models"][0]["components"][0]["tensors"]["changes"]
    d = v2["layers.1.weight"].astype(np.float64) - v1["layers.1.weight"]
    expected = np.linalg.norm(d) / np.linalg.norm(v1["layers.1.weight"].astype(np.float64))
    # (worked in float32, summed in float64: a figure to ~1e-7 of its value)
    assert abs(change["stats"]["relative_change"] - expected) < 1e-6 * expected
    assert abs(change["stats"]["max_abs_change"] - float(np.abs(d).max())) < 1e-9
    assert change["stats"]["fraction_changed"] == 0.25
    commit(repo, "v2")
    text = repo.model("diff", "HEAD~1", "HEAD", "--stats").stdout
    assert "layers.1.weight  modified F32 [64,64]" in text and "25.0% of elements" in text


def write_bf16(repo: Shell, values: np.ndarray) -> None:
    """A safetensors file of one BF16 tensor `w` (the top halves of `values` as float32),
    written by safetensors itself (NumPy has no bf16 type)."""
    from safetensors import TensorSpec, serialize_file

    bits = (values.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    spec = TensorSpec(
        dtype="bfloat16", shape=list(values.shape), data_ptr=bits.ctypes.data, data_len=bits.nbytes
    )
    serialize_file({"w": spec}, str(Path(repo.cwd / "model.safetensors")))


def test_stats_of_bf16_tensors(repo: Shell) -> None:
    w = np.linspace(-2, 2, 256, dtype=np.float32).reshape(16, 16)
    write_bf16(repo, w)
    commit(repo, "v1")
    w2 = w.copy()
    w2[0, 0] = 4.0  # exact in bf16
    write_bf16(repo, w2)
    commit(repo, "v2")
    out = json.loads(repo.model("diff", "HEAD~1", "HEAD", "--stats", "--json").stdout)
    (change,) = out["models"][0]["components"][0]["tensors"]["changes"]
    assert change["new"]["dtype"] == "BF16"
    assert change["stats"]["fraction_changed"] == 1 / 256
    assert change["stats"]["max_abs_change"] == 6.0  # from -2.0 to 4.0


def test_bf16_elements_whose_squares_overflow_float32_are_still_figures(repo: Shell) -> None:
    """2-byte floats are worked in float32; bf16 reaches ~3e38, whose square float32 cannot
    hold: such a tensor is worked again in float64, not called NaN or infinite."""
    w = np.linspace(-2, 2, 256, dtype=np.float32).reshape(16, 16)
    write_bf16(repo, w)
    commit(repo, "v1")
    w2 = w.copy()
    w2[1, 1] = 2.0**100  # finite, exact in bf16; its square is 2**200
    write_bf16(repo, w2)
    out = json.loads(repo.model("diff", "--stats", "--json").stdout)
    (change,) = out["models"][0]["components"][0]["tensors"]["changes"]
    stats = change["stats"]
    assert stats["non_finite_old"] == stats["non_finite_new"] == 0
    assert stats["max_abs_change"] == 2.0**100  # (2**100 + 1.86 in float64)
    assert stats["relative_change"] is not None and stats["relative_change"] > 1e28


def test_stats_name_nan_and_infinite_elements_instead_of_summing_them(repo: Shell) -> None:
    """A run that diverged: the sums mean nothing, so the stats say how many elements of each
    side are NaN or infinite, and the JSON stays JSON (no bare NaN)."""
    w = np.ones((64, 64), np.float32)
    save(repo, {"w": w, "b": np.zeros(64, np.float32)})
    commit(repo, "v1")
    w2 = w.copy()
    w2[3, 3], w2[4, 4] = np.nan, np.inf
    save(repo, {"w": w2, "b": np.zeros(64, np.float32)})
    proc = repo.model("diff", "--stats", "--json")
    assert "NaN" not in proc.stdout and "Infinity" not in proc.stdout and not proc.stderr
    (change,) = json.loads(proc.stdout)["models"][0]["components"][0]["tensors"]["changes"]
    assert change["stats"] == {
        "relative_change": None,
        "max_abs_change": None,
        "fraction_changed": 2 / 4096,
        "non_finite_old": 0,
        "non_finite_new": 2,
    }
    text = repo.model("diff", "--stats").stdout
    assert "<0.1% of elements, 2 NaN or infinite (was 0)" in text  # (not "0.0%")


def test_f32_changes_too_small_for_float32_squares_are_still_figures(repo: Shell) -> None:
    """F32 is worked in float32 too: squares of changes below ~1e-19 vanish there, so a
    tensor whose changed elements sum to nothing is worked again in float64."""
    w = np.full(64, 1e-30, np.float32)
    save(repo, {"w": w})
    commit(repo, "v1")
    save(repo, {"w": w * np.float32(1.5)})
    out = json.loads(repo.model("diff", "--stats", "--json").stdout)
    (change,) = out["models"][0]["components"][0]["tensors"]["changes"]
    stats = change["stats"]
    assert stats["fraction_changed"] == 1.0
    assert abs(stats["relative_change"] - 0.5) < 1e-6
    assert abs(stats["max_abs_change"] - 5e-31) < 1e-36


@pytest.mark.parametrize("window", [1 << 20, 64 << 20])
@pytest.mark.parametrize("mapped", [True, False])
def test_a_tensor_is_read_slice_by_slice_at_any_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int, mapped: bool
) -> None:
    """--stats reads a cache part through windows of a mapping (a work-tree file by reads):
    the same bytes in the same slices either way, from an offset that is not page-aligned."""
    monkeypatch.setattr(tensordiff, "MAPPED_STEP", window)
    data = os.urandom(3 << 20)
    path = tmp_path / "part"
    path.write_bytes(data)
    start, size, itemsize = 4099, (3 << 20) - 4099 - 6, 2
    fd = os.open(path, os.O_RDONLY)
    try:
        slices = [bytes(s) for s in tensordiff._slices((fd, 0, mapped), start, size, itemsize)]
    finally:
        os.close(fd)
    assert b"".join(slices) == data[start : start + size]
    assert {len(s) for s in slices[:-1]} == {tensordiff.SLICE * itemsize}
