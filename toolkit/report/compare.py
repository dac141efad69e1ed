"""compare_runs: several runs side by side, as a table and as curves on the four axes of S0.3.

`find_run_dirs` turns what a user types (run directories, glob patterns, search directories
holding many trials) into run directories. `compare_runs` reads each one (`summary.json`,
`recipe.toml`, the TensorBoard events) and writes into its output folder:

- `compare.md` and `compare.csv`: one row per run with its budget (steps, examples seen,
  epoch-equivalents, training wall seconds), its final metrics and one column per recipe key whose
  value differs between the runs; rows sorted by the main metric, best first;
- `steps.png`, `examples.png`, `wall_seconds.png` and `epochs.png` (only when every run knows its
  dataset size): one figure per axis, the loss (log-scaled) beside the main metric, training
  (thin) and evaluation (marked) curves, one color per run.

Pick the axis for the question (S0.3): runs with different batch sizes compare fairly on the
examples axis (data efficiency), not on the steps axis, which favors large batches; runs on
different machines compare on steps or examples, never on wall time, which measures the machine.

Example:

>>> import tempfile
>>> from toolkit.callbacks.scalar_writer import ScalarWriter
>>> from toolkit.recipe import load_recipe
>>> from toolkit.recipe.dump import write_recipe
>>> root = Path(tempfile.mkdtemp())
>>> for batch_size in (8, 32):
...     run_dir = root / f"batch_{batch_size}"
...     recipe = load_recipe("digits_mlp", [f"data.batch_size={batch_size}"])
...     _ = write_recipe(recipe, run_dir / "recipe.toml")
...     writer = ScalarWriter(str(run_dir / "validation"))
...     for step in (10, 20):
...         writer.write({"loss": 1 / step, "accuracy": 1 - batch_size / 64}, step)
...         writer.write({"by_examples/loss": 1 / step}, step * batch_size)
...     writer.close()
>>> comparison = compare_runs([root], root / "compare")
>>> comparison.sort_column, comparison.hyperparameters
('eval.accuracy', ('data.batch_size',))
>>> [(row["run"], row["data.batch_size"], row["eval.accuracy"]) for row in comparison.rows]
[('batch_8', 8, 0.875), ('batch_32', 32, 0.5)]
>>> [path.name for path in comparison.plots]
['steps.png', 'examples.png', 'wall_seconds.png']
"""

import csv
import dataclasses
import io
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import matplotlib
from matplotlib.lines import Line2D

from toolkit import atomic_write
from toolkit.errors import DataError, RecipeError
from toolkit.report.events import AXES, RunScalars, read_run
from toolkit.report.figures import (
    AXIS_LABELS,
    EVALUATION_STYLE,
    TRAINING_STYLE,
    draw_on_axes,
    new_figure,
    save_png,
)
from toolkit.report.plots import _QUESTIONS, LOSS_TAG, _curves, _labels, _metric_tags
from toolkit.report.run_dirs import HELP, RUN_MARKERS, find_run_dirs

__all__ = ["Comparison", "compare_runs"]

# summary.json's metric sections, in the order the table shows them and picks the sort column:
# the validation split (what a search selects on), the run's evaluation, a trial's test metrics.
SECTIONS = ("validation", "eval", "test")
BUDGET_COLUMNS = ("steps", "examples_seen", "epochs", "wall_seconds")
# A metric whose name holds one of these is better when lower.
_LOWER_IS_BETTER = ("loss", "error", "mse", "mae", "crossentropy", "perplexity", "hinge",
                    "divergence", "poisson")
# The plots draw the best runs only: tab10 has 10 distinguishable colors. The table lists all.
MAX_PLOTTED_RUNS = 10


@dataclasses.dataclass(frozen=True)
class Comparison:
    """What `compare_runs` found and wrote.

    Args:
        run_dirs: The run directories, in table order (best first).
        columns: The table's columns: `run`, the budget, `<section>.<metric>` metrics and the
            differing recipe keys.
        rows: One dict per run, column to plain value (`None` where unknown).
        metric: The main metric (the second panel of each figure).
        sort_column: The column the rows are sorted by, or `None` when no run has it.
        hyperparameters: The recipe keys whose values differ between the runs.
        files: The tables written (`compare.md`, `compare.csv`).
        plots: The PNGs written.

    Example:

    >>> Comparison((), ("run",), (), "accuracy", None, (), (), ()).to_markdown()
    '| run |\\n|---|'
    """

    run_dirs: tuple
    columns: tuple
    rows: tuple
    metric: str
    sort_column: Optional[str]
    hyperparameters: tuple
    files: tuple
    plots: tuple

    def to_markdown(self) -> str:
        """The table as Markdown (numbers rounded for reading; `compare.csv` keeps them all)."""
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        for row in self.rows:
            cells = [_format(column, row.get(column)).replace("|", "\\|")
                     for column in self.columns]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_dict(self) -> Dict[str, Any]:
        """Plain values for `--json`: every row with its `run_dir`, and the files written."""
        rows = [{**row, "run_dir": str(path)} for row, path in zip(self.rows, self.run_dirs)]
        return {"metric": self.metric, "sort_column": self.sort_column,
                "hyperparameters": list(self.hyperparameters), "columns": list(self.columns),
                "rows": rows, "files": [str(p) for p in self.files],
                "plots": [str(p) for p in self.plots]}


