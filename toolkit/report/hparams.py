"""HParams: what TensorBoard's HParams dashboard compares, for one run and for a search.

The dashboard shows one row per *session* (a run directory whose root holds a session-start
summary: `toolkit.callbacks.Axes(hparams=...)` writes it) and one column per hyperparameter and
metric of the *experiment* declared in the logdir. Without a declared experiment TensorBoard
2.21 takes every hyperparameter of every session and every scalar tag as a column: about 50
columns for a `toolkit train` run, the result buried among `by_examples/epochs` and
`steps_per_second`. This module keeps the table short:

- `recipe_hparams(recipe)`: the few hyperparameters worth a column for a recipe run.
- `write_experiment(log_dir, hparams, metrics)`: declares the experiment (domains and metrics).
- `write_final_metrics(run_dir, metrics, step)`: a session's final results, as `final/<name>`
  scalars in the session's own directory, where a declared metric finds them.
- `write_run_experiment(run_dir, recipe, metrics, step)`: both, for one `toolkit train` run.

Where the files go, and why (TensorBoard 2.21; tests/report/test_hparams.py pins each point):

- Final metrics go into the session's *root* directory as `final/<name>` tags, not into a
  subdirectory: TensorBoard looks a metric up in the run `<session>/<group>`, and a session at
  the logdir root (`tensorboard --logdir <run_dir>`, as `toolkit train` prints) is `.`, so
  `./final` names no run and shows no value. Root tags (group `""`) show under any logdir.
- TensorBoard keeps the *first* experiment summary it meets in a run, so appending a second
  would freeze the first. Each `write_experiment` writes one event file atomically
  (`toolkit.atomic_write`) and deletes the previous one; final metrics likewise replace the
  same step's file. A resumed search or run may simply write again. Names start with the
  time, so a running TensorBoard (which reads a directory's files in name order, never going
  back) picks the new file up.
- The experiment goes into the logdir root, not a dedicated subdirectory (which would add an
  empty run to every run list of TensorBoard).

With several experiments in one logdir (`tensorboard --logdir runs` over single runs),
TensorBoard shows the rows of every run but the columns of the first experiment it finds;
a search declares one experiment for all its trials.

Example, a search of two trials:

>>> import tempfile
>>> from tensorboard.plugins.hparams import api as hparams_api
>>> from toolkit.callbacks.scalar_writer import ScalarWriter
>>> from toolkit.report.hparams_view import read_hparams
>>> search_dir = Path(tempfile.mkdtemp())
>>> _ = write_experiment(search_dir, {"optimizer.learning_rate": (1e-4, 1e-2)},
...                      ["final/objective"])
>>> for trial, learning_rate, objective in [("trial_0", 1e-3, 0.9), ("trial_1", 3e-3, 0.8)]:
...     writer = ScalarWriter(str(search_dir / trial))  # what `Axes(hparams=...)` writes
...     writer.write_summary(hparams_api.hparams_pb({"optimizer.learning_rate": learning_rate}), 0)
...     writer.close()
...     _ = write_final_metrics(search_dir / trial, {"objective": objective}, step=100)
>>> view = read_hparams(search_dir)
>>> view.hparams, view.metrics
(['optimizer.learning_rate'], ['final/objective'])
>>> [(s["name"], round(s["metrics"]["final/objective"], 2)) for s in view.sessions]
[('trial_0', 0.9), ('trial_1', 0.8)]
"""

import dataclasses
import os
import socket
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.hparams import api as hparams_api

from toolkit import atomic_write
from toolkit.keras_compat import make_event, scalar_summary

__all__ = [
    "FINAL_FAMILY", "recipe_hparams", "write_experiment", "write_final_metrics",
    "write_run_experiment",
]

