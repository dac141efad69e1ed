"""read_run: a run directory's TensorBoard scalars, on the four axes of S0.3.

A run directory (`toolkit.fit(run_dir=...)`, `toolkit train`) holds one TensorBoard run per
subdirectory: `train/` (batch-loss windows, `learning_rate`, `steps_per_second`, `epochs`, ...)
and `validation/` (the evaluation metrics), each tag on the optimizer-step axis and again under
`by_examples/<tag>` with the examples seen as event step (`toolkit.callbacks.Axes`). `read_run`
reads every event file with TensorBoard's own reader and returns, per split and tag, the steps,
the values and the derived axes of each point:

- **examples seen**: from the `by_examples/` twin of each tag (the exact count, also under a
  batch-size schedule), interpolated over steps for points that have no twin;
- **wall seconds**: the training wall time, integrated from the `steps_per_second` tag
  (`sum(steps in window / steps_per_second)`: evaluation time excluded, time between a kill and
  its resume excluded). Without that tag (a plain `tf.summary` run) it is each event's
  `wall_time` minus the run's first one, which counts evaluation and downtime too;
  `RunScalars.wall_source` says which;
- **epoch-equivalents**: examples seen / dataset size, the size recovered from the `epochs` tag
  (`Axes` writes it when the size is known), else `None`.

Resumed runs leave several event files per split. Files are read in the order they were
started, events in file order, and a step seen again in the same tag replaces the earlier point
and every later one (TensorBoard's own rule for orphaned data), so the later run wins and no
step appears twice.

Example:

>>> import tempfile
>>> from toolkit.callbacks.scalar_writer import ScalarWriter
>>> run_dir = tempfile.mkdtemp()
>>> writer = ScalarWriter(os.path.join(run_dir, "train"))
>>> for step in (10, 20):
...     writer.write({"loss": 1 / step, "steps_per_second": 5.0, "epochs": step / 4}, step)
...     writer.write({"by_examples/loss": 1 / step}, step * 8)
>>> writer.close()
>>> run = read_run(run_dir)
>>> run.series("loss").steps.tolist(), run.series("loss").wall_seconds.tolist()
([10, 20], [2.0, 4.0])
>>> run.series("loss").examples.tolist(), run.series("loss").epochs.tolist(), run.dataset_size
([80.0, 160.0], [2.5, 5.0], 32.0)
"""

import dataclasses
import os
import types
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
from tensorboard.util import tensor_util

from toolkit.errors import DataError
from toolkit.keras_compat import load_events

__all__ = ["AXES", "RunScalars", "Series", "read_run"]

# The four views of a loss curve (S0.3), as `Series` attribute names.
AXES = ("steps", "examples", "wall_seconds", "epochs")
EXAMPLES_PREFIX = "by_examples/"
_RATE_TAG, _EPOCHS_TAG = "steps_per_second", "epochs"
_SCALAR_PLUGIN = "scalars"
_SKIPPED_DIRECTORIES = ("checkpoints", "plots")


@dataclasses.dataclass(frozen=True, repr=False)
class Series:
    """One tag's points, with each point's position on the four axes.

    Args:
        steps: Optimizer step of each point (int64, increasing).
        values: The logged values (float64; non-finite values are kept).
        examples: Examples seen at each point, or `None` when the run did not log them.
        wall_seconds: Training wall time at each point (see `RunScalars.wall_source`).
        epochs: Epoch-equivalents at each point, or `None` when the dataset size is unknown.
        timestamps: Each event's Unix time.

    Example:

    >>> series = Series(np.array([1, 2]), np.array([0.5, 0.25]), None, np.array([0.1, 0.2]),
    ...                 None, np.array([0.0, 0.1]))
    >>> series.axis("steps").tolist(), series.axis("epochs"), len(series)
    ([1, 2], None, 2)
    """

    steps: np.ndarray
    values: np.ndarray
    examples: Optional[np.ndarray]
    wall_seconds: np.ndarray
    epochs: Optional[np.ndarray]
    timestamps: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        known = [axis for axis in AXES if self.axis(axis) is not None]
        return f"Series({len(self)} points, axes={known})"

    def axis(self, name: str) -> Optional[np.ndarray]:
        """The points' positions on axis `name` (one of `AXES`), or `None` if unknown."""
        if name not in AXES:
            raise ValueError(f"Unknown axis {name!r}. Pass one of {list(AXES)}.")
        return getattr(self, name)


