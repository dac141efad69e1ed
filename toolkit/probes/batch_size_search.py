"""BatchSizeSearch: the batch-size finder's points, its two rules, a text table and a PNG.

`find_batch_size` (in `toolkit.probes.batch_size_finder`) measures; this module holds what it
returns and the rules that read the measurements, testable without training:

- a batch size **fits** when it ran without `ResourceExhaustedError` and, given a memory limit,
  its peak stayed within `1 - SAFETY_MARGIN` (90%) of it;
- the **knee** is the smallest fitting batch size whose examples/s is within 5% of the best
  (`KNEE_FRACTION`): computational speed flattens past it (S1.5), while larger batches still
  cost updates and generalization (S1.2, S1.7).

Example:

>>> points = [BatchSizePoint(size, "fits", speed, (speed,), 2**20 * size, 1)
...           for size, speed in ((8, 500.0), (16, 960.0), (32, 1000.0))]
>>> search = BatchSizeSearch.from_points(points, "process", None, "done")
>>> search.knee, search.largest_fitting
(16, 32)
"""

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

from toolkit.probes.memory import format_bytes

__all__ = ["BatchSizePoint", "BatchSizeSearch", "KNEE_FRACTION", "SAFETY_MARGIN", "fits_memory"]

# The knee: the smallest batch size within 5% of the best examples/s (the rule; timings
# on a shared machine move 10-30% per window, so the medians it compares are of 5 windows).
KNEE_FRACTION = 0.95
# A batch size fits a memory limit with 10% to spare: allocator fragmentation, evaluation and
# checkpoint writes of a real run need room the probe does not use.
SAFETY_MARGIN = 0.1
STATUSES = ("fits", "over_max_memory", "out_of_memory")


def fits_memory(peak_memory_bytes: int, max_memory_bytes: Optional[int]) -> bool:
    """Whether a peak stays within `1 - SAFETY_MARGIN` of the limit (always, without a limit).

    Example:

    >>> fits_memory(900, 1000), fits_memory(901, 1000), fits_memory(10**12, None)
    (True, False, True)
    """
    return max_memory_bytes is None or peak_memory_bytes <= (
        1 - SAFETY_MARGIN) * max_memory_bytes


@dataclasses.dataclass(frozen=True)
class BatchSizePoint:
    """One measured batch size.

    Args:
        batch_size: Examples per step.
        status: `"fits"`, `"over_max_memory"` (ran, but its peak passed 90% of the limit) or
            `"out_of_memory"` (raised `ResourceExhaustedError`).
        examples_per_second: Median over the timed windows; `None` if it did not run.
        window_examples_per_second: Each timed window's examples/s.
        peak_memory_bytes: Peak memory while it ran (`BatchSizeSearch.memory_source`).
        steps_per_execution: Steps per train-function call it was timed with.

    Example:

    >>> BatchSizePoint(4096, "out_of_memory", None, (), None, 1).status
    'out_of_memory'
    """

    batch_size: int
    status: str
    examples_per_second: Optional[float]
    window_examples_per_second: Tuple[float, ...]
    peak_memory_bytes: Optional[int]
    steps_per_execution: int


