"""Drawing curves on the four axes of S0.3 and saving PNGs, without pyplot.

Figures are `matplotlib.figure.Figure` objects rendered by `FigureCanvasAgg` directly: no GUI
backend is touched and pyplot's global state (current figure, backend choice) is left alone, so
plotting from a notebook, a server or a training script behaves the same. Each PNG is written to a
temporary file and renamed (`toolkit.atomic_write`): a reader never sees half an image.

Example:

>>> import pathlib, tempfile
>>> import numpy as np
>>> from toolkit.report.events import Series
>>> steps = np.array([10, 20, 30])
>>> series = Series(steps, np.array([1.0, 0.5, 0.25]), steps * 8.0, steps / 10, None, steps * 1.0)
>>> figure, grid = new_figure(rows=1, cols=4)
>>> draw_on_axes(grid[0], [Curve(series, "training", TRAINING_STYLE)], "steps", "loss")
>>> save_png(figure, pathlib.Path(tempfile.mkdtemp()) / "loss.png").name
'loss.png'
"""

import dataclasses
import os
from pathlib import Path
from typing import Any, List, Mapping, Sequence, Tuple

import numpy as np
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from toolkit import atomic_write
from toolkit.report.events import AXES, Series

__all__ = ["Curve", "TRAINING_STYLE", "EVALUATION_STYLE", "draw_on_axes", "new_figure",
           "save_png"]

# 100 dpi and 4.2 x 3.3 inches per panel: a 2x2 figure is about 840x660 pixels, readable on a
# laptop screen and in a Markdown preview, about 60 KB per PNG.
DPI = 100
PANEL_INCHES = (4.2, 3.3)
# Training points are window means, many and noisy: thin. Evaluation points are few: marked.
TRAINING_STYLE = {"linewidth": 1.0, "alpha": 0.85}
EVALUATION_STYLE = {"linewidth": 1.8, "marker": "o", "markersize": 3.5}
AXIS_LABELS = {
    "steps": "optimizer steps",
    "examples": "examples seen",
    "wall_seconds": "wall time",
    "epochs": "epoch-equivalents",
}
_UNKNOWN = {
    "examples": "examples seen unknown:\nthe run logged no batch size",
    "wall_seconds": "wall time unknown",
    "epochs": "epoch-equivalents unknown:\nthe dataset size was not given",
}
# Log scale only for curves spanning a decade or more: below that it adds only odd ticks (and
# a constant learning rate would float in an empty log axis).
LOG_MIN_RATIO = 10.0
# Wall time in the unit that keeps the numbers short: seconds up to 10 minutes, etc.
_TIME_UNITS = ((36_000.0, 3600.0, "h"), (600.0, 60.0, "min"), (0.0, 1.0, "s"))


@dataclasses.dataclass(frozen=True)
class Curve:
    """One line to draw: a `Series`, its legend label and matplotlib line keywords.

    Args:
        series: The points.
        label: Legend text.
        style: Keyword arguments of `Axes.plot` (`color`, `linewidth`, `marker`, ...).

    Example:

    >>> Curve(None, "evaluation", EVALUATION_STYLE).label
    'evaluation'
    """

    series: Series
    label: str
    style: Mapping[str, Any]


def new_figure(rows: int, cols: int) -> Tuple[Figure, List[Any]]:
    """A figure of `rows x cols` panels on an Agg canvas, and its panels in reading order.

    Args:
        rows: Panel rows.
        cols: Panel columns.

    Returns:
        The `Figure` and the list of its `Axes`.
    """
    size = (PANEL_INCHES[0] * cols, PANEL_INCHES[1] * rows)
    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.subplots(rows, cols, squeeze=False)
    return figure, [panel for row in grid for panel in row]


def draw_on_axes(
    panel, curves: Sequence[Curve], axis: str, ylabel: str = "", log_y: bool = False
) -> None:
    """Draws `curves` on one panel against `axis` (one of `AXES`, optionally followed by a
    space and the `RunScalars.wall_source`).

    Non-finite values (a diverged run) are left out and counted in the legend. A panel whose
    axis no curve knows shows why instead.

    Args:
        panel: A matplotlib `Axes`.
        curves: The curves.
        axis: `"steps"`, `"examples"`, `"wall_seconds"` or `"epochs"`; for wall time,
            `"wall_seconds event_time"` labels it as time since the first event.
        ylabel: The y-axis label. Defaults to `""`.
        log_y: Log-scale the y axis when every drawn value is positive and they span a
            decade or more (losses do; accuracies do not). Defaults to `False`.
    """
    name, _, wall_source = axis.partition(" ")
    if name not in AXES:
        raise ValueError(f"Unknown axis {name!r}. Pass one of {list(AXES)}.")
    known = [c for c in curves if len(c.series) and c.series.axis(name) is not None]
    if not known:
        panel.text(0.5, 0.5, _UNKNOWN.get(name, "no points"), ha="center", va="center",
                   transform=panel.transAxes, color="0.4")
        panel.set_axis_off()
        return
    scale, unit = 1.0, ""
    if name == "wall_seconds":
        longest = max(float(np.nanmax(c.series.wall_seconds)) for c in known)
        _, scale, unit = next(u for u in _TIME_UNITS if longest >= u[0])
    finite_values = []
    for curve in known:
        x, y = curve.series.axis(name) / scale, curve.series.values
        finite = np.isfinite(y)
        label = curve.label
        if not finite.all():
            label += f" ({int((~finite).sum())} non-finite not shown)"
        panel.plot(x[finite], y[finite], label=label, **curve.style)
        finite_values.append(y[finite])
    values = np.concatenate(finite_values)
    positive = values.size and np.all(values > 0)
    if log_y and positive and values.max() >= LOG_MIN_RATIO * values.min():
        _log_scale(panel)
    xlabel = AXIS_LABELS[name]
    if name == "wall_seconds":
        where = "since the first event" if wall_source == "event_time" else "training"
        xlabel = f"{xlabel} ({unit}, {where})"
    panel.set_xlabel(xlabel)
    panel.set_ylabel(ylabel)
    # 150k rather than 150000: six-digit example counts would run into each other.
    panel.xaxis.set_major_formatter(ticker.FuncFormatter(_short_number))
    panel.grid(True, which="major", alpha=0.3)
    panel.legend(fontsize="small")


def _short_number(value: float, _position=None) -> str:
    """Tick text: `950`, `12.5k`, `1.2M`."""
    for threshold, suffix in ((1e6, "M"), (1e4, "k")):
        if abs(value) >= threshold:
            return f"{value / (threshold if suffix == 'M' else 1e3):g}{suffix}"
    return f"{value:g}"


def _log_scale(panel) -> None:
    panel.set_yscale("log")
    # Plain numbers (0.25, 1e-05) rather than 2.5x10^-1; minor ticks unlabelled.
    panel.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:.3g}"))
    panel.yaxis.set_minor_formatter(ticker.NullFormatter())


def save_png(figure: Figure, path: str | os.PathLike) -> Path:
    """Renders `figure` as a PNG at `path`, atomically (temporary file, then rename).

    Args:
        figure: A figure from `new_figure`.
        path: The destination; its directory is created if missing.

    Returns:
        `path`, as a `pathlib.Path`.
    """
    with atomic_write.temporary_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI)
    return Path(path)
