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
import re
import subprocess
from typing import Any

from conftest import Shell
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# every C0 control but NUL, DEL, and the C1 controls; newline and a fake line too
EVERY_CONTROL = "".join(chr(c) for c in [*range(1, 0x20), 0x7F, *range(0x80, 0xA0)])
HOSTILE = "x\x1b]0;pwned\x07\x1b[2J" + EVERY_CONTROL + "\u2028\nFAKE-LINE"
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(proc: subprocess.CompletedProcess[str]) -> str:
    """The output of a command, checked: no raw control character, no injected line."""
    for stream in (proc.stdout, proc.stderr):
        found = RAW_CONTROL.search(stream)
        assert found is None, f"raw {found.group()!r} in {proc.args}: {stream!r}"
        assert not any(line.startswith("FAKE-LINE") for line in stream.split("\n")), stream
    return proc.stdout + proc.stderr


def git_quoted(repo: Shell, path: str) -> str:
    """How git itself prints `path` (ls-files, core.quotePath default)."""
    return git_path_form(repo, path)


def git_path_form(repo: Shell, path: str) -> str:
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
    for name in PATH_NAMES:
        shown = subprocess.run(  # git quotes the name inside the directory the same way
            ["git", "ls-files", "--others", "--", f"{directory}/{name}"],
            cwd=repo.cwd,
            capture_output=True,
            check=True,
        ).stdout.decode()
        assert shown.strip() in status
    assert "+ " in diff
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
    # a hostile artifact missing from the work tree: the advice quotes it for the shell
    import shutil

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


def test_note_fields_subjects_and_tag_messages_are_made_visible(repo: Shell) -> None:
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
        shown = json.loads(repo.model("metrics", "show", "--json").stdout)
        assert hostile in shown["records"]  # --json round-trips the text exactly
        names = {(m["model"], m["name"]) for m in shown["metrics"]}
        assert (field, field) in names and ("digits", f"acc{field}") in names

    check(HOSTILE)

    @settings(
        max_examples=3,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(_text)
    def examples(field: str) -> None:
        check(field)

    examples()


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
