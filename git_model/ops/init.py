"""`git model init`: set git-model up in a clone (safe to run again)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import CONFIG_PATH
from ..manifest import MANIFEST_PATH, Manifest, format_manifest
from . import notes_sync
from .context import Context
from .hookinstall import install

CONFIG_TEMPLATE = (
    "# git-model team settings (tracked). Personal overrides: git config model.<key> <value>\n"
    '# link_type = "copy"          # copy | reflink | hardlink | symlink\n'
    "# max_git_file_size = 10485760  # block commits of larger files into git itself\n"
)


@dataclass
class InitResult:
    created: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)  # hooks installed or updated now
    chained: list[str] = field(default_factory=list)  # existing hooks that now run first
    hooks_dir: str = ""
    restored: int = 0
    not_restored: int = 0  # files whose bytes are in no cache or remote (or arrived corrupt)


def init(ctx: Context, *, hooks: bool = True) -> InitResult:
    result = InitResult()
    ctx.cache.ensure()
    fresh_clone = (ctx.root / MANIFEST_PATH).is_file()
    if not (ctx.root / MANIFEST_PATH).is_file():
        ctx.write_file(MANIFEST_PATH, format_manifest(Manifest()))
        result.created.append(MANIFEST_PATH)
    if not (ctx.root / CONFIG_PATH).is_file():
        ctx.write_file(CONFIG_PATH, CONFIG_TEMPLATE.encode())
        result.created.append(CONFIG_PATH)
    setup = install(ctx.repo, shims=hooks)
    result.hooks = setup.hooks.put_in_place
    result.chained, result.hooks_dir = setup.hooks.chained, str(setup.hooks.hooks_dir)
    if setup.attributes_changed:
        result.created.append(".gitattributes")
    if result.created:
        ctx.repo.add(result.created)
    notes_sync.setup(ctx.repo, fetch=fresh_clone)
    if fresh_clone:
        from .checkout import checkout, default_fetcher

        report = checkout(ctx, fetch=default_fetcher(ctx), keep_paths=False)
        result.restored = report.files_written
        result.not_restored = len(report.missing) + len(report.corrupt)
    return result
