"""Benchmarks: git-model against its speed and memory targets, beside the raw baselines.

    python scripts/bench.py [--quick] [--size-gib N] [--files N] [--only SECTION,…] [--runs N]
    python scripts/bench.py --only scale [--scale-files N] [--scale-gib N]

Each section builds its own data (random bytes) in a temp folder that is removed afterwards,
and measures git-model and its baseline side by side in the same run: the two are run
alternately, once each to warm the page cache, then N more times, and the best run of each
is kept. Ratios measured this way hold on a loaded machine, where absolute times do not.
Peak memory is the largest max-RSS that `wait4` reports for any git-model process.

The machinery (rows, timed commands, the Bench, the trash) is scripts/benchkit/core.py; each
section lives in a module of scripts/benchkit/ (add one with `@section("name")`: a function
that takes the Bench and yields Rows) and is named in ORDER below. `scale` (100,000 files and a 10 GiB file, memory flat) runs only when
named: `--only scale [--scale-files N] [--scale-gib N]`. A section whose commands have not
landed yet prints "skipped". git-lfs, git-annex and DVC are informative columns where
they are installed (skipped where not). Exit status 1 if any target fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import benchkit.core
from benchkit import compress, history, hooks, local, remotes, scale, tensors  # noqa: F401
from benchkit.core import OPT_IN, Bench, GiB, Row, fmt_value

# the sections (each module registers its own as it is imported), in the order they run
ORDER = (
    "startup",
    "large",
    "small",
    "hooks",
    "versions",
    "loop",
    "remotes",
    "lfs",
    "compress",
    "tensors",
    "scale",
)
SECTIONS = {name: benchkit.core.SECTIONS[name] for name in ORDER}
assert set(SECTIONS) == set(benchkit.core.SECTIONS), "a section missing from ORDER"

COLUMNS = "{:<9}{:<48}{:>9} {:>8}  {:<30}{:>7}  {:<10}{:<6}{}"


def print_row(row: Row) -> None:
    result = {None: "", True: "pass", False: "FAIL"}[row.ok]
    ratio = f"{row.ratio:.2f}×" if row.ratio is not None and row.unit == "s" else ""
    base = f"{row.baseline} {fmt_value(row.base_seconds)}".strip()
    value = fmt_value(row.seconds, row.unit)
    cpu = fmt_value(row.cpu)
    print(
        COLUMNS.format(row.section, row.what, value, cpu, base, ratio, row.target, result, row.note)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="256 MiB, 2,000 files, 3 runs")
    parser.add_argument("--size-gib", type=float, help="size of the large file (default 1)")
    parser.add_argument("--files", type=int, help="number of 4 KiB files (default 10000)")
    parser.add_argument("--runs", type=int, help="timed runs per measurement (default 5)")
    parser.add_argument(
        "--only",
        help=f"comma-separated sections: {', '.join(SECTIONS)} (opt-in: {', '.join(OPT_IN)})",
    )
    parser.add_argument("--scale-files", type=int, help="scale: files (default 100000)")
    parser.add_argument("--scale-gib", type=float, help="scale: size of the big file (default 10)")
    parser.add_argument(
        "--scale-remote",
        choices=("s3", "dir"),
        default="s3",
        help="scale: the remote, moto's S3 server (default) or a directory",
    )
    parser.add_argument("--dir", help="where to make the temp folder (default: the system's)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args(argv)
    args.size_gib = args.size_gib or (0.25 if args.quick else 1.0)
    args.files = args.files or (2000 if args.quick else 10_000)
    args.runs = max(3, args.runs or (3 if args.quick else 5))
    args.scale_files = args.scale_files or (10_000 if args.quick else 100_000)
    args.scale_gib = args.scale_gib or (1.0 if args.quick else 10.0)
    names = args.only.split(",") if args.only else [n for n in SECTIONS if n not in OPT_IN]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    tmp = Path(tempfile.mkdtemp(prefix="git-model-bench-", dir=args.dir))
    need = args.size_gib * GiB * 4 + args.files * 4096 * 6
    if "scale" in names:  # work tree, cache and remote copies, and some room
        need += args.scale_gib * GiB * 3.2 + args.scale_files * 4096 * 4
    if shutil.disk_usage(tmp).free < need:
        shutil.rmtree(tmp)
        raise SystemExit(f"bench: needs {need / GiB:.1f} GiB free in {tmp.parent}; use --dir")
    trash = tmp / "trash"
    trash.mkdir()
    benchkit.core.TRASH = trash
    bench = Bench(args, tmp)
    which = bench.sh("git", "model", "--version", cwd=tmp).strip()
    print(
        f"{which} ({shutil.which('git-model', path=bench.env['PATH'])}); best of {args.runs} "
        f"runs; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        COLUMNS.format(
            "section", "measurement", "time", "cpu", "baseline", "ratio", "target", "result", ""
        )
    )
    rows: list[Row] = []
    try:
        for name in names:
            for row in SECTIONS[name](bench):
                print_row(row)
                rows.append(row)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    failed = [r for r in rows if r.ok is False]
    print(
        f"{sum(r.ok is True for r in rows)} targets passed, {len(failed)} failed "
        f"(load average now {os.getloadavg()[0]:.1f})"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
