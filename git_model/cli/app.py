"""The click group: commands are imported only when they are run."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import click

# name -> (module under git_model.cli, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("workspace_cmds", "init_cmd", "Set git-model up in this clone (safe to rerun)."),
    "uninstall": (
        "workspace_cmds",
        "uninstall_cmd",
        "Remove the hooks (earlier hooks come back); keep the data.",
    ),
    "add": (
        "workspace_cmds",
        "add_cmd",
        "Track files or directories (weights, data, params, code).",
    ),
    "rm": ("workspace_cmds", "rm_cmd", "Stop tracking a path; the file stays."),
    "mv": ("move_cmds", "mv_cmd", "Move or rename a tracked artifact (models and kind kept)."),
    "rename": ("move_cmds", "rename_cmd", "Rename a model."),
    "status": ("workspace_cmds", "status_cmd", "Show how artifacts differ from the manifest."),
    "checkout": (
        "workspace_cmds",
        "checkout_cmd",
        "Restore artifacts of a revision into the work tree.",
    ),
    "verify": ("workspace_cmds", "verify_cmd", "Re-hash cache objects; quarantine corrupt ones."),
    "cat": ("workspace_cmds", "cat_cmd", "Write a cache object's bytes to stdout (verified)."),
    "tag": ("registry_cmds", "tag_cmd", "Register a model version as NAME@vX.Y.Z."),
    "promote": ("registry_cmds", "promote_cmd", "Put a model version in a stage (prod, staging…)."),
    "demote": ("registry_cmds", "demote_cmd", "Take a stage away from a model's versions."),
    "registry": (
        "registry_cmds",
        "registry_cmd",
        "Show models, versions, stages, hashes and metrics.",
    ),
    "diff": ("version_cmds", "diff_cmd", "Show why model versions differ, with metrics."),
    "log": ("version_cmds", "log_cmd", "List a model's versions through history."),
    "show": ("version_cmds", "show_cmd", "Show the models at a revision."),
    "metrics": ("version_cmds", "metrics_group", "Record or show metrics of a commit."),
    "run": (
        "run_cmds",
        "run_cmd",
        "Train unless these inputs were trained already (then restore).",
    ),
    "bisect": ("run_cmds", "bisect_cmd", "Find the commit whose metric crossed a line."),
    "remote": ("remote_cmds", "remote_group", "Add, list or remove remote object stores."),
    "push": ("remote_cmds", "push_cmd", "Upload the objects a remote lacks."),
    "fetch": ("remote_cmds", "fetch_cmd", "Download missing objects (verified) and notes."),
    "pull": ("remote_cmds", "pull_cmd", "Fetch, then restore the work tree's artifacts."),
    "gc": ("remote_cmds", "gc_cmd", "Drop cache objects nothing needs (never the only copy)."),
    "watch": (
        "watch_cmds",
        "watch_cmd",
        "Watch the artifacts so status and commits need not walk.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        cmd = getattr(importlib.import_module(f"git_model.cli.{module}"), attr)
        assert isinstance(cmd, click.Command)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


EPILOG = """\b
Everyday loop:
  git model init                       # once per clone
  git model add model.safetensors data/train
  git commit -m "train v1"             # the hook records weights, data and the model version
  git checkout HEAD~1                  # the hook puts the old weights and data back
  git model diff HEAD~1 HEAD           # what changed, and how the metrics moved
"""


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="git-model", prog_name="git-model")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.option("-v", "--verbose", count=True, help="Say more (repeatable).")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: int) -> None:
    """git-model: version machine-learning models the way git versions code.

    Weights and data stay out of git, in a content-addressed cache and a remote object
    store; git keeps a small manifest, and every commit records one model version hash.
    """
    ctx.obj = {"quiet": quiet, "verbose": 0 if quiet else verbose}


def _verbosity(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value:
        obj = ctx.ensure_object(dict)
        if param.name == "quiet":
            obj["quiet"], obj["verbose"] = True, 0
        else:
            obj["verbose"] = obj.get("verbose", 0) + int(value)


def command(**kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
    """A subcommand with the house defaults: -h, and -q / -v after the command name too."""
    kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})

    def decorate(f: Callable[..., Any]) -> click.Command:
        f = click.option(
            "-q",
            "--quiet",
            is_flag=True,
            expose_value=False,
            callback=_verbosity,
            help="Print only errors.",
        )(f)
        f = click.option(
            "-v",
            "--verbose",
            count=True,
            expose_value=False,
            callback=_verbosity,
            help="Say more (repeatable).",
        )(f)
        cmd: click.Command = click.command(**kwargs)(f)
        return cmd

    return decorate
