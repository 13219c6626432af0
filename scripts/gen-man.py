"""Write git_model/man/man1/git-model.1 from the CLI's own help texts.

`git model --help` is git's, not ours: git turns it into `man git-model`. The page ships
inside the package (package data) and is installed where man looks for it (pyproject
data-files, `<prefix>/share/man/man1`; see git_model/manpage.py), so that works as for any git
command. The page is the `-h` text of the group and of every command, verbatim, so it never
drifts from the CLI; tests/test_cli_help.py checks that the committed page is current.

    python scripts/gen-man.py            # rewrite git_model/man/man1/git-model.1
    python scripts/gen-man.py --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from git_model import __version__
from git_model.cli.app import cli

PAGE = Path(__file__).resolve().parent.parent / "git_model" / "man" / "man1" / "git-model.1"


def help_text(args: list[str]) -> str:
    ctx = cli.make_context("git model", list(args), resilient_parsing=True)
    cmd: click.Command = cli
    for name in args[:-1]:
        sub = cmd.get_command(ctx, name) if isinstance(cmd, click.Group) else None
        assert sub is not None, name
        ctx = sub.make_context(name, [], parent=ctx, resilient_parsing=True)
        cmd = sub
    formatter = ctx.make_formatter()
    formatter.width = 78
    cmd.format_help(ctx, formatter)
    return formatter.getvalue()


def roff_block(text: str) -> str:
    lines = []
    for line in text.rstrip().splitlines():
        line = line.replace("\\", "\\e")
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return ".nf\n" + "\n".join(lines) + "\n.fi\n"


def page() -> str:
    ctx = click.Context(cli)
    out = [
        f'.TH GIT-MODEL 1 "" "git-model {__version__}" "git-model manual"\n',
        ".SH NAME\ngit-model \\- version machine-learning models the way git versions code\n",
        ".SH SYNOPSIS\n.B git model\n[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...\n",
        ".SH DESCRIPTION\n",
        roff_block(help_text(["-h"])),
    ]
    for name in cli.list_commands(ctx):
        cmd = cli.get_command(ctx, name)
        out.append(f".SH git model {name}\n")
        sub_names = cmd.list_commands(ctx) if isinstance(cmd, click.Group) else []
        out.append(roff_block(help_text([name, "-h"])))
        for sub in sub_names:
            out.append(f".SS git model {name} {sub}\n")
            out.append(roff_block(help_text([name, sub, "-h"])))
    out.append(".SH SEE ALSO\nThe README of git-model; \\fBgit\\fR(1), \\fBgitattributes\\fR(5).\n")
    return "".join(out)


def main() -> int:
    text = page()
    if "--check" in sys.argv:
        current = PAGE.read_text() if PAGE.exists() else ""
        if current != text:
            print(
                "git_model/man/man1/git-model.1 is out of date: run python scripts/gen-man.py",
                file=sys.stderr,
            )
            return 1
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
