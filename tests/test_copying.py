"""Putting verified bytes into the work tree, by each way the system allows.

Checkout writes a new file unnamed (O_TMPFILE) and names it once verified, or through a temp
name where the system has no unnamed files; a large file replacing another is swapped in by
an exchange of names, or renamed over it where there is none. Every combination must give the
same result: the new bytes, the right mode, nothing left beside them, and corrupt bytes never.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import stat
import time
from pathlib import Path

import pytest
from conftest import stored

from git_model import copying, hashing, linuxcalls, newfiles
from git_model.cache import Cache
from git_model.errors import CorruptObject
from git_model.restore import is_temp_name

WAYS = [(True, True), (True, False), (False, True), (False, False)]


def settle(folder: Path) -> list[str]:
    """The names in `folder` once any removal left to a detached process has finished."""
    deadline = time.monotonic() + 30
    while any(map(is_temp_name, os.listdir(folder))) and time.monotonic() < deadline:
        time.sleep(0.02)
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("unnamed, exchange", WAYS)
def test_every_way_of_putting_a_file_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool, exchange: bool
) -> None:
    monkeypatch.setattr(newfiles, "_UNNAMED_WORKS", unnamed and newfiles._UNNAMED_WORKS)
    monkeypatch.setattr(linuxcalls, "_EXCHANGE_WORKS", exchange and linuxcalls._EXCHANGE_WORKS)
    cache = Cache(tmp_path / "model")
    cache.ensure()
    small, large = b"small bytes", os.urandom(3 << 20)
    work = tmp_path / "work"
    for name, data, executable in (
        ("new/deep/small.bin", small, False),  # a folder that does not exist yet
        ("run.sh", small, True),
        ("large.bin", large, False),
    ):
        dest = work / name
        cache.materialize(stored(cache, data), dest, executable=executable)
        assert dest.read_bytes() == data
        mode = stat.S_IMODE(dest.stat().st_mode)
        assert bool(mode & 0o100) == executable and mode & 0o600 == 0o600
    # replacing: a large file over a large one (swapped in), a small one over a large one
    other = os.urandom(2 << 20)
    cache.materialize(stored(cache, other), work / "large.bin")
    cache.materialize(stored(cache, small), work / "run.sh")
    assert (work / "large.bin").read_bytes() == other
    assert (work / "run.sh").read_bytes() == small
    assert settle(work) == ["large.bin", "new", "run.sh"]


@pytest.mark.parametrize("unnamed", [True, False])
def test_corrupt_object_never_reaches_the_work_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool
) -> None:
    monkeypatch.setattr(newfiles, "_UNNAMED_WORKS", unnamed and newfiles._UNNAMED_WORKS)
    cache = Cache(tmp_path / "model")
    cache.ensure()
    work = tmp_path / "work"
    work.mkdir()
    (work / "model.bin").write_bytes(b"the user's bytes")
    for data in (b"tiny", os.urandom(2 << 20)):
        oid = stored(cache, data)
        obj = cache.path(oid)
        obj.chmod(0o644)
        obj.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit rotten, in place
        with pytest.raises(CorruptObject):
            cache.materialize(oid, work / "model.bin")
        assert not obj.exists()  # quarantined
        assert (work / "model.bin").read_bytes() == b"the user's bytes"
        assert settle(work) == ["model.bin"]


def test_exchange_swaps_two_names_or_says_it_cannot(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("new")
    b.write_text("old")
    if linuxcalls.exchange(str(a), str(b)):
        assert (a.read_text(), b.read_text()) == ("old", "new")
    else:  # no renameat2 here: the caller renames instead
        assert (a.read_text(), b.read_text()) == ("new", "old")
    b.unlink()
    assert linuxcalls.exchange(str(a), str(b)) is False  # nothing to swap with


@pytest.mark.parametrize("kernel", [True, False])
def test_a_stored_copy_is_hashed_as_it_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel: bool
) -> None:
    """copy_and_hash_copy: the oid is of the bytes that landed in the copy, step by step
    (sizes just past a mapping's granularity and a copy step), with or without the kernel's
    copy_file_range."""
    if not kernel:

        def refuse(*_: object) -> int:
            raise OSError(errno.EXDEV, "cross-device")

        monkeypatch.setattr(os, "copy_file_range", refuse)
    monkeypatch.setattr(copying, "WRITE_BACK_STEP", 2 << 20)  # (several steps, quickly)
    for size in (copying.SMALL_FILE + 1, 2 * (2 << 20) + 4097):
        data = os.urandom(size)
        src, dst = tmp_path / "src", tmp_path / "dst"
        src.write_bytes(data)
        with open(src, "rb") as s, open(dst, "w+b") as d:
            oid, n = copying.copy_and_hash_copy(s.fileno(), d.fileno(), size, sync=True)
        assert (oid, n) == (hashlib.sha256(data).hexdigest(), size)
        assert dst.read_bytes() == data


@pytest.mark.parametrize("window", [hashing.MAPPED_STEP, mmap.ALLOCATIONGRANULARITY])
def test_a_mapped_hash_takes_any_range_and_stops_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    monkeypatch.setattr(hashing, "MAPPED_STEP", window)  # (small: one mapping at a time)
    data = os.urandom(3 * mmap.ALLOCATIONGRANULARITY + 123)
    path = tmp_path / "obj"
    path.write_bytes(data)
    with open(path, "rb") as f:
        for offset, length in ((0, None), (1, 5000), (4097, len(data)), (len(data), 10)):
            digest = hashlib.sha256()
            n = hashing.update_mapped(digest, f.fileno(), length, offset)
            part = data[offset:] if length is None else data[offset : offset + length]
            assert n == len(part) and digest.hexdigest() == hashlib.sha256(part).hexdigest()