# Tag prefix of a session's final results: `final/objective`, `final/test_accuracy`.
FINAL_FAMILY = "final"
# The columns every recipe run has (schema keys, so a run and a search trial share columns).
_CORE_KEYS = (
    "data.name", "data.batch_size", "model.name", "optimizer.name", "optimizer.learning_rate",
    "train.steps", "train.seed",
)
# Keys that change how a run is logged, stored or scheduled, not what it learns: never columns.
_BOOKKEEPING_KEYS = frozenset({
    "train.eval_every_steps", "train.log_every_steps", "train.checkpoint_every_steps",
    "train.deterministic", "train.strategy", "data.data_dir", "data.download", "data.in_memory",
    "data.check", "data.rescan_every_steps",
})
_EXPERIMENT_NAME = "hparams_experiment.toolkit"
_FINAL_NAME = "final_step{step:012d}.toolkit"
_FILE_VERSION = "brain.Event:2"

MetricSpec = Union[str, Sequence[str]]


def recipe_hparams(recipe: Any) -> dict:
    """The hyperparameters of a recipe run worth a column in the HParams dashboard.

    Always: `recipe` (its name), `data.name` (or `data.sources` for a multi-source recipe),
    `data.batch_size`, `model.name`, `optimizer.name`, `optimizer.learning_rate`, `train.steps`
    and `train.seed`. Then every other key whose value differs from the baseline: the shipped
    recipe of the same name (`toolkit.recipe.shipped_recipes()`), or the schema's defaults for
    any other recipe (so a recipe file's own choices show). Keys that only change how a run is
    logged, checkpointed or placed (`train.eval_every_steps`, `train.deterministic`,
    `data.check`, ...) are never listed. `toolkit train digits_mlp --set model.hidden_units=[64]`
    thus gets 9 columns, the last one `model.hidden_units`.

    Args:
        recipe: A `toolkit.recipe.Recipe`.

    Returns:
        `{"table.key": value}` with bool, int, float or str values (lists and tables as text).

    Example:

    >>> from toolkit.recipe import load_recipe
    >>> values = recipe_hparams(load_recipe("digits_mlp", ["model.hidden_units=[64]"]))
    >>> values["recipe"], values["optimizer.learning_rate"], values["model.hidden_units"]
    ('digits_mlp', 0.001, '[64]')
    >>> len(values)
    9
    """
    from toolkit.recipe.load import load_recipe, shipped_recipes
    from toolkit.recipe.schema import TABLES, Recipe

    current = _flatten(recipe, TABLES)
    baseline = _flatten(
        load_recipe(recipe.name) if recipe.name in shipped_recipes() else Recipe(), TABLES)
    core = ["data.sources" if recipe.data.sources else "data.name", *_CORE_KEYS[1:]]
    values = {"recipe": recipe.name, **{key: current[key] for key in core}}
    for key, value in current.items():
        if key not in values and key not in _BOOKKEEPING_KEYS and value != baseline[key]:
            values[key] = value
    return values


def write_experiment(
    log_dir: Union[str, os.PathLike], hparams: Mapping[str, Any], metrics: Iterable[MetricSpec],
) -> Path:
    """Declares the HParams experiment of a logdir: its hyperparameters and metrics.

    Call it once per search on the search directory (the trials are its subdirectories), or on
    a run directory for a single run. Calling it again replaces the declaration (see the module
    doc): a resumed search may simply call it again.

    Args:
        log_dir: The logdir whose sessions the experiment covers (created if missing).
        hparams: Hyperparameter name to domain: a list of values (`[32, 64]`, `["adam", "sgd"]`,
            `[True, False]`) for a discrete domain, or a `(low, high)` tuple for an interval of
            ints (both ints) or floats. Names are those each session was given (`Axes(hparams=
            ...)`); a session's other hyperparameters are not shown.
        metrics: The metric columns, each a scalar tag read from the session's own directory
            (`"final/objective"`, as `write_final_metrics` writes it), a `(group, tag)` pair for
            a tag of the session's subdirectory `group` (`("validation", "accuracy")`: only
            shown when the logdir is a parent of the sessions), or `(group, tag, display_name)`.
            The dashboard shows each session's last value of each.

    Returns:
        The event file written.

    Raises:
        ValueError: For an empty domain, an interval with `low > high`, mixed value types in a
            list, or a metric that is not a tag or a `(group, tag[, display_name])` tuple.
        TypeError: For a domain that is neither a list nor a `(low, high)` tuple.

    Example:

    >>> import tempfile
    >>> path = write_experiment(tempfile.mkdtemp(), {"model.filters": ["[32]", "[64]"],
    ...                         "optimizer.learning_rate": (1e-4, 1e-2)}, ["final/objective"])
    >>> path.name.endswith(".hparams_experiment.toolkit")
    True
    """
    specs = [hparams_api.HParam(name, _domain(name, domain)) for name, domain in hparams.items()]
    summary = hparams_api.hparams_config_pb(specs, [_metric(spec) for spec in metrics])
    return _replace_event_file(Path(log_dir), _EXPERIMENT_NAME, summary, step=0)