@dataclasses.dataclass(frozen=True)
class BatchSizeSearch:
    """The result of `find_batch_size`: one point per batch size tried, the knee, the largest fit.

    Args:
        points: The measured batch sizes, smallest first; the last one may be the one that
            did not fit.
        knee: The smallest fitting batch size within 5% of the best examples/s, or `None`.
        largest_fitting: The largest batch size that fits, or `None` if none did.
        best_examples_per_second: The best median examples/s among fitting batch sizes.
        memory_source: What `peak_memory_bytes` measures (`PeakMemory.source`).
        max_memory_bytes: The limit given, or `None`.
        stopped_because: Why the sweep ended.

    Example:

    >>> point = BatchSizePoint(64, "fits", 1000.0, (990.0, 1010.0), 2**30, 1)
    >>> search = BatchSizeSearch((point,), 64, 64, 1000.0, "process", None, "done")
    >>> print(search.table().splitlines()[1])
         64         1        1,000     2%      1.0 GiB  knee, largest fitting
    """

    points: Tuple[BatchSizePoint, ...]
    knee: Optional[int]
    largest_fitting: Optional[int]
    best_examples_per_second: Optional[float]
    memory_source: str
    max_memory_bytes: Optional[int]
    stopped_because: str

    @classmethod
    def from_points(cls, points: Sequence[BatchSizePoint], memory_source: str,
                    max_memory_bytes: Optional[int], stopped_because: str) -> "BatchSizeSearch":
        """Applies the rules (see the module doc) to measured points; warns if none fits.

        Args:
            points: The points, smallest batch size first.
            memory_source: What the peaks measure.
            max_memory_bytes: The limit, or `None`.
            stopped_because: Why the sweep ended.

        Returns:
            The `BatchSizeSearch`.
        """
        fitting = [p for p in points if p.status == "fits"]
        best = max((p.examples_per_second for p in fitting), default=None)
        knee = next((p.batch_size for p in fitting
                     if p.examples_per_second >= KNEE_FRACTION * best), None)
        largest = fitting[-1].batch_size if fitting else None
        if largest is None:
            warnings.warn(f"No batch size fits: {stopped_because}. Try smaller batch sizes, a "
                          f"smaller model, or a larger max memory.", stacklevel=3)
        return cls(points=tuple(points), knee=knee, largest_fitting=largest,
                   best_examples_per_second=best, memory_source=memory_source,
                   max_memory_bytes=max_memory_bytes, stopped_because=stopped_because)

    def to_dict(self) -> dict:
        """The result as plain JSON-ready Python values."""
        return dataclasses.asdict(self)

    def table(self) -> str:
        """The points as a text table: examples/s (median, spread of the windows) and memory."""
        lines = ["  batch  steps/call  examples/s  spread  peak memory"]
        for point in self.points:
            notes = [name for name, size in (("knee", self.knee),
                                             ("largest fitting", self.largest_fitting))
                     if point.batch_size == size and point.status == "fits"]
            if point.status != "fits":
                notes.append(point.status.replace("_", " "))
            speed, spread = "-", "-"
            if point.examples_per_second is not None:
                speed = f"{point.examples_per_second:,.0f}"
                windows = point.window_examples_per_second
                spread = f"{(max(windows) - min(windows)) / point.examples_per_second:.0%}"
            memory = "-" if point.peak_memory_bytes is None else format_bytes(
                point.peak_memory_bytes)
            lines.append(f"{point.batch_size:>7}  {point.steps_per_execution:>8}  {speed:>11}  "
                         f"{spread:>5}  {memory:>11}  {', '.join(notes)}".rstrip())
        return "\n".join(lines)

    def plot(self, path: Union[str, os.PathLike]) -> Path:
        """Writes a PNG: examples/s and peak memory against the batch size (log2 axis).

        Args:
            path: The PNG file; its directory is created if missing; written atomically.

        Returns:
            `path` as a `pathlib.Path`.
        """
        # The report package's Agg figures, imported here rather than at the top: probes sit
        # below `report` in the import order (DESIGN) and most callers never plot.
        from toolkit.report.figures import new_figure, save_png

        figure, (speed, memory) = new_figure(rows=1, cols=2)
        ran = [p for p in self.points if p.examples_per_second is not None]
        sizes = [p.batch_size for p in ran]
        for panel, values, ylabel in (
            (speed, [p.examples_per_second for p in ran], "examples/s (median of windows)"),
            (memory, [p.peak_memory_bytes / 2**20 for p in ran], "peak memory (MiB)"),
        ):
            panel.plot(sizes, values, "-o", color="tab:blue", markersize=4, label="measured")
            if panel is speed:  # How far the windows spread: the timing noise of this machine.
                panel.vlines(sizes, [min(p.window_examples_per_second) for p in ran],
                             [max(p.window_examples_per_second) for p in ran], color="tab:blue",
                             alpha=0.35, linewidth=3, label="range of windows")
            over = [i for i, p in enumerate(ran) if p.status == "over_max_memory"]
            if over:
                panel.plot([sizes[i] for i in over], [values[i] for i in over], "s",
                           color="tab:orange", label="over 90% of max memory")
            for point in self.points:
                if point.status == "out_of_memory":
                    panel.axvline(point.batch_size, color="tab:red", linestyle=":",
                                  label=f"out of memory at {point.batch_size}")
            if self.knee is not None:
                panel.axvline(self.knee, color="tab:green", linestyle="--",
                              label=f"knee {self.knee}")
            panel.set_xscale("log", base=2)
            panel.set_xticks([p.batch_size for p in self.points],
                             [str(p.batch_size) for p in self.points])
            panel.set_xlabel("batch size (log2 scale)")
            panel.set_ylabel(ylabel)
            panel.grid(True, alpha=0.3)
        if self.max_memory_bytes is not None:
            memory.axhline(self.max_memory_bytes / 2**20, color="tab:red",
                           label=f"max memory {format_bytes(self.max_memory_bytes)}")
            memory.axhline((1 - SAFETY_MARGIN) * self.max_memory_bytes / 2**20,
                           color="tab:red", linestyle="--", label=f"{1 - SAFETY_MARGIN:.0%} of it")
        for panel in (speed, memory):
            panel.legend(fontsize="small")
        figure.suptitle(f"Batch-size finder: knee {self.knee}, largest fitting "
                        f"{self.largest_fitting}", fontsize=10)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return save_png(figure, path)
