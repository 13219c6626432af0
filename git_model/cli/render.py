"""Output: text for people (colour only on a terminal, never with NO_COLOR), JSON for tools."""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

import click

from ..termtext import visible_lines

_OUR_STYLE = re.compile(r"(\x1b\[[0-9;]*m)")  # what click.style writes: colour and bold only


def _quiet() -> bool:
    ctx = click.get_current_context(silent=True)
    while ctx is not None and ctx.obj is None:
        ctx = ctx.parent
    return bool(ctx and ctx.obj and ctx.obj.get("quiet"))


def verbosity() -> int:
    ctx = click.get_current_context(silent=True)
    while ctx is not None and ctx.obj is None:
        ctx = ctx.parent
    return int(ctx.obj.get("verbose", 0)) if ctx and ctx.obj else 0


def use_color(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def style(text: str, **kwargs: Any) -> str:
    return click.style(text, **kwargs) if use_color() else text


def safe(message: str) -> str:
    """The last guard before the terminal: every control character but newline, tab and the
    colour codes `style` wrote is made visible. Each renderer has already quoted its paths
    (`quote_path`) and made its one-line fields visible (`visible`): this catches what a
    renderer missed, so no escape sequence from outside text reaches the terminal. Colour codes
    are kept only where `style` writes them (a terminal, no NO_COLOR): anywhere else one came
    from outside text and is made visible like any other control character."""
    if "\x1b" not in message or not use_color():
        return visible_lines(message)
    parts = _OUR_STYLE.split(message)
    return "".join(p if i % 2 else visible_lines(p) for i, p in enumerate(parts))


def say(message: str = "") -> None:
    if not _quiet():
        click.echo(safe(message))


def note(message: str) -> None:
    """Advice on stderr (kept even when stdout is piped)."""
    if not _quiet():
        click.echo(safe(message), err=True)


JSON_FORMAT = 1  # of every --json document: bumped when a field is removed or changes meaning


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")


def emit_json(data: dict[str, Any]) -> None:
    """Print one --json document the house way (docs/json.md): `"format"` at the top level,
    keys sorted, two-space indent, a final newline, so the same data gives the same bytes."""
    document = {"format": JSON_FORMAT, **data}
    click.echo(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def progress_bar(total: int | None, desc: str) -> Any:
    """A tqdm bar on stderr when it is a terminal; a no-op otherwise."""
    if _quiet() or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    # no monitor thread: it outlives the bar by up to 10 s, and a process running another
    # thread does not split work across processes (parallel.iter_split), as pull's checkout does
    tqdm.monitor_interval = 0
    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        leave=False,
        mininterval=0.5,
        delay=1.0,
    )


def stats_text(st: dict[str, float | None]) -> str:
    """`‖Δ‖/‖W‖ 0.0123, max |Δ| 0.5, 3.1% of elements`, a figure that means nothing shown as
    `-`, and the NaN or infinite elements of each side where there are any."""
    rel, top, share = (st.get(k) for k in ("relative_change", "max_abs_change", "fraction_changed"))
    rel_text = f"{rel:.3g}" if rel is not None else "- (W was 0)" if top is not None else "-"
    top_text = f"{top:.3g}" if top is not None else "-"
    text = f"‖Δ‖/‖W‖ {rel_text}, max |Δ| {top_text}, {share_text(share or 0.0)} of elements"
    bad_old, bad_new = int(st.get("non_finite_old") or 0), int(st.get("non_finite_new") or 0)
    if bad_old or bad_new:
        text += f", {bad_new:,} NaN or infinite (was {bad_old:,})"
    return text


def share_text(share: float) -> str:
    """A fraction as a percentage that never rounds a change away (or up to all)."""
    if 0 < share < 0.0005:
        return "<0.1%"
    if 0.9995 <= share < 1:
        return ">99.9%"
    return f"{100 * share:.1f}%"