def write_final_metrics(
    run_dir: Union[str, os.PathLike], metrics: Mapping[str, float], step: int,
) -> Path:
    """Writes a session's final results as `final/<name>` scalars into its own directory.

    Declare them as metrics `"final/<name>"` with `write_experiment`. Written again at the same
    step (a trial or run resumed after it finished), they replace that step's values; at a
    later step (a continued trial) they add a point, and the dashboard shows the latest.

    Args:
        run_dir: The session's directory: the run or trial directory whose root holds its
            hyperparameters (created if missing).
        metrics: Name to value, e.g. `{"objective": 0.97, "test_accuracy": 0.96}`.
        step: The optimizer step the results belong to.

    Returns:
        The event file written.

    Raises:
        ValueError: For no metrics, or a value that is not a real number.

    Example:

    >>> import tempfile
    >>> path = write_final_metrics(tempfile.mkdtemp(), {"objective": 0.25}, step=40)
    >>> path.name.endswith(".final_step000000000040.toolkit")
    True
    """
    if not metrics:
        raise ValueError("write_final_metrics requires at least one metric. Received: {}.")
    values = {}
    for name, value in metrics.items():
        try:
            values[f"{FINAL_FAMILY}/{name}"] = float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"write_final_metrics requires real numbers. Received: {name}={value!r}. Pass "
                f"the metric's value (a float), not a list or a tensor of several values."
            ) from None
    name = _FINAL_NAME.format(step=int(step))
    return _replace_event_file(Path(run_dir), name, scalar_summary(values), step=int(step))


def write_run_experiment(
    run_dir: Union[str, os.PathLike], recipe: Any, metrics: Mapping[str, float], step: int,
) -> Path:
    """Declares a single recipe run's experiment and writes its final metrics.

    The experiment has the run's `recipe_hparams` (each with its one value as domain: the
    session that `Axes` writes has them) and one metric `final/<name>` per entry of `metrics`,
    written here at `step` (`write_final_metrics`). Call it after the run's final evaluation;
    calling it again (a continued run) replaces the declaration and adds the new results. Do
    not call it for the trials of a search: the search declares one experiment for them all.

    Args:
        run_dir: The run directory.
        recipe: The run's `toolkit.recipe.Recipe`.
        metrics: The final results, e.g. `{"test_loss": 0.1, "test_accuracy": 0.97}`.
        step: The run's optimizer step.

    Returns:
        The experiment's event file.

    Raises:
        ValueError: For no metrics, or a value that is not a real number.

    Example:

    >>> import tempfile
    >>> from toolkit.recipe import load_recipe
    >>> from toolkit.report.hparams_view import read_hparams
    >>> run_dir = tempfile.mkdtemp()
    >>> _ = write_run_experiment(run_dir, load_recipe("digits_mlp"), {"test_accuracy": 0.97},
    ...                          step=1500)
    >>> read_hparams(run_dir).metrics
    ['final/test_accuracy']
    """
    write_final_metrics(run_dir, metrics, step)
    domains = {name: [value] for name, value in recipe_hparams(recipe).items()}
    return write_experiment(run_dir, domains, [f"{FINAL_FAMILY}/{name}" for name in metrics])