def compare_runs(
    run_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, metric: Optional[str] = None
) -> Comparison:
    """Writes a table and per-axis plots that compare several runs (see the module docstring).

    Final metrics come from `summary.json` (its `validation`, `eval` and `test` sections), else
    from the last evaluation scalars of the events (as `eval.<tag>`). A run without events (a
    trial that failed before logging) is left out with a warning.

    Args:
        run_dirs: Run directories, glob patterns or search directories (`find_run_dirs`).
        out_dir: The folder to write `compare.md`, `compare.csv` and the PNGs into; created if
            missing.
        metric: The main metric: sorts the table and fills each figure's second panel. Defaults
            to `None` (the first evaluation metric other than the loss, e.g. `accuracy`).

    Returns:
        A `Comparison`.

    Raises:
        DataError: For a path or pattern that names no run (see `find_run_dirs`), when no run
            holds events, or for a `metric` that no run logged.
    """
    found, paths, runs = find_run_dirs(run_dirs), [], []
    for path in found:
        try:
            runs.append(read_run(path))
            paths.append(path)
        except DataError as error:
            if len(found) == 1:
                raise
            warnings.warn(f"{error} It is left out of the comparison.", stacklevel=2)
    if not runs:
        raise DataError(f"None of the {len(found)} runs found holds TensorBoard events yet "
                        f"(the first: {str(found[0])!r}). {HELP}")
    metric = _main_metric(runs, metric)
    labels = _labels(paths)
    rows = [_row(path, run, label) for path, run, label in zip(paths, runs, labels)]
    recipes = [_recipe_values(path) for path in paths]
    # Among the runs that have a recipe: one without differs in every key, which says nothing.
    keys = [key for key in dict.fromkeys(k for values in recipes for k in values)
            if len({repr(values.get(key)) for values in recipes if values}) > 1]
    for row, values in zip(rows, recipes):
        row.update((key, values.get(key)) for key in keys)
    metric_columns = [f"{section}.{tag}" for section in SECTIONS for tag in sorted(
        {c.split(".", 1)[1] for row in rows for c in row if c.startswith(section + ".")},
        key=lambda tag: (tag != LOSS_TAG, tag))]
    columns = ("run", *BUDGET_COLUMNS, *metric_columns, *keys)
    sort_column = next((f"{s}.{metric}" for s in SECTIONS if f"{s}.{metric}" in columns), None)
    order = list(range(len(rows)))
    if sort_column is not None:
        sign = 1.0 if _lower_is_better(metric) else -1.0
        order.sort(key=lambda i: _sort_key(rows[i].get(sort_column), sign))
    out_dir = Path(out_dir)
    plotted = order[:MAX_PLOTTED_RUNS]
    plots = _write_plots([runs[i] for i in plotted], [labels[i] for i in plotted], metric,
                         out_dir, total=len(runs))
    comparison = Comparison(tuple(paths[i] for i in order), columns,
                            tuple(rows[i] for i in order), metric, sort_column, tuple(keys),
                            (out_dir / "compare.md", out_dir / "compare.csv"), tuple(plots))
    atomic_write.write_text(out_dir / "compare.md", _markdown_page(comparison, len(plotted)))
    atomic_write.write_text(out_dir / "compare.csv", _csv(comparison))
    return comparison


# The table --------------------------------------------------------------------------------------

def _main_metric(runs: Sequence[RunScalars], metric: Optional[str]) -> str:
    logged = sorted({tag for run in runs for split in RUN_MARKERS for tag in run.tags(split)})
    if metric is None:
        return next((tags[0] for tags in map(_metric_tags, runs) if tags), LOSS_TAG)
    if metric not in logged:
        raise DataError(f"No run logged the metric {metric!r}. The runs logged: {logged}. Pass "
                        f"one of them as `--metric` (the `metric` argument).")
    return metric


def _row(path: Path, run: RunScalars, label: str) -> Dict[str, Any]:
    row: Dict[str, Any] = {"run": label}
    summary = _read_summary(path)
    if summary is not None:
        row.update((column, summary.get(column)) for column in BUDGET_COLUMNS)
        for section in SECTIONS:
            metrics = summary.get(section)
            if isinstance(metrics, dict):
                row.update((f"{section}.{tag}", value) for tag, value in metrics.items())
        return row
    # No summary.json (a `toolkit.fit` run, or one still training): the events' last points.
    last = max((run.series(tag, split) for split in run.splits for tag in run.tags(split)),
               key=lambda series: series.steps[-1] if len(series) else -1)
    row["steps"] = int(last.steps[-1])
    for column, values in (("examples_seen", last.examples), ("epochs", last.epochs),
                           ("wall_seconds", last.wall_seconds)):
        row[column] = None if values is None else float(values[-1])
    for tag in run.tags("validation"):
        row[f"eval.{tag}"] = float(run.series(tag, "validation").values[-1])
    return row


