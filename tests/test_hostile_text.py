"""Text written by others never reaches the terminal raw (issue 20).

A teammate's repository can hold file names, notes (metric names and values, model names,
authors, hosts), commit subjects and tag messages with any control character in them. Each test
builds ONE repository holding many hostile names at once and runs every reporting command over
it: no control character other than newline and tab may reach stdout or stderr, no one-line
field may start a line of its own, paths are quoted as git quotes them, and `--json` carries
the original text exactly. Hypothesis varies the note fields and tag messages over a few
examples on the same repository (each example runs real git).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Any

import pytest
from conftest import Shell
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# every C0 control but NUL, DEL, and the C1 controls; newline and a fake line too
EVERY_CONTROL = "".join(chr(c) for c in [*range(1, 0x20), 0x7F, *range(0x80, 0xA0)])
HOSTILE = "x\x1b]0;pwned\x07\x1b[2J" + EVERY_CONTROL + "\u2028\nFAKE-LINE"
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# hypothesis examples per test: a few in the default run (each runs real git several times),
# many more under -m slow
EXAMPLES = [2, pytest.param(25, marks=pytest.mark.slow)]


def clean(proc: subprocess.CompletedProcess[str]) -> str:
    """The output of a command, checked: no raw control character, no injected line."""
    for stream in (proc.stdout, proc.stderr):
        found = RAW_CONTROL.search(stream)
        assert found is None, f"raw {found.group()!r} in {proc.args}: {stream!r}"
        assert not any(line.startswith("FAKE-LINE") for line in stream.split("\n")), stream
    return proc.stdout + proc.stderr


def git_quoted(repo: Shell, path: str) -> str:
    """How git itself prints `path` (ls-files lists ignored files too without --exclude)."""
    out = subprocess.run(
        ["git", "ls-files", "--others", "--", path],
        cwd=repo.cwd,
        capture_output=True,
        check=True,
    ).stdout
    return out.decode().rstrip("\n")


# names a listing can hold: everything but NUL, '/', newline, CR and backslash
PATH_NAMES = [
    "e\x1b]0;pwn\x07red",
    "tab\there",
    "".join(chr(c) for c in range(1, 0x20) if chr(c) not in "\n\r"),
    "del\x7f",
    "c1\x85\x9b[31m",
    'quote"é日本',
    "ls\u2028x",
]


def test_paths_in_tracked_directory_are_quoted_everywhere(repo: Shell) -> None:
    directory = "e\x1b]0;dir\x07"
    repo.write(f"{directory}/plain.csv", "a\n")
    repo.model("add", directory, "--model", "m", "--kind", "data")
    clean(repo.git("commit", "-q", "-m", "one"))
    for i, name in enumerate(PATH_NAMES):
        repo.write(f"{directory}/{name}", f"{i}\n")
    expected = {git_quoted(repo, f"{directory}/{name}") for name in PATH_NAMES}

    status = clean(repo.model("-v", "status"))
    assert all(q in status for q in expected), status
    diff = clean(repo.model("diff"))
    assert '      + "e\\033]0;pwn\\ared"\n' in diff  # named inside its directory, quoted alike
    files = json.loads(repo.model("diff", "--json").stdout)
    added = [f for m in files["models"] for c in m["components"] for f in c["files"]["added"]]
    assert sorted(added) == sorted(PATH_NAMES)

    # the commit hook records the changed directory itself, and names it
    commit = clean(repo.git("commit", "-q", "--allow-empty", "-m", "two"))
    assert git_quoted_artifact(directory) in commit
    clean(repo.model("diff", "HEAD~1", "HEAD"))
    clean(repo.model("show"))
    clean(repo.model("log"))
    clean(repo.model("status"))
    # the checkout hooks restore the directory without, then with, the hostile names
    clean(repo.git("checkout", "-q", "HEAD~1"))
    assert not (repo.cwd / directory / PATH_NAMES[0]).exists()
    clean(repo.git("checkout", "-q", "-"))
    assert (repo.cwd / directory / PATH_NAMES[0]).read_bytes() == b"0\n"
    # a hostile artifact missing from the work tree: the advice quotes it for the shell
    shutil.rmtree(repo.cwd / directory)
    missing = clean(repo.model("status"))
    assert "$'e\\033]0;dir\\a'" in missing


def git_quoted_artifact(path: str) -> str:
    from git_model.termtext import quote_path

    return quote_path(path, quote_path_setting=True)


def test_a_name_that_is_not_utf8_is_refused_in_one_quoted_line(repo: Shell) -> None:
    repo.write("d/a.csv", "a\n")
    repo.model("add", "d")
    (repo.cwd / "d").joinpath(b"bad\xff".decode("utf-8", "surrogateescape")).write_bytes(b"x")
    proc = repo.model("add", "d", check=False)
    assert proc.returncode == 1
    out = clean(proc)
    assert out.count("\n") == 1 and '"d/bad\\377"' in out, out
    assert "Traceback" not in out


def _note(repo: Shell, commit: str, records: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    repo.run(
        "git",
        "notes",
        "--ref=refs/notes/model",
        "add",
        "-f",
        "-F",
        "-",
        commit,
        input=text.encode(),
    )


_text = st.text(
    st.characters(min_codepoint=1, max_codepoint=0x2FFF, blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
)


@pytest.mark.parametrize("examples", EXAMPLES)
def test_note_fields_subjects_and_tag_messages_are_made_visible(repo: Shell, examples: int) -> None:
    repo.write("model.bin", b"w" * 100)
    repo.model("add", "model.bin", "--model", "digits")
    repo.git("commit", "-q", "-m", "v1")
    repo.write("model.bin", b"v" * 100)
    repo.model("add", "model.bin")
    repo.git("commit", "-q", "--cleanup=verbatim", "-m", f"v2 {HOSTILE}")
    repo.model("tag", "digits", "-m", HOSTILE)
    head = repo.git("rev-parse", "HEAD").stdout.strip()
    versions = repo.git("notes", "--ref=refs/notes/model", "show", head).stdout

    def check(field: str) -> None:
        hostile = {
            "format": 1,
            "type": "metrics",
            "time": f"2030-01-01T00:00:00.000000Z{field}",
            "model": field,
            "metrics": {field: field, f"acc{field}": 0.5},
            "author": field,
            "host": field,
        }
        digits = {**hostile, "model": "digits", "time": "2029-01-01T00:00:00.000000Z"}
        records = [json.loads(line) for line in versions.splitlines() if line]
        _note(repo, head, [*records, hostile, digits])
        for args in (
            ("log",),
            ("log", "digits"),
            ("show",),
            ("metrics", "show"),
            ("diff", "HEAD~1", "HEAD"),
            ("registry",),
            ("registry", "digits"),
        ):
            clean(repo.model(*args))
        for verb in ("promote", "demote"):  # a tag message each, then the history shows them
            clean(repo.model(verb, "digits", "prod", "-m", field))
        clean(repo.model("registry", "digits"))
        shown = json.loads(repo.model("metrics", "show", "--json").stdout)
        assert hostile in shown["records"]  # --json round-trips the text exactly
        names = {(m["model"], m["name"]) for m in shown["metrics"]}
        assert (field, field) in names and ("digits", f"acc{field}") in names

    message = "tag \x1b]0;pwned\x07\x9b2J message"
    clean(repo.model("promote", "digits", "staging", "-m", message))
    history = json.loads(repo.model("registry", "digits", "--json").stdout)["history"]
    assert message in [event["message"] for event in history]  # --json: the text itself
    check(HOSTILE)

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(_text)
    def hypothesis_examples(field: str) -> None:
        check(field)

    hypothesis_examples()


def test_control_characters_refused_in_names_at_entry(repo: Shell) -> None:
    repo.write("model.bin", b"w")
    for args in (
        ("add", "model.bin", "--model", "bad\x1bname"),
        ("add", "--model", "m", "--param", "lr\x07=1"),
        ("metrics", "set", "acc\x1b]0;x\x07=0.5"),
        ("tag", "bad\x1bname"),
    ):
        proc = repo.model(*args, check=False)
        assert proc.returncode != 0, args
        out = clean(proc)
        assert out.count("\n") == 1, out


# -- listed paths, any bytes: status -v prints each as git prints it, or refuses in one line ---

_name_bytes = (
    st.lists(
        st.integers(min_value=1, max_value=255).filter(lambda b: b != ord("/")),
        min_size=1,
        max_size=6,
    )
    .map(bytes)
    .filter(lambda b: b not in (b".", b".."))
)
# what the listing format cannot hold (paths.check_relpath): refused in one quoted line
_UNLISTABLE = re.compile(rb"[\n\r\\]")


def _listable(name: bytes) -> bool:
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return _UNLISTABLE.search(name) is None


def _git_lines(repo: Shell, *args: str) -> list[str]:
    out = subprocess.run(["git", *args], cwd=repo.cwd, capture_output=True, check=True).stdout
    return out.decode("utf-8", "replace").split("\n")[:-1]


@pytest.mark.parametrize("examples", EXAMPLES)
def test_any_listed_path_prints_as_git_prints_it(repo: Shell, examples: int) -> None:
    repo.write("d/plain.csv", "a\n")
    repo.model("add", "d", "--model", "m", "--kind", "data")
    repo.git("commit", "-q", "-m", "one")
    folder = bytes(repo.cwd / "d")
    every_control = bytes([*range(1, 0x20), 0x7F])
    fixed = [every_control.replace(b"\n", b"").replace(b"\r", b""), "é\u0085日".encode(), b'q"t']

    def check(names: list[bytes]) -> None:
        for old in os.listdir(folder):
            if old != b"plain.csv":
                os.unlink(os.path.join(folder, old))
        for name in names:
            with open(os.path.join(folder, name), "wb") as f:
                f.write(name)
        # git's own form of each path (ls-files lists ignored files too without --exclude)
        git_form = {line for line in _git_lines(repo, "ls-files", "--others", "--", "d")}
        git_form.discard("d/plain.csv")
        proc = repo.model("-v", "status", check=False)
        out = clean(proc)
        if not all(map(_listable, names)):
            assert proc.returncode == 1 and out.count("\n") == 1, out
            assert any(q in out for q in git_form), (out, git_form)
            return
        listed = {line[6:] for line in proc.stdout.split("\n") if line.startswith("    + ")}
        assert listed == git_form, (listed, git_form)
        doc = json.loads(repo.model("status", "--json").stdout)
        added = [a for row in doc["artifacts"] for a in row["added"]]
        assert sorted(added) == sorted(n.decode() for n in names)  # --json: the text itself

    check(fixed)
    shown = clean(repo.git("-c", "core.quotePath=false", "model", "-v", "status"))
    assert '"d/é\\302\\205日"' in shown  # printable non-ASCII as is, a C1 control quoted

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(st.lists(_name_bytes, min_size=1, max_size=4, unique=True))
    def hypothesis_examples(names: list[bytes]) -> None:
        check(names)

    hypothesis_examples()


def test_the_fast_status_quotes_as_the_full_one(repo: Shell) -> None:
    names = ["e\x1b]0;pwn\x07red.bin", "é.bin", 'q"uote.bin', "tab\there.bin", "plain.bin"]
    for name in names:
        repo.write(name, name)
    repo.model("add", *names, "--model", "m")
    repo.git("commit", "-q", "-m", "one")
    time.sleep(1.05 - time.time() % 1)  # past the stamps' racy second
    (repo.cwd / ".git/model/stamps").unlink()
    full = clean(repo.model("status"))  # worked out, and stamped
    code = (
        "import sys; from git_model.cli import main; code = main(['status']); "
        "sys.stdout.flush(); print('click' in sys.modules, file=sys.stderr); sys.exit(code)"
    )
    fast = subprocess.run(
        [sys.executable, "-c", code], cwd=repo.cwd, capture_output=True, text=True, check=True
    )
    assert fast.stderr.strip() == "False"  # the fast path answered
    assert fast.stdout == full
    for name in names:
        assert f"unchanged  {_git_lines(repo, 'ls-files', '--others', '--', name)[0]}\n" in full


def test_colour_codes_from_outside_are_visible_when_git_model_writes_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`safe` keeps an SGR code only where `style` could have written it: piped output (or
    NO_COLOR) gets no colour from git-model, so an escape in it came from outside text."""
    from git_model.cli import render

    monkeypatch.setattr(render, "use_color", lambda stream=None: False)
    assert "\x1b" not in render.safe("model \x1b[31mred\x1b[0m \x1b]0;title\x07")
    monkeypatch.setattr(render, "use_color", lambda stream=None: True)
    coloured = render.safe("\x1b[1mours\x1b[0m \x1b]0;title\x07")
    assert coloured.startswith("\x1b[1mours\x1b[0m ") and "\x1b]" not in coloured