def _flatten(recipe: Any, tables: Mapping[str, type]) -> dict:
    """Every `table.key` of a recipe as a bool, int, float or str (lists and tables as text)."""
    values = {}
    for table in tables:
        config = getattr(recipe, table)
        for field in dataclasses.fields(config):
            value = getattr(config, field.name)
            is_list = isinstance(value, tuple)
            values[f"{table}.{field.name}"] = str(list(value)) if is_list else value
    return values


def _domain(name: str, domain: Any) -> hparams_api.Domain:
    """A list of values -> `Discrete`; a `(low, high)` tuple -> `IntInterval`/`RealInterval`."""
    if isinstance(domain, tuple):
        numbers = len(domain) == 2 and all(_is_number(v) for v in domain)
        if not numbers or domain[0] > domain[1]:
            raise ValueError(
                f"The interval of hyperparameter `{name}` must be `(low, high)` with two numbers, "
                f"low <= high. Received: {domain!r}. Pass a list for a set of values."
            )
        if all(isinstance(v, int) for v in domain):
            return hparams_api.IntInterval(*domain)
        return hparams_api.RealInterval(float(domain[0]), float(domain[1]))
    if not isinstance(domain, list):
        raise TypeError(
            f"The domain of hyperparameter `{name}` must be a list of values or a (low, high) "
            f"tuple. Received: {domain!r} of type {type(domain).__name__}."
        )
    kinds = {bool if isinstance(v, bool) else float if _is_number(v) else type(v) for v in domain}
    if not domain or len(kinds) != 1 or not kinds <= {bool, float, str}:
        raise ValueError(
            f"The values of hyperparameter `{name}` must be a non-empty list of bools, numbers or "
            f"strings, all of one kind. Received: {domain!r}. Write lists and other values as "
            f"strings (`\"[32, 64]\"`), as the sessions' hyperparameters are."
        )
    values = [float(v) if kinds == {float} else v for v in domain]
    return hparams_api.Discrete(values)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metric(spec: MetricSpec) -> hparams_api.Metric:
    """A tag (the session's own directory) or `(group, tag[, display_name])` -> `Metric`."""
    if isinstance(spec, str):
        return hparams_api.Metric(spec)
    if isinstance(spec, (tuple, list)) and len(spec) in (2, 3) and all(
            isinstance(part, str) for part in spec):
        group, tag, *display = spec
        return hparams_api.Metric(tag, group=group or None, display_name=(display or [None])[0])
    raise ValueError(
        f"A metric must be a tag such as \"final/objective\" or a (group, tag) or (group, tag, "
        f"display_name) tuple of strings. Received: {spec!r}."
    )


def _replace_event_file(directory: Path, name: str, summary: Any, step: int) -> Path:
    """Writes `summary` as one event file ending in `name`, then deletes the older such files.

    The file name starts with the time (`events.out.tfevents.<seconds>.<host>.<name>`), so it
    sorts after every file written before it: a running TensorBoard reads a directory's files in
    name order. The temporary file has no `tfevents` in its name: TensorBoard never reads it.
    """
    import tensorflow as tf

    directory.mkdir(parents=True, exist_ok=True)
    now = time.time()
    path = directory / f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{name}"
    with atomic_write.temporary_path(path) as temporary:
        with tf.io.TFRecordWriter(str(temporary)) as writer:
            writer.write(event_pb2.Event(wall_time=now, file_version=_FILE_VERSION)
                         .SerializeToString())
            writer.write(make_event(summary, step, wall_time=now).SerializeToString())
    for old in directory.glob(f"events.out.tfevents.*.{name}"):
        if old != path:
            old.unlink(missing_ok=True)
    return path