@dataclasses.dataclass(frozen=True, repr=False)
class RunScalars:
    """Every scalar of one run directory, per split (`"train"`, `"validation"`) and tag.

    Args:
        run_dir: The run directory read.
        splits: Split name (the subdirectory, `"."` for the directory itself) to tag to
            `Series`. The `by_examples/` tags are folded into `Series.examples`.
        dataset_size: Training examples per epoch-equivalent, or `None` when unknown.
        wall_source: `"steps_per_second"` (training time, evaluation and downtime excluded) or
            `"event_time"` (seconds since the run's first event).

    Example:

    >>> run = RunScalars(Path("run"), {"train": {}}, None, "event_time")
    >>> run.tags("validation")
    []
    """

    run_dir: Path
    splits: Mapping[str, Mapping[str, Series]]
    dataset_size: Optional[float]
    wall_source: str

    def __repr__(self) -> str:
        tags = {split: sorted(series) for split, series in self.splits.items()}
        return f"RunScalars({str(self.run_dir)!r}, tags={tags})"

    def tags(self, split: str = "train") -> List[str]:
        """The tags logged in `split`, sorted (empty when the split was not logged)."""
        return sorted(self.splits.get(split, {}))

    def has(self, tag: str, split: str = "train") -> bool:
        """Whether `split` logged `tag`."""
        return tag in self.splits.get(split, {})

    def series(self, tag: str, split: str = "train") -> Series:
        """The points of `tag` in `split`.

        Raises:
            KeyError: Naming the tags that `split` holds.
        """
        if not self.has(tag, split):
            raise KeyError(
                f"Run {str(self.run_dir)!r} logged no {tag!r} in split {split!r}. Its tags "
                f"there: {self.tags(split)}; its splits: {sorted(self.splits)}."
            )
        return self.splits[split][tag]


def read_run(run_dir: str | os.PathLike) -> RunScalars:
    """Reads every scalar of a run directory with TensorBoard's event reader.

    Args:
        run_dir: A run directory (or any TensorBoard logdir); its subdirectories are searched,
            except `checkpoints/` and `plots/`.

    Returns:
        A `RunScalars`.

    Raises:
        DataError: When `run_dir` does not exist or holds no scalar events.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(
            f"Run directory {str(run_dir)!r} does not exist. Pass the directory given as "
            f"`run_dir` to `toolkit.fit` (or printed by `toolkit train`)."
        )
    raw = {split: points for split, points in _read_splits(run_dir).items() if points}
    if not any(tag for points in raw.values() for tag in points if not _is_twin(tag)):
        raise DataError(
            f"Run directory {str(run_dir)!r} holds no TensorBoard scalar events. Pass a "
            f"directory that a run logged into: `toolkit.fit(..., run_dir=...)` or `toolkit "
            f"train` writes them (with `Logging(every_steps=0)` it writes none)."
        )
    examples_map = _examples_map(raw)
    dataset_size = _dataset_size(raw, examples_map)
    wall_map, wall_source = _wall_map(raw)
    splits = {}
    for split, points in raw.items():
        splits[split] = types.MappingProxyType({
            tag: _series(steps, values, stamps, examples_map, wall_map, dataset_size)
            for tag, (steps, values, stamps) in points.items() if not _is_twin(tag)
        })
    return RunScalars(run_dir, types.MappingProxyType(splits), dataset_size, wall_source)


# Reading ----------------------------------------------------------------------------------------

_Points = Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray]]


def _read_splits(run_dir: Path) -> Dict[str, _Points]:
    files: Dict[str, List[Path]] = {}
    for root, dirs, names in os.walk(run_dir):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRECTORIES)
        for name in names:
            if "tfevents" in name and not name.startswith("."):  # never a half-written temp
                split = Path(root).relative_to(run_dir).as_posix()
                files.setdefault(split, []).append(Path(root) / name)
    return {split: _read_split(paths) for split, paths in files.items()}


def _read_split(paths: List[Path]) -> _Points:
    loaded = [load_events(str(path)) for path in paths]
    # The order the writers started in: a file's first event (`file_version`) is its birth.
    order = sorted(range(len(paths)),
                   key=lambda i: (loaded[i][0].wall_time if loaded[i] else 0.0, paths[i].name))
    tags: Dict[str, List[Tuple[int, float, float]]] = {}
    for index in order:
        for event in loaded[index]:
            for value in event.summary.value if event.HasField("summary") else ():
                scalar = _scalar(value)
                if scalar is None:
                    continue
                points = tags.setdefault(value.tag, [])
                # A step seen again replaces that point and every later one (a resumed or
                # rolled-back run logs again from there): the later run wins.
                while points and points[-1][0] >= event.step:
                    points.pop()
                points.append((int(event.step), scalar, float(event.wall_time)))
    return {
        tag: (np.array([p[0] for p in points], dtype=np.int64),
              np.array([p[1] for p in points], dtype=np.float64),
              np.array([p[2] for p in points], dtype=np.float64))
        for tag, points in tags.items()
    }


def _scalar(value) -> Optional[float]:
    # The loader migrates legacy `simple_value` scalars into tensors with the scalar plugin's
    # metadata, which is what `tf.summary.scalar` (TF2) and `ScalarWriter` write.
    if value.metadata.plugin_data.plugin_name != _SCALAR_PLUGIN or not value.HasField("tensor"):
        return None
    array = tensor_util.make_ndarray(value.tensor)
    return float(array) if array.size == 1 and array.dtype.kind in "biuf" else None


def _is_twin(tag: str) -> bool:
    return tag.startswith(EXAMPLES_PREFIX)


# Derived axes -----------------------------------------------------------------------------------

def _examples_map(raw: Mapping[str, _Points]) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Step -> examples, from every tag whose `by_examples/` twin has as many points."""
    pairs = {0: 0.0}
    for points in raw.values():
        for tag, (steps, _, _) in points.items():
            twin = points.get(EXAMPLES_PREFIX + tag)
            if not _is_twin(tag) and twin is not None and len(twin[0]) == len(steps):
                pairs.update(zip(steps.tolist(), twin[0].astype(np.float64).tolist()))
    if len(pairs) == 1:
        return None
    steps = np.array(sorted(pairs), dtype=np.float64)
    return steps, np.array([pairs[s] for s in sorted(pairs)], dtype=np.float64)


