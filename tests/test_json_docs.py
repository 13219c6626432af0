"""Every `--json` document keeps the house conventions and is documented in docs/json.md.

One session (two clones of a bare origin, a directory object store) runs every command that
takes `--json`: the ones that change something once, the read-only ones twice.
Each document must be canonical (sorted keys, two-space indent, `"format": 1`), list the same
fields in every item of a list (a field that does not apply is null, never absent), name only
fields that its command's section of docs/json.md names, and, for a read-only command, print the
same bytes twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from conftest import Shell

DOCS = Path(__file__).resolve().parent.parent / "docs" / "json.md"

# Objects keyed by data rather than by field name: metric names, stages, hyperparameter keys,
# git config keys, model names, paths. Their values are still checked.
DATA_MAPS = {"metrics", "stages", "params", "options", "versions", "kinds"}
# Sections a command's document borrows from: pull nests the fetch and checkout documents; the
# metrics commands print note records, documented with the note format.
BORROWS = {
    "pull": ["fetch", "checkout"],
    "metrics set": ["Note records"],
    "metrics show": ["Note records"],
    "run": ["Note records"],
    "bisect": ["diff"],
}


@dataclass
class Run:
    args: tuple[str, ...]
    first: str
    second: str | None = None  # the rerun of a read-only command


@dataclass
class Session:
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def record(self, sh: Shell, *args: str, read_only: bool = False) -> None:
        if "--" in args:  # (`run … -- CMD`: the option goes before CMD)
            cut = args.index("--")
            args = (*args[:cut], "--json", *args[cut:])
            first = sh.model(*args).stdout
        else:
            first = sh.model(*args, "--json").stdout
        second = sh.model(*args, "--json").stdout if read_only else None
        name = " ".join(args[:2]) if args[0] in ("remote", "metrics") else args[0]
        self.runs.setdefault(name, []).append(Run(args, first, second))


def run_session(root: Path) -> Session:
    """Two clones of a bare origin sharing a directory object store; every --json command."""
    out = Session()
    origin = root / "origin.git"
    Shell(root).git("init", "-q", "--bare", str(origin))
    Shell(root).git("clone", "-q", str(origin), "alice")
    alice = Shell(root / "alice")
    out.record(alice, "init")
    alice.write("model.bin", b"w" * 1000)
    alice.write("data/train/a.csv", "a\n")
    alice.write("data/train/b.csv", "b\n")
    alice.model("add", "model.bin", "--model", "digits")
    out.record(
        alice, "add", "data/train", "--model", "digits", "--kind", "data", "--param", "seed=1"
    )
    alice.model("remote", "add", "origin", str(root / "store"), "--default")
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "v1")
    out.record(alice, "metrics", "set", "accuracy=0.9", "--model", "digits")
    out.record(alice, "push")
    alice.git("push", "-q", "origin", "main")
    out.record(alice, "tag", "digits")
    alice.write("data/train/c.csv", "c\n")
    alice.model("add", "data/train", "--model", "digits", "--kind", "data", "--param", "seed=2")
    alice.git("commit", "-q", "-m", "v2")
    out.record(alice, "promote", "digits", "prod")  # registers v0.0.2 on the way
    alice.model("promote", "digits", "staging", "v0.0.1")
    out.record(alice, "demote", "digits", "staging")
    alice.model("push", "-q")
    alice.git("push", "-q", "origin", "main")
    alice.write("model.bin", b"changed by hand")
    out.record(alice, "status", read_only=True)
    out.record(alice, "checkout")  # keeps the hand-made bytes in the cache first
    out.record(alice, "run", "--model", "digits", "--", "true")  # trained already: reused
    alice.model("metrics", "set", "accuracy=0.5", "--model", "digits")
    out.record(alice, "bisect", "accuracy", "--min", "0.8", "HEAD~1", "HEAD", read_only=True)
    for args in (
        ("verify",),
        ("remote", "list"),
        ("gc", "--dry-run", "--keep-days", "0"),
        ("registry",),
        ("registry", "digits"),
        ("diff", "HEAD~1", "HEAD"),
        ("log",),
        ("show",),
        ("metrics", "show", "HEAD~1"),
    ):
        out.record(alice, *args, read_only=True)
    out.record(alice, "watch")
    out.record(alice, "watch", "--status", read_only=True)
    out.record(alice, "watch", "--stop")
    Shell(root).git("clone", "-q", str(origin), "bob")
    bob = Shell(root / "bob")
    bob.model("init", "--no-hooks")
    out.record(bob, "fetch", "--all")
    out.record(bob, "pull")
    out.record(alice, "uninstall")
    return out


def sections() -> dict[str, str]:
    """docs/json.md's `## ` sections, under each command their heading names (`git model X`)
    and under the heading's own text."""
    found: dict[str, str] = {}
    for chunk in re.split(r"^## ", DOCS.read_text(), flags=re.M)[1:]:
        heading = chunk.split("\n", 1)[0]
        names = re.findall(r"`git model ((?:remote |metrics )?[a-z]+)", heading)
        names = names or [heading.split(" (")[0]]  # e.g. "Note records"
        for name in names:
            found[name] = found.get(name, "") + chunk
    return found


