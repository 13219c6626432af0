"""Model formats read from files the real libraries write; hostile headers kept whole.

Each format's layout must cover the file exactly, put every tensor's bytes where the library
put them, and name, type and shape them as the library does. Anything that does not parse, or
lies, is a FormatError ("keep it whole"), never another exception.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from git_model.formats import FormatError, Layout, recognise

DATA = Path(__file__).parent / "data"


def layout_of(path: Path) -> Layout:
    with open(path, "rb") as f:
        return recognise(f, path.stat().st_size)


def layout_of_bytes(data: bytes) -> Layout:
    return recognise(io.BytesIO(data), len(data))


def tensor_bytes(path: Path, layout: Layout) -> dict[str, bytes]:
    """Each tensor's own bytes, as the layout places them (data offset, element count)."""
    raw = path.read_bytes()
    out = {}
    item = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1}
    for p in layout.parts:
        if p.data is not None and p.shape is not None and p.dtype in item:
            n = int(np.prod(p.shape)) * item[p.dtype]
            out[p.name] = raw[p.data : p.data + n]
    return out


def covers(layout: Layout) -> None:
    at = 0
    for p in layout.parts:
        assert p.offset == at
        at += p.length
    assert at == layout.size


def sample_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "embed.weight": rng.standard_normal((64, 32)).astype(np.float32),
        "layers.0.bias": rng.standard_normal(32).astype(np.float16),
        "layers.0.weight": rng.standard_normal((32, 32)).astype(np.float64),
        "step": np.array(7, dtype=np.int64),
        "mask": np.arange(10, dtype=np.uint8),
    }