def _dataset_size(raw, examples_map) -> Optional[float]:
    epochs = raw.get("train", {}).get(_EPOCHS_TAG)
    if epochs is None or examples_map is None:
        return None
    examples = _interpolate(epochs[0], *examples_map)
    known = (epochs[1] > 0) & (examples > 0)
    if not known.any():
        return None
    # A count of examples; `epochs` is logged in float32, hence the rounding.
    return float(round(float(np.median(examples[known] / epochs[1][known]))))


def _wall_map(raw: Mapping[str, _Points]) -> Tuple[Tuple[np.ndarray, np.ndarray], str]:
    rate = raw.get("train", {}).get(_RATE_TAG)
    if rate is not None and np.all(np.isfinite(rate[1]) & (rate[1] > 0)):
        steps, rates = rate[0], rate[1]
        windows = np.diff(np.concatenate([[0], steps]))
        seconds = np.cumsum(windows / rates)
        return (np.concatenate([[0.0], steps]), np.concatenate([[0.0], seconds])), _RATE_TAG
    stamps = np.concatenate([s for points in raw.values() for _, _, s in points.values()])
    return (np.array([]), np.array([float(stamps.min())])), "event_time"


def _interpolate(steps: np.ndarray, known_steps: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Linear in step between known points, extended past the last at the last pace."""
    steps = steps.astype(np.float64)
    result = np.interp(steps, known_steps, known)
    after = steps > known_steps[-1]
    if after.any() and len(known_steps) > 1:
        pace = (known[-1] - known[-2]) / (known_steps[-1] - known_steps[-2])
        result[after] = known[-1] + pace * (steps[after] - known_steps[-1])
    return result


def _series(steps, values, stamps, examples_map, wall_map, dataset_size) -> Series:
    examples = None if examples_map is None else _interpolate(steps, *examples_map)
    if len(wall_map[0]):
        wall = _interpolate(steps, *wall_map)
    else:  # event_time: seconds since the run's first event
        wall = stamps - wall_map[1][0]
    epochs = None
    if examples is not None and dataset_size:
        epochs = examples / dataset_size
    return Series(steps, values, examples, wall, epochs, stamps)
