"""write_run_plots and plot_runs: PNGs of loss curves on the four axes of S0.3.

Each figure shows a curve four ways, one panel per question (S0.3): against optimizer steps
(how many updates are needed: compares optimizers), examples seen (data efficiency, free of the
batch-size effect), training wall time (what it costs on this machine) and epoch-equivalents (how
often the model saw each example; only when the dataset size is known). Training points are the
mean loss over each logging window (the batch loss when logging every step); evaluation points are
the evaluation at the end of each interval.

Example:

>>> import tempfile
>>> from toolkit.callbacks.scalar_writer import ScalarWriter
>>> run_dir = tempfile.mkdtemp()
>>> for split, scale in (("train", 1.0), ("validation", 1.2)):
...     writer = ScalarWriter(os.path.join(run_dir, split))
...     for step in (10, 20, 30):
...         writer.write({"loss": scale / step, "accuracy": 1 - 1 / step}, step)
...     writer.close()
>>> [path.name for path in write_run_plots(run_dir)]
['loss.png', 'metrics.png']
"""

import os
import warnings
from pathlib import Path
from typing import List, Sequence

import matplotlib

from toolkit.errors import DataError
from toolkit.report.events import AXES, RunScalars, read_run
from toolkit.report.figures import (
    EVALUATION_STYLE,
    TRAINING_STYLE,
    Curve,
    draw_on_axes,
    new_figure,
    save_png,
)

__all__ = ["PLOTS_DIRECTORY", "plot_runs", "write_run_plots"]

PLOTS_DIRECTORY = "plots"
LOSS_TAG, LEARNING_RATE_TAG = "loss", "learning_rate"
# Tags `toolkit.callbacks.Axes` writes about the run itself rather than about the model.
_BOOKKEEPING = ("loss", "learning_rate", "steps_per_second", "examples_per_second", "epochs")
# Rows of metrics.png: more would make a figure too tall to read; TensorBoard has the rest.
MAX_METRICS = 6
# The question each axis answers (S0.3), as panel titles.
_QUESTIONS = {
    "steps": "updates needed",
    "examples": "data efficiency",
    "wall_seconds": "cost on this machine",
    "epochs": "passes over the data",
}
_SPLITS = (("train", "training", TRAINING_STYLE), ("validation", "evaluation", EVALUATION_STYLE))


def write_run_plots(run_dir: str | os.PathLike) -> List[Path]:
    """Writes the PNGs of a run directory into its `plots/` folder.

    - `loss.png`: training and evaluation loss on the four axes (2x2), log-scaled when positive;
    - `metrics.png`: every other evaluation metric (training alongside where it was logged), one
      row per metric, one column per axis; written when there is such a metric;
    - `learning_rate.png`: the learning rate against steps, when it was logged.

    Args:
        run_dir: The run directory (`toolkit.fit(run_dir=...)`, `toolkit train`).

    Returns:
        The paths written.

    Raises:
        DataError: When `run_dir` holds no scalar events.
    """
    run = read_run(run_dir)
    folder = Path(run_dir) / PLOTS_DIRECTORY
    title = "/".join(Path(run_dir).resolve().parts[-2:])  # runs/<recipe>/<run id>
    written = []
    if _curves(run, LOSS_TAG):
        figure, panels = new_figure(2, 2)
        _draw_row(panels, _curves(run, LOSS_TAG), LOSS_TAG, run.wall_source)
        figure.suptitle(f"{title}: loss")
        written.append(save_png(figure, folder / "loss.png"))
    metrics = _metric_tags(run)
    if metrics:
        figure, panels = new_figure(len(metrics), len(AXES))
        for row, tag in enumerate(metrics):
            row_panels = panels[row * len(AXES):(row + 1) * len(AXES)]
            _draw_row(row_panels, _curves(run, tag), tag, run.wall_source)
        figure.suptitle(f"{title}: metrics")
        written.append(save_png(figure, folder / "metrics.png"))
    if run.has(LEARNING_RATE_TAG):
        figure, panels = new_figure(1, 1)
        curve = Curve(run.series(LEARNING_RATE_TAG), "learning rate", TRAINING_STYLE)
        draw_on_axes(panels[0], [curve], "steps", LEARNING_RATE_TAG, log_y=True)
        figure.suptitle(f"{title}: learning rate")
        written.append(save_png(figure, folder / "learning_rate.png"))
    return written


