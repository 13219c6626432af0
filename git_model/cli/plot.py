"""Charts of a metric across model versions: `git model log NAME --plot METRIC`.

A compact bar chart in the terminal, and a file a person can open: PNG or SVG through
matplotlib, or a self-contained HTML page with the chart as inline SVG and the values in a
table. matplotlib comes with the `plot` extra and is imported only here.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from ..errors import GitModelError, UsageError
from ..ops.history import LogEntry
from ..termtext import visible

INSTALL = "install matplotlib (git-model's [plot] extra): pip install matplotlib"


def points(entries: list[LogEntry], metric: str) -> list[tuple[str, float, LogEntry]]:
    """(label, value, entry) oldest first, for entries that recorded `metric` as a number."""
    out = []
    for e in reversed(entries):  # log lists newest first
        value = e.metrics.get(metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((visible(e.version[:7]), float(value), e))
    if not out:
        known = sorted({visible(k) for e in entries for k in e.metrics}) or ["none recorded"]
        raise GitModelError(
            f"no version has a numeric metric {metric!r} (metrics: {', '.join(known)}); "
            "record one with 'git model metrics set NAME=VALUE'"
        )
    return out


def terminal_chart(
    pts: list[tuple[str, float, LogEntry]], metric: str, title: str, width: int = 40
) -> str:
    """One bar per version, oldest at the top, scaled between the lowest and highest value."""
    values = [v for _, v, _ in pts]
    low, high = min(values), max(values)
    floor = low - (high - low) * 0.1 if high > low else low - abs(low) * 0.1 - 1e-9
    lines = [f"{visible(title)}: {visible(metric)} by version (oldest first)"]
    for label, value, entry in pts:
        eighths = round((value - floor) / ((high - floor) or 1) * width * 8)
        bar = "█" * (eighths // 8) + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[eighths % 8]
        lines.append(f"{label}  {visible(entry.date[:10])}  {value:>10.4g}  {bar}")
    return "\n".join(lines)


def write_chart(pts: list[tuple[str, float, LogEntry]], metric: str, title: str, out: Path) -> Path:
    suffix = out.suffix.lower()
    if suffix not in (".png", ".html", ".htm", ".svg"):
        raise UsageError(f"--output must end in .png, .svg or .html, not {out.name!r}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise GitModelError(f"writing a chart needs matplotlib; {INSTALL}") from None
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(pts)), 4))
    xs = list(range(len(pts)))
    ax.plot(xs, [v for _, v, _ in pts], marker="o")
    ax.set_xticks(xs, [label for label, _, _ in pts], rotation=30)
    ax.set_xlabel("model version")
    ax.set_ylabel(metric)
    ax.set_title(f"{title}: {metric} by version")
    ax.grid(alpha=0.3)
    for x, (_, v, _) in zip(xs, pts):
        ax.annotate(f"{v:g}", (x, v), textcoords="offset points", xytext=(0, 6), ha="center")
    fig.tight_layout()
    if suffix in (".png", ".svg"):
        fig.savefig(out, format=suffix[1:], dpi=120, metadata=_no_dates(suffix))
    else:
        svg = io.StringIO()
        fig.savefig(svg, format="svg", metadata={"Date": None})
        out.write_text(_html_page(svg.getvalue(), pts, metric, title), "utf-8")
    plt.close(fig)
    return out


def _no_dates(suffix: str) -> dict[str, Any]:
    return {"Date": None} if suffix == ".svg" else {}


def _html_page(svg: str, pts: list[tuple[str, float, LogEntry]], metric: str, title: str) -> str:
    rows = "\n".join(
        f"<tr><td><code>{html.escape(e.version[:12])}</code></td><td>{html.escape(e.date[:10])}"
        f"</td><td><code>{html.escape(e.commit[:10])}</code></td><td>{v:g}</td>"
        f"<td>{html.escape(e.subject)}</td></tr>"
        for _, v, e in pts
    )
    head = html.escape(f"{title}: {metric} by version")
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{head}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em .8em;"
        "text-align:left}</style></head>\n"
        f"<body><h1>{head}</h1>\n{svg[svg.index('<svg') :]}\n<table><tr><th>version</th>"
        f"<th>date</th><th>commit</th><th>{html.escape(metric)}</th><th>subject</th></tr>\n"
        f"{rows}\n</table></body></html>\n"
    )