def test_safetensors_written_by_the_library(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    arrays = sample_arrays()
    path = tmp_path / "model.bin"  # recognised by content, not by the name
    save_file(arrays, str(path), metadata={"format": "np"})
    layout = layout_of(path)
    assert layout.format == "safetensors"
    covers(layout)
    assert layout.parts[0].name == "(header)"
    tensors = {p.name: p for p in layout.parts if p.is_tensor}
    assert set(tensors) == set(arrays)
    assert tensors["embed.weight"].dtype == "F32"
    assert tensors["embed.weight"].shape == (64, 32)
    assert tensors["layers.0.bias"].dtype == "F16"
    assert tensors["step"].shape == ()
    got = tensor_bytes(path, layout)
    for name, arr in arrays.items():
        assert got[name] == arr.tobytes()


def test_npz_written_by_numpy(tmp_path: Path) -> None:
    arrays = sample_arrays()
    path = tmp_path / "weights.npz"
    np.savez(path, **arrays)
    layout = layout_of(path)
    assert layout.format == "npz"
    covers(layout)
    assert layout.parts[-1].name == "(central directory)"
    tensors = {p.name: p for p in layout.parts if p.is_tensor}
    assert set(tensors) == set(arrays)
    assert tensors["layers.0.weight"].dtype == "F64"
    assert tensors["embed.weight"].shape == (64, 32)
    got = tensor_bytes(path, layout)
    for name, arr in arrays.items():
        assert got[name] == arr.tobytes()


def test_compressed_npz_members_stay_whole(tmp_path: Path) -> None:
    path = tmp_path / "weights.npz"
    np.savez_compressed(path, **sample_arrays())
    with pytest.raises(FormatError):  # no member can be split: the file is kept whole
        layout_of(path)


def test_gguf_written_by_the_gguf_package(tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "model.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(2)
    writer.add_token_list([f"tok{i}" for i in range(300)])  # a vocabulary: skipped, not held
    arrays = {
        "token_embd.weight": np.arange(64 * 32, dtype=np.float32).reshape(64, 32),
        "blk.0.attn_norm.weight": np.ones(32, dtype=np.float16),
        "output.weight": np.full((3, 32), 0.5, dtype=np.float32),
    }
    for name, arr in arrays.items():
        writer.add_tensor(name, arr)
    q = gguf.quants.quantize(
        np.linspace(-1, 1, 64 * 32, dtype=np.float32).reshape(64, 32),
        gguf.GGMLQuantizationType.Q8_0,
    )
    writer.add_tensor("blk.0.ffn.weight", q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    layout = layout_of(path)
    assert layout.format == "gguf"
    covers(layout)
    tensors = {p.name: p for p in layout.parts if p.is_tensor}
    reader = gguf.GGUFReader(str(path))
    assert set(tensors) == {t.name for t in reader.tensors}
    for t in reader.tensors:
        part = tensors[t.name]
        assert part.data == t.data_offset
        assert part.dtype == t.tensor_type.name
        assert part.shape == tuple(int(d) for d in reversed(t.shape))
    assert tensors["blk.0.ffn.weight"].dtype == "Q8_0"
    got = tensor_bytes(path, layout)
    for name, arr in arrays.items():
        assert got[name] == arr.tobytes()


def test_torch_checkpoint_written_by_torch() -> None:
    """tests/data/tiny.pt was written by torch.save (see tests/data/README.md)."""
    path = DATA / "tiny.pt"
    layout = layout_of(path)
    assert layout.format == "torch"
    covers(layout)
    tensors = {p.name: p for p in layout.parts if p.is_tensor}
    assert tensors["fc1.weight"].dtype == "F32"
    assert tensors["fc1.weight"].shape == (8, 4)
    assert tensors["fc2.bias"].shape == (2,)
    got = tensor_bytes(path, layout)
    expected = json.loads((DATA / "tiny.pt.json").read_text())
    for name, values in expected.items():
        assert np.frombuffer(got[name], dtype=np.float32).tolist() == pytest.approx(values)


def test_unknown_files_are_kept_whole(tmp_path: Path) -> None:
    import zipfile

    for data in (b"", b"hello world\n" * 100, b"GGUF", b"PK\x03\x04" + b"\0" * 50):
        with pytest.raises(FormatError):
            layout_of_bytes(data)
    path = tmp_path / "plain.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "not tensors")
    with pytest.raises(FormatError):
        layout_of(path)


def safetensors_bytes(header: object, body: bytes = b"\0" * 64) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


@pytest.mark.parametrize(
    "header",
    [
        {
            "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
            "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
        },  # overlap
        {"a": {"dtype": "F32", "shape": [100], "data_offsets": [0, 400]}},  # past the end
        {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}},  # shape does not fit
        {"a/b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
        {"..": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
        {"a\tb": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
        {"a\nb": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
        {"a\x1bb": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
        {"(header)": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
        {"a": {"dtype": "F32\t", "shape": [4], "data_offsets": [0, 16]}},
        {"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}},
        {"a": {"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}},
        {"a": "not a table"},
        ["not", "an", "object"],
    ],
)
def test_hostile_safetensors_headers_are_kept_whole(header: object) -> None:
    with pytest.raises(FormatError):
        layout_of_bytes(safetensors_bytes(header))


def test_a_2_gib_header_is_not_read() -> None:
    data = struct.pack("<Q", 2 << 30) + b"{" + b" " * 100
    with pytest.raises(FormatError):
        recognise(io.BytesIO(data), 3 << 30)  # claims a file large enough to hold it


def test_gguf_with_huge_counts_is_kept_whole() -> None:
    for counts in ((1 << 40, 0), (0, 1 << 40), (1, 0)):
        data = b"GGUF" + struct.pack("<IQQ", 3, *counts) + b"\0" * 64
        with pytest.raises(FormatError):
            layout_of_bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.sampled_from([b"", b"GGUF\x03\0\0\0", b"PK\x03\x04"]))
def test_fuzzed_headers_never_crash(body: bytes, prefix: bytes) -> None:
    data = prefix + body
    try:
        layout = layout_of_bytes(data)
    except FormatError:
        return
    covers(layout)


def real_headers() -> list[bytes]:
    from safetensors.numpy import save

    npz = io.BytesIO()
    np.savez(npz, w=np.ones(8, np.float32), b=np.zeros(3, np.int64))
    tensors = {"w": np.ones((4, 4), np.float32), "b": np.zeros(4, np.float16)}
    return [save(tensors), npz.getvalue(), (DATA / "tiny.pt").read_bytes()]


REAL = real_headers()


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(REAL),
    st.lists(st.tuples(st.integers(0), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_mutated_real_headers_never_crash(original: bytes, changes: list[tuple[int, int]]) -> None:
    mutated = bytearray(original)
    for at, value in changes:
        mutated[at % len(mutated)] = value
    try:
        layout = layout_of_bytes(bytes(mutated))
    except FormatError:
        return
    covers(layout)