def plot_runs(
    run_dirs: Sequence[str | os.PathLike], path: str | os.PathLike, tag: str = LOSS_TAG
) -> Path:
    """Overlays one tag of several runs on the four axes (2x2), one color per run.

    Use it to compare runs fairly (S0.3): with different batch sizes, on the examples axis; on
    different machines, not on the wall-time axis.

    Args:
        run_dirs: The run directories.
        path: The PNG to write; its directory is created if missing.
        tag: The tag to draw, training and evaluation. Defaults to `"loss"`.

    Returns:
        `path`, as a `pathlib.Path`.

    Raises:
        DataError: When no run directory is given, one holds no events, or none logged `tag`.

    Example:

    >>> import tempfile
    >>> from toolkit.callbacks.scalar_writer import ScalarWriter
    >>> root = tempfile.mkdtemp()
    >>> for name, batch_size in (("small_batch", 8), ("large_batch", 64)):
    ...     writer = ScalarWriter(os.path.join(root, name, "validation"))
    ...     for step in (100, 200, 300):
    ...         writer.write({"loss": 1 / step}, step)
    ...         writer.write({"by_examples/loss": 1 / step}, step * batch_size)
    ...     writer.close()
    >>> runs = [os.path.join(root, "small_batch"), os.path.join(root, "large_batch")]
    >>> plot_runs(runs, os.path.join(root, "compare", "loss.png")).name
    'loss.png'
    """
    if not run_dirs:
        raise DataError("`plot_runs` got no run directory. Pass at least one run directory.")
    runs = [read_run(run_dir) for run_dir in run_dirs]
    colors = matplotlib.colormaps["tab10"]
    curves, missing = [], []
    for index, (run, label) in enumerate(zip(runs, _labels(run_dirs))):
        found = _curves(run, tag, prefix=f"{label} ", color=colors(index % colors.N))
        curves.extend(found)
        missing.extend([] if found else [label])
    if not curves:
        raise DataError(
            f"No run logged {tag!r}. The first run's tags: {runs[0].tags('train')} (training), "
            f"{runs[0].tags('validation')} (evaluation). Pass one of them as `tag`."
        )
    if missing:
        warnings.warn(f"Runs {missing} logged no {tag!r}; they are left out of {str(path)!r}.",
                      stacklevel=2)
    figure, panels = new_figure(2, 2)
    sources = {run.wall_source for run in runs}
    _draw_row(panels, curves, tag, "event_time" if sources == {"event_time"} else "")
    figure.suptitle(f"{tag}: {len(runs)} runs")
    return save_png(figure, path)


def _curves(run: RunScalars, tag: str, prefix: str = "", color=None) -> List[Curve]:
    curves = []
    for split, name, style in _SPLITS:
        if run.has(tag, split) and len(run.series(tag, split)):
            style = {**style, "color": color} if color is not None else style
            if color is not None and split == "train":
                style = {**style, "alpha": 0.45}  # Overlaid runs: evaluation stands out.
            curves.append(Curve(run.series(tag, split), f"{prefix}{name}", style))
    return curves


def _draw_row(panels, curves: Sequence[Curve], tag: str, wall_source: str) -> None:
    log_y = tag == LOSS_TAG
    for axis, panel in zip(AXES, panels):
        draw_on_axes(panel, curves, f"{axis} {wall_source}".strip(), tag, log_y=log_y)
        if panel.axison:
            panel.set_title(_QUESTIONS[axis], fontsize="medium")


def _metric_tags(run: RunScalars) -> List[str]:
    """Evaluation metrics other than the loss; training ones when nothing was evaluated."""
    tags = [tag for tag in run.tags("validation") if tag not in _BOOKKEEPING]
    if not tags:
        tags = [tag for tag in run.tags("train") if tag not in _BOOKKEEPING]
    return tags[:MAX_METRICS]


def _labels(run_dirs: Sequence[str | os.PathLike]) -> List[str]:
    """The shortest path tails that tell the runs apart (`a/default`, `b/default`)."""
    parts = [Path(run_dir).resolve().parts for run_dir in run_dirs]
    for depth in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(run_dir) for run_dir in run_dirs]
