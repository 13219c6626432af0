"""What an artifact is, when `git model add` is not told: weights or data.

A directory is data (a data set of files). A file is weights when its name or its first bytes
say it is a model file of a known format, data when its name says it is a table or records of
a known format; anything else is left to the user (`--kind`), since a wrong guess would file
it under the wrong component of the model version. Only the first 16 bytes are read.
"""

from __future__ import annotations

import os
import struct

WEIGHTS_SUFFIXES = frozenset(
    {
        ".safetensors",
        ".gguf",
        ".ggml",
        ".onnx",
        ".pt",
        ".pth",
        ".ckpt",
        ".bin",  # pytorch_model.bin and its kind
        ".npz",
        ".pkl",
        ".pickle",
        ".joblib",
        ".keras",
        ".tflite",
    }
)
DATA_SUFFIXES = frozenset(
    {".csv", ".tsv", ".parquet", ".jsonl", ".arrow", ".feather", ".avro", ".orc", ".tfrecord"}
)


def infer_kind(path: str) -> str | None:
    """ "weights", "data", or None when the path does not say which it is."""
    if os.path.isdir(path):
        return "data"
    suffix = os.path.splitext(path)[1].lower()
    if suffix in WEIGHTS_SUFFIXES:
        return "weights"
    if suffix in DATA_SUFFIXES:
        return "data"
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    return "weights" if _weights_magic(head) else None


def _weights_magic(head: bytes) -> bool:
    if head.startswith(b"GGUF"):  # llama.cpp's GGUF
        return True
    if len(head) >= 10 and head[8:10] == b'{"':  # safetensors: u64 header length, JSON header
        size: int = struct.unpack("<Q", head[:8])[0]
        return 0 < size < 1 << 30
    # pickle protocol 2-5 (torch.save's legacy format, joblib, sklearn's pickles)
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5