def field_names(value: Any, parent: str | None = None) -> set[str]:
    names: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if parent not in DATA_MAPS:
                names.add(key)
            names |= field_names(item, None if parent in DATA_MAPS else key)
    elif isinstance(value, list):
        for item in value:
            names |= field_names(item)
    return names


def uneven_lists(value: Any, where: str = "") -> list[str]:
    """Lists of objects whose items do not all have the same fields (note records may)."""
    bad: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            bad += uneven_lists(item, f"{where}.{key}")
    elif isinstance(value, list):
        shapes = {tuple(sorted(item)) for item in value if isinstance(item, dict)}
        if len(shapes) > 1 and not where.endswith(".records"):
            bad.append(where)
        for item in value:
            bad += uneven_lists(item, where + "[]")
    return bad


def json_commands() -> set[str]:
    """Every command, or group subcommand, that has a --json option."""
    from git_model.cli.app import cli

    ctx = click.Context(cli)
    found = set()
    for name in cli.list_commands(ctx):
        cmd = cli.get_command(ctx, name)
        assert cmd is not None
        subs: Mapping[str, click.Command] = (
            cmd.commands if isinstance(cmd, click.Group) else {"": cmd}
        )
        for sub, command in subs.items():
            if any(p.name == "as_json" for p in command.params):
                found.add(f"{name} {sub}".strip())
    return found


def test_every_json_document_is_canonical_documented_and_stable(tmp_path: Path) -> None:
    # one test, not one per command: under xdist a shared fixture would be built once per worker
    session = run_session(tmp_path)
    assert set(session.runs) == json_commands(), "run every command that takes --json"
    docs = sections()
    problems: list[str] = []
    for command, runs in sorted(session.runs.items()):
        if command not in docs:
            problems.append(f"{command}: no section in docs/json.md")
            continue
        text = docs[command] + "".join(docs[other] for other in BORROWS.get(command, []))
        for run in runs:
            label = "git model " + " ".join(run.args) + " --json"
            doc = json.loads(run.first)
            if run.first != json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n":
                problems.append(f"{label}: not sorted, two-space indented and newline-terminated")
            if doc.get("format") != 1:
                problems.append(f'{label}: no top-level "format": 1')
            for where in uneven_lists(doc):
                problems.append(f"{label}: items of {where} do not all have the same fields")
            for key in sorted(field_names(doc) - {"format"}):  # the top-level one: just above
                if f"`{key}`" not in text:
                    problems.append(f"{label}: field {key!r} is not in its docs/json.md section")
            if run.second is not None and run.second != run.first:
                problems.append(f"{label}: read-only, yet a second run printed other bytes")
    assert not problems, "\n".join(problems)
