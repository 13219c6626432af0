"""quote_path quotes as git does; visible lets no control character through.

The reference is real git: one repository holding a file for every byte value and a few
multi-byte and invalid UTF-8 names, listed once by `git ls-files` with core.quotePath on and
off. Hypothesis then checks the properties over arbitrary text: the quoted form holds no control
character and unquotes to the original bytes.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from git_model import termtext
from git_model.termtext import quote_path, visible

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # newline and tab excepted


def _names() -> list[bytes]:
    names = [b"n" + bytes([b]) + b"x" for b in range(1, 256) if b != ord("/")]
    names += [
        "é".encode(),
        "日本".encode(),
        "\u0085c1".encode(),  # a C1 control, valid UTF-8
        "\u202eevil".encode(),
        b"bad\xff\xfe",
        b"half\xc3",
        b"e\x1b]0;pwn\x07red",
        b"plain",
        b"with space",
    ]
    return names


def _ls_files(repo: Path, setting: str) -> list[bytes]:
    out = subprocess.run(
        ["git", "-c", f"core.quotePath={setting}", "ls-files"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    return out.split(b"\n")[:-1]


def _ls_files_z(repo: Path) -> list[bytes]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True)
    return out.stdout.split(b"\0")[:-1]


def test_quote_path_matches_git_for_every_byte(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    for name in _names():
        if b"\n" in name:
            continue
        (repo.joinpath(os.fsdecode(name))).write_bytes(b"")
    (repo / os.fsdecode(b"n\nx")).write_bytes(b"")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    raw = _ls_files_z(repo)  # same order as the quoted listings
    assert len(raw) == len(_names())
    for setting in (True, False):
        for name, shown in zip(raw, _ls_files(repo, "true" if setting else "false")):
            path = name.decode("utf-8", "surrogateescape")
            ours = quote_path(path, quote_path_setting=setting)
            if setting or _git_false_matches(name):
                assert ours.encode("utf-8", "surrogateescape") == shown, name
            else:
                # deliberate: C1 controls and invalid UTF-8 stay quoted with quotePath=false
                assert not _CONTROL.search(ours)
                assert ours == quote_path(path, quote_path_setting=True), name


def _git_false_matches(name: bytes) -> bool:
    """Does git's core.quotePath=false output match ours (no C1, valid UTF-8)?"""
    try:
        text = name.decode()
    except UnicodeDecodeError:
        return False
    return not re.search(r"[\x80-\x9f]", text)


def test_examples() -> None:
    assert quote_path("e\x1b]0;pwn\x07red") == '"e\\033]0;pwn\\ared"'
    assert quote_path("a b/c.txt") == "a b/c.txt"
    assert quote_path("é", quote_path_setting=True) == '"\\303\\251"'
    assert quote_path("é", quote_path_setting=False) == "é"
    assert quote_path("bad\udcff", quote_path_setting=False) == '"bad\\377"'
    assert visible("acc\x1b]0;pwned\x07") == "acc\\x1b]0;pwned\\x07"
    assert visible("a\nb\tc") == "a\\nb\\tc"
    assert visible("a\nb\tc\r", multiline=True) == "a\nb\tc\\r"
    assert visible("x\x85\x7f\udcfe") == "x\\x85\\x7f\\xfe"
    assert visible('ordinary text, é 日本 \\ "') == 'ordinary text, é 日本 \\ "'


def test_setting_is_read_once_and_only_for_non_ascii(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run(["git", "config", "core.quotePath", "false"], check=True)
    calls: list[list[str]] = []
    real_run = subprocess.run

    def counting_run(args: list[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
        calls.append(args)
        return real_run(args, **kw)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(subprocess, "run", counting_run)  # (imported when needed)
    termtext.set_quote_path_setting(None)
    try:
        assert quote_path("tab\there") == '"tab\\there"'
        assert calls == []
        assert quote_path("é") == "é"
        assert quote_path("ü") == "ü"
        assert len(calls) == 1
    finally:
        termtext.set_quote_path_setting(None)


_ESC = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote(shown: str) -> bytes:
    """git's unquote_c_style, for the round trip."""
    if not shown.startswith('"'):
        return shown.encode("utf-8", "surrogateescape")
    assert shown.endswith('"') and len(shown) >= 2
    body, out, i = shown[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            assert ch != '"'
            out += ch.encode("utf-8", "surrogateescape")
            i += 1
        elif body[i + 1] in _ESC:
            out.append(_ESC[body[i + 1]])
            i += 2
        else:
            out.append(int(body[i + 1 : i + 4], 8))
            i += 4
    return bytes(out)


_paths = st.binary(min_size=1, max_size=40).map(lambda b: b.decode("utf-8", "surrogateescape"))


@settings(max_examples=500, deadline=None)
@given(_paths | st.text(min_size=1), st.booleans())
def test_quote_path_round_trips_and_hides_controls(path: str, setting: bool) -> None:
    shown = quote_path(path, quote_path_setting=setting)
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]", shown)
    if setting:
        assert shown.isascii()
    try:
        original = path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return  # a lone surrogate git can never produce: quoted, but not a byte string
    assert _unquote(shown) == original
    if re.fullmatch(r"[\x20-\x21\x23-\x5b\x5d-\x7e]*", path):
        assert shown == path


@settings(max_examples=500, deadline=None)
@given(st.text() | _paths, st.booleans())
def test_visible_lets_no_control_through(text: str, multiline: bool) -> None:
    shown = visible(text, multiline=multiline)
    allowed = "\n\t" if multiline else ""
    assert all(ch in allowed or not _CONTROL.match(ch) for ch in shown if ch not in "\n\t")
    assert not any(ch in "\n\t" for ch in shown) or multiline
    assert not re.search(r"[\ud800-\udfff]", shown)
    shown.encode("utf-8")  # always printable
    if not re.search(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]", text):
        assert shown == text
