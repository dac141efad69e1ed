"""`toolkit compare RUN_DIR... [--out DIR] [--metric TAG] [--json]`: runs side by side.

Finds the runs (run directories, glob patterns, search directories; `toolkit.report.find_run_dirs`),
writes `compare.md`, `compare.csv` and one PNG per axis of S0.3 with `toolkit.report.compare_runs`,
prints the table (best run first) and where the plots are. A path that names no run or a metric no
run logged exits with status 2 and one line saying what to pass instead.
"""

import argparse
from pathlib import Path

from toolkit.commands.common import print_json

__all__ = ["add"]

# In the working directory, like `runs/`: not under `runs/`, where `toolkit compare runs/*`
# (expanded by the shell) would pass it back as a directory holding no run.
DEFAULT_OUT = Path("compare")


def add(commands) -> None:
    """Adds the `compare` subcommand."""
    compare = commands.add_parser(
        "compare",
        help="compare runs: a table of their results and curves on the four axes",
        description="Compare training runs: a table (one row per run: steps, examples seen, "
        "epochs, wall seconds, final metrics and every recipe key that differs), sorted by the "
        "main metric, and one PNG per axis (steps, examples, wall_seconds, epochs) with the "
        "loss and the main metric of every run. Runs with different batch sizes compare on "
        "examples seen; runs on different machines not on wall time.",
    )
    compare.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR",
        help="a run directory, a glob pattern such as 'runs/*/default' (quote it), or a "
        "directory to search for runs (e.g. a tuning search)",
    )
    compare.add_argument(
        "--out", default=None, metavar="DIR",
        help="where to write compare.md, compare.csv and the PNGs (default: compare/ in the "
        "current directory)",
    )
    compare.add_argument(
        "--metric", default=None, metavar="TAG",
        help="the metric to sort by and plot beside the loss (default: the first evaluation "
        "metric other than the loss, e.g. accuracy)",
    )
    compare.add_argument("--json", action="store_true", help="print the result as JSON")
    compare.set_defaults(handler=_compare)


def _compare(args: argparse.Namespace) -> int:
    from toolkit.report.compare import compare_runs

    comparison = compare_runs(args.run_dirs, args.out or DEFAULT_OUT, metric=args.metric)
    if args.json:
        print_json(comparison.to_dict())
        return 0
    order = "" if comparison.sort_column is None else (
        f", sorted by {comparison.sort_column} (best first)")
    print(f"Compared {len(comparison.rows)} runs{order}.")
    print(comparison.to_markdown())
    print(f"Table: {', '.join(str(path) for path in comparison.files)}")
    folder = comparison.plots[0].parent
    print(f"Plots: {folder} ({', '.join(path.name for path in comparison.plots)})")
    return 0