def _read_summary(path: Path) -> Optional[dict]:
    try:
        summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        warnings.warn(f"Cannot read {str(path / 'summary.json')!r} ({error}); its row comes "
                      f"from the events instead.", stacklevel=3)
        return None
    return summary if isinstance(summary, dict) else None


def _recipe_values(path: Path) -> Dict[str, Any]:
    """The run's recipe as flat `table.key` values (`recipe` for its name); `{}` without one."""
    from toolkit.recipe.dump import format_value
    from toolkit.recipe.load import load_recipe
    from toolkit.recipe.schema import TABLES

    if not (path / "recipe.toml").is_file():
        return {}
    try:
        recipe = load_recipe(path / "recipe.toml")
    except RecipeError as error:
        warnings.warn(f"{error} Its hyperparameters are left blank.", stacklevel=3)
        return {}
    values = {"recipe": recipe.name}
    for table in TABLES:
        config = getattr(recipe, table)
        for field in dataclasses.fields(config):
            value = getattr(config, field.name)
            try:  # Lists and augment steps as one line of TOML; scalars stay numbers.
                values[f"{table}.{field.name}"] = (
                    format_value(value) if isinstance(value, tuple) else value)
            except TypeError:  # data.sources: tables of their own
                values[f"{table}.{field.name}"] = str(value)
    return values


def _lower_is_better(tag: str) -> bool:
    return any(word in tag.lower() for word in _LOWER_IS_BETTER)


def _sort_key(value: Any, sign: float) -> tuple:
    """Best first; runs without the value, or with a non-finite one, last."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return (1, 0.0)
    return (0, sign * value)


def _format(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and column in ("steps", "examples_seen") and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.1f}" if column == "wall_seconds" else f"{value:.4g}"
    return str(value)


def _csv(comparison: Comparison) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([*comparison.columns, "run_dir"])
    for row, path in zip(comparison.rows, comparison.run_dirs):
        writer.writerow([*("" if row.get(c) is None else row[c] for c in comparison.columns),
                         path])
    return text.getvalue()


def _markdown_page(comparison: Comparison, num_plotted: int) -> str:
    order = "" if comparison.sort_column is None else (
        f" Sorted by `{comparison.sort_column}`, best first.")
    lines = [f"# Comparison of {len(comparison.rows)} runs", "",
             f"Main metric: `{comparison.metric}`.{order} Full precision: `compare.csv`.", "",
             comparison.to_markdown(), "", "Runs:", ""]
    lines += [f"- `{row['run']}`: `{path}`" for row, path in zip(comparison.rows,
                                                                  comparison.run_dirs)]
    shown = "" if num_plotted == len(comparison.rows) else f" of the first {num_plotted} runs"
    lines += ["", f"Curves{shown}, one figure per axis. Runs with different batch sizes compare "
              "on examples seen; runs on different machines not on wall time (S0.3).", ""]
    lines += [f"![{path.stem}]({path.name})" for path in comparison.plots]
    return "\n".join(lines) + "\n"


# The plots --------------------------------------------------------------------------------------

def _write_plots(runs, labels, metric: str, out_dir: Path, total: int) -> List[Path]:
    tags = [LOSS_TAG] if metric == LOSS_TAG else [LOSS_TAG, metric]
    sources = {run.wall_source for run in runs}
    wall_source = "event_time" if sources == {"event_time"} else ""
    axes = [a for a in AXES if a != "epochs" or all(run.dataset_size for run in runs)]
    colors = matplotlib.colormaps["tab10"]
    shown = f"{len(runs)} runs" if len(runs) == total else f"best {len(runs)} of {total} runs"
    paths = []
    for axis in axes:
        figure, panels = new_figure(1, len(tags))
        width, height = figure.get_size_inches()
        figure.set_size_inches(width + 2.0, height + 0.5)  # room for the legend and the title
        for panel, tag in zip(panels, tags):
            curves = [curve for index, (run, label) in enumerate(zip(runs, labels))
                      for curve in _curves(run, tag, f"{label} ", colors(index % colors.N))]
            draw_on_axes(panel, curves, f"{axis} {wall_source}".strip(), tag,
                         log_y=_lower_is_better(tag))
            if panel.get_legend() is not None:
                panel.get_legend().remove()  # One legend for the figure, below.
            if panel.axison:
                panel.set_title(tag, fontsize="medium")
        handles = [Line2D([], [], color=colors(index % colors.N), linewidth=2.0, label=label)
                   for index, label in enumerate(labels)]
        handles += [Line2D([], [], color="0.35", label="training", **TRAINING_STYLE),
                    Line2D([], [], color="0.35", label="evaluation", **EVALUATION_STYLE)]
        figure.legend(handles=handles, loc="outside right upper", fontsize="small")
        figure.suptitle(f"{AXIS_LABELS[axis]} ({_QUESTIONS[axis]}): {shown}")
        paths.append(save_png(figure, out_dir / f"{axis}.png"))
    return paths
