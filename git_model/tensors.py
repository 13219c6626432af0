"""Tensor listings (`.gitmodel/tensors/<path>.tsv`): what a model file is made of, in git.

A model file git-model recognises (see formats/) is stored by parts: its header, each tensor
(with the padding after it) and any other piece of its container are each one object in the
cache. The file's listing names them, one line per part in file order:

    git-model-tensors<TAB>1<TAB>FORMAT<TAB>SIZE
    OID<TAB>OFFSET<TAB>LENGTH<TAB>DATA<TAB>DTYPE<TAB>SHAPE<TAB>NAME

OID is the SHA-256 of the part's bytes [OFFSET, OFFSET+LENGTH); DATA is where the tensor's own
bytes start in the file, DTYPE its element type (F32, BF16, Q4_K…) and SHAPE its sizes
(`[4096,4096]`, `[]` for a scalar). A part that is no tensor (`(header)`, `(central directory)`…)
has `-` for all three. The parts cover the file exactly: the first at 0, each starting where
the one before ends, the last ending at SIZE. The manifest keeps the whole file's oid (what
versions and notes use) and, beside it, `layout = FORMAT` and `parts = ` the listing's SHA-256,
so a listing is verified on read as a directory's listing is: by its hash, then line by line.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from .errors import ManifestError
from .formats import FormatError, Layout, Part, check_name
from .hashing import Oid, hash_bytes
from .listing import read_recorded
from .manifest import Artifact, Reader
from .paths import GITMODEL_DIR

TENSORS_PREFIX = f"{GITMODEL_DIR}/tensors/"
MAGIC = "git-model-tensors"
FORMAT = 1
MAX_SIZE = 1 << 62


class TensorPart(NamedTuple):
    """One line of a tensor listing: a part of the file and the object that holds it."""

    oid: Oid
    offset: int
    length: int
    data: int | None
    dtype: str | None
    shape: tuple[int, ...] | None
    name: str

    @property
    def end(self) -> int:
        return self.offset + self.length

    @property
    def is_tensor(self) -> bool:
        return self.dtype is not None


class TensorListing(NamedTuple):
    format: str
    size: int
    parts: list[TensorPart]


def tensors_path(artifact_path: str) -> str:
    return f"{TENSORS_PREFIX}{artifact_path}.tsv"


def tensors_oid(data: bytes) -> Oid:
    return hash_bytes(data)


def with_oids(layout: Layout, oids: Iterable[Oid]) -> TensorListing:
    parts = [
        TensorPart(oid, p.offset, p.length, p.data, p.dtype, p.shape, p.name)
        for p, oid in zip(layout.parts, oids)
    ]
    return TensorListing(layout.format, layout.size, parts)


def _shape_text(shape: tuple[int, ...] | None) -> str:
    return "-" if shape is None else "[" + ",".join(map(str, shape)) + "]"


def format_tensors(listing: TensorListing) -> bytes:
    lines = [f"{MAGIC}\t{FORMAT}\t{listing.format}\t{listing.size}\n"]
    for p in listing.parts:
        data = "-" if p.data is None else str(p.data)
        dtype = "-" if p.dtype is None else p.dtype
        lines.append(
            f"{p.oid}\t{p.offset}\t{p.length}\t{data}\t{dtype}\t{_shape_text(p.shape)}\t{p.name}\n"
        )
    return "".join(lines).encode("utf-8")


def _number(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > MAX_SIZE:
        raise ValueError(text)
    return int(text)


def parse_tensors(data: bytes, what: str) -> TensorListing:
    """A tensor listing, every line checked: fields, names, and parts that cover the file."""

    def fail(detail: str) -> ManifestError:
        return ManifestError(
            f"{what}: {detail}; restore it with 'git checkout -- {what}' (or re-add the file)"
        )

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise fail("not UTF-8") from None
    if not text.endswith("\n"):
        raise fail("does not end with a newline")
    lines = text[:-1].split("\n")
    head = lines[0].split("\t")
    if len(head) != 4 or head[0] != MAGIC:
        raise fail("is not a tensor listing")
    if head[1] != str(FORMAT):
        raise fail(f"has format {head[1][:20]!r}; upgrade git-model to read it")
    try:
        fmt, size = check_name(head[2], "format"), _number(head[3])
    except (FormatError, ValueError):
        raise fail("has a bad first line") from None
    parts: list[TensorPart] = []
    names: set[str] = set()
    at = 0
    for n, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 7:
            raise fail(f"line {n} does not have 7 tab-separated fields")
        try:
            part = _part(fields)
        except (ValueError, FormatError) as e:
            raise fail(f"line {n} is not valid ({str(e)[:80]})") from None
        if part.offset != at:
            raise fail(f"line {n} does not start where the part before it ends")
        if part.data is not None and not part.offset <= part.data <= part.end:
            raise fail(f"line {n} puts its tensor outside its part")
        if part.name in names:
            raise fail(f"line {n} repeats the name of another part")
        names.add(part.name)
        parts.append(part)
        at = part.end
    if at != size:
        raise fail(f"its parts cover {at} bytes, not the {size} the file has")
    return TensorListing(fmt, size, parts)


def _part(fields: list[str]) -> TensorPart:
    oid_text, offset, length, data, dtype, shape, name = fields
    tensor = dtype != "-"
    if tensor != (data != "-") or tensor != (shape != "-"):
        raise ValueError("a tensor needs data, dtype and shape; a part that is not, none")
    if tensor:
        check_name(name)
        check_name(dtype, "dtype")
        if not (shape.startswith("[") and shape.endswith("]")):
            raise ValueError("bad shape")
        dims = tuple(_number(d) for d in shape[1:-1].split(",")) if shape != "[]" else ()
    else:
        if not (name.startswith("(") and name.endswith(")")):
            raise ValueError("a part that is no tensor is named in parentheses")
        check_name(name[1:-1], "part name")
    return TensorPart(
        Oid(oid_text),
        _number(offset),
        _number(length),
        _number(data) if tensor else None,
        dtype if tensor else None,
        dims if tensor else None,
        name,
    )


def parts_of(listing: TensorListing) -> list[Part]:
    """The listing as a layout's parts (no oids)."""
    return [Part(p.offset, p.length, p.name, p.dtype, p.shape, p.data) for p in listing.parts]


def read_tensors(read: Reader, art: Artifact) -> TensorListing:
    """The tensor listing of a file stored by parts: it must hash to the manifest's `parts`
    oid (looked for in the fallbacks of a work-tree reader too, as a directory's listing is)
    and describe a file of the artifact's size."""
    path = tensors_path(art.path)
    if art.parts is None:
        raise ManifestError(f"{art.path} is not stored by parts")
    data = read_recorded(read, path, art.parts)
    if data is None:
        raise ManifestError(
            f"{path} is missing for {art.path}; restore it with 'git checkout -- {path}'"
        )
    if tensors_oid(data) != art.parts:
        raise ManifestError(
            f"{path} does not match the parts oid the manifest gives {art.path}; "
            f"restore both with 'git checkout -- {GITMODEL_DIR}'"
        )
    listing = parse_tensors(data, path)
    if listing.size != art.size:
        raise ManifestError(f"{path} describes {listing.size} bytes but {art.path} has {art.size}")
    return listing
