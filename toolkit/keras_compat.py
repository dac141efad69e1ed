"""The one place that touches private Keras, TensorBoard and tf.data internals.

Exact resume and step-exact logging need things Keras does not expose (the loss tracker, cached
train functions, `EarlyStopping`'s counters, ...). Each access is a function here naming the
behaviour it relies on and the versions it was checked on (`CHECKED_ON`); tests/test_keras_compat.py
pins each with tiny real models, so an upgrade fails one named test instead of silently changing
resume or logging. A broken assumption raises `RuntimeError` naming the versions (or, where
there is one, takes a slower but correct path).

Example:
>>> import numpy as np
>>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
>>> model.compile("sgd", "mse", metrics=["mae"])
>>> loss_tracker(model).name
'loss'
>>> build_compiled_metrics(model, (np.zeros((4, 2)), np.zeros((4, 1))))
>>> [name for name, _ in metric_leaves(model)]
['loss', 'mae']
>>> dataset_op_name(tf.data.Dataset.range(8).batch(2).prefetch(1))
'_PrefetchDataset'
"""

import contextlib
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

import keras
import tensorboard
import tensorflow as tf
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
from tensorboard.compat.proto import types_pb2
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.summary.writer.event_file_writer import EventFileWriter

__all__ = [  # Internal to the toolkit: not re-exported by `toolkit/__init__.py`.
    "loss_tracker", "compiled_metrics_built", "build_compiled_metrics", "metric_leaves",
    "metrics_variables", "reset_compiled_functions", "reads_batch_end_logs", "keras_callback_state",
    "set_keras_callback_state", "sublayers", "outbound_operations", "keras_history",
    "node_input_tensors", "scalar_summary", "make_event", "open_event_writer", "dataset_inputs",
    "dataset_op_name", "dataset_keeps_order", "keras_tuner_tracebacks_off",
]

CHECKED_ON = "Keras 3.15.1, TensorFlow 2.21.0, TensorBoard 2.21.0, KerasTuner 1.4.8"


def _broken(assumption: str) -> RuntimeError:
    return RuntimeError(
        f"toolkit.keras_compat: {assumption}. Checked on {CHECKED_ON}; installed: Keras "
        f"{keras.__version__}, TensorFlow {tf.__version__}, TensorBoard {tensorboard.__version__}"
        f". Install the checked versions or update toolkit/keras_compat.py (its tests name it)."
    )


def _private(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name)
    except AttributeError:
        raise _broken(f"`{type(obj).__name__}` has no attribute `{name}`") from None


# Models and metrics ---------------------------------------------------------------------------
def loss_tracker(model: keras.Model) -> Optional[keras.metrics.Mean]:
    """The `Mean` that `Model.fit` logs as `loss` (`model._loss_tracker`); `None` before compile.

    Keras 3 creates it in `compile()` as `Mean(name="loss")` (checked on 3.15.1).
    """
    tracker = _private(model, "_loss_tracker")
    if tracker is not None and not isinstance(tracker, keras.metrics.Mean):
        raise _broken(f"`model._loss_tracker` is a {type(tracker).__name__}, not a `Mean`")
    return tracker


def compiled_metrics_built(model: keras.Model) -> bool:
    """Whether `model._compile_metrics` and `model._compile_loss` are built (Keras 3 builds
    them at the first train step; until then `metrics_variables` lacks theirs; checked on 3.15.1).
    """
    parts = (_private(model, "_compile_metrics"), _private(model, "_compile_loss"))
    return all(part is None or part.built for part in parts)


def build_compiled_metrics(model: keras.Model, batch: Any) -> None:
    """Builds the compiled metrics from one `(x, y[, sample_weight])` batch, without a step.

    Calls `model._symbolic_build(data_batch=batch)` (checked on 3.15.1), which reads only the
    batch's shapes and dtypes and also builds the optimizer. Does nothing once built.
    """
    if compiled_metrics_built(model):
        return
    _private(model, "_symbolic_build")(data_batch=batch)
    if not compiled_metrics_built(model):
        raise _broken("`model._symbolic_build(data_batch=...)` did not build the metrics")


def metric_leaves(model: keras.Model) -> List[Tuple[str, keras.metrics.Metric]]:
    """`(log name, metric)` for each value `Model.fit` logs, in Keras's log order.

    Keras 3 logs `model.metrics` in order, expanding `model._compile_metrics` into its `result()`
    keys, in the order of its `metrics` (output prefixes, `_1` suffixes; checked on 3.15.1). An
    unbuilt container is left out (see `compiled_metrics_built`).
    """
    container = _private(model, "_compile_metrics")
    leaves = []
    for metric in model.metrics:
        if metric is not container:
            leaves.append((metric.name, metric))
        elif container.built:
            names, children = list(container.result()), list(container.metrics)
            if len(names) != len(children):
                raise _broken(f"compiled metrics log {names} for {len(children)} metrics")
            leaves.extend(zip(names, children))
    return leaves


def metrics_variables(model: keras.Model) -> List[keras.Variable]:
    """`model.metrics_variables`, refusing to answer before the compiled metrics are built.

    Keras 3 lists them in `model.metrics` order, the same for two builds of one model (checked
    on 3.15.1), so saved values can be assigned back by position.
    """
    if not compiled_metrics_built(model):
        raise ValueError(
            f"The compiled metrics of model {model.name!r} are not built yet, so its metric "
            f"variables are incomplete. Call `build_compiled_metrics(model, batch)` first."
        )
    return list(model.metrics_variables)


def reset_compiled_functions(model: keras.Model) -> None:
    """Drops the cached train, test and predict functions; Keras traces them again on next use.

    Keras 3 reads `steps_per_execution` and `jit_compile` only when it builds them, and setting
    those attributes does not drop them (checked on 3.15.1). Weights and state are untouched.
    """
    for name in ("train_function", "test_function", "predict_function"):
        _private(model, name)  # Raises if Keras renamed it.
        setattr(model, name, None)


# Callbacks ------------------------------------------------------------------------------------
def reads_batch_end_logs(callbacks: Iterable[keras.callbacks.Callback]) -> bool:
    """Whether any callback overrides `on_train_batch_end` or `on_batch_end`.

    `CallbackList` converts each execution's logs to floats (a host sync, on the training thread
    with TensorFlow) before these hooks; Keras 3 marks `Callback`'s no-op hooks `_is_default`
    (checked on 3.15.1). Without the marker every callback counts as reading (correct, slower).
    """
    return any(not getattr(getattr(callback, hook, None), "_is_default", False)
               for callback in callbacks for hook in ("on_train_batch_end", "on_batch_end"))


# Counters of Keras callbacks whose future depends on them; `best_epoch` is set by
# `EarlyStopping.on_train_begin` (to 0), the others already by `__init__` (checked on 3.15.1).
_KERAS_CALLBACK_STATE = (
    (keras.callbacks.EarlyStopping, ("wait", "stopped_epoch", "best", "best_epoch")),
    (keras.callbacks.ReduceLROnPlateau, ("wait", "cooldown_counter", "best")),
)
_SET_AT_TRAIN_BEGIN = {"best_epoch": 0}


def _counters(callback) -> Tuple[str, ...]:
    return next((names for cls, names in _KERAS_CALLBACK_STATE if isinstance(callback, cls)), ())


def keras_callback_state(callback: keras.callbacks.Callback) -> Optional[Dict[str, Any]]:
    """The counters of Keras's `EarlyStopping`/`ReduceLROnPlateau` (plain Python), else `None`.

    Not `best_weights`. A renamed counter raises (a default would change when a resume stops).
    """
    state = {}
    for name in _counters(callback):
        if not hasattr(callback, name) and name not in _SET_AT_TRAIN_BEGIN:
            raise _broken(f"`{type(callback).__name__}` keeps no `{name}` counter")
        value = getattr(callback, name, _SET_AT_TRAIN_BEGIN.get(name))
        is_array = hasattr(value, "item") or tf.is_tensor(value)  # NumPy scalars, tensors
        state[name] = keras.ops.convert_to_numpy(value).item() if is_array else value
    return state or None


def set_keras_callback_state(callback: keras.callbacks.Callback, state: Mapping) -> None:
    """Sets the counters `keras_callback_state` returned (after the callback's `on_train_begin`)."""
    for name in _counters(callback):
        if name in state:
            setattr(callback, name, state[name])


# The layer graph (for toolkit.lint) -----------------------------------------------------------
def sublayers(layer: keras.layers.Layer) -> List[keras.layers.Layer]:
    """The layers tracked directly inside `layer` (`layer._layers`, input layers included)."""
    return list(_private(layer, "_layers"))


def outbound_operations(layer: keras.layers.Layer) -> list:
    """The operations that consume `layer`'s outputs in functional graphs (`_outbound_nodes`)."""
    return [node.operation for node in _private(layer, "_outbound_nodes")]


def keras_history(tensor: Any) -> Optional[Tuple[Any, int, int]]:
    """`(operation, node_index, tensor_index)` that produced a symbolic tensor, else `None`.

    Keras 3 sets `tensor._keras_history` on every `KerasTensor` (checked on 3.15.1).
    """
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        if isinstance(tensor, keras.KerasTensor):
            raise _broken("a `KerasTensor` carries no `_keras_history`")
        return None
    return history.operation, history.node_index, history.tensor_index


def node_input_tensors(operation: Any, node_index: int) -> list:
    """The input tensors of call `node_index` of `operation` (`_inbound_nodes[i].input_tensors`)."""
    return list(_private(operation, "_inbound_nodes")[node_index].input_tensors)


# TensorBoard event files ----------------------------------------------------------------------
_SCALAR_METADATA = scalar_metadata.create_summary_metadata(display_name=None, description=None)
_SCALAR_SHAPE = tensor_shape_pb2.TensorShapeProto()


def scalar_summary(values: Mapping[str, float]) -> summary_pb2.Summary:
    """A `Summary` of float32 scalars, each value the record `tf.summary.scalar` writes (a
    `tensor` with the scalar plugin's metadata; non-public modules, checked on TensorBoard 2.21).
    """
    def tensor(value):
        return tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT, tensor_shape=_SCALAR_SHAPE, float_val=[float(value)]
        )

    return summary_pb2.Summary(value=[
        summary_pb2.Summary.Value(tag=tag, metadata=_SCALAR_METADATA, tensor=tensor(value))
        for tag, value in values.items()
    ])


def load_events(path: str) -> list:
    """Every event of one event file, as TensorBoard's (non-public) `EventFileLoader` reads
    it: legacy `simple_value` scalars migrated to tensors, a truncated last record dropped."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    return list(EventFileLoader(path).Load())


def unscaled_loss(loss: Any) -> Any:
    """A loss from `Model.compute_loss` as Keras logs it: `compute_loss` divides by the number
    of replicas under a `tf.distribute` strategy (so that summing replicas' gradients averages
    them); Keras's train step multiplies that back with this private function."""
    from keras.src.losses.loss import unscale_loss_for_distribution

    return unscale_loss_for_distribution(loss)


def text_summary(tag: str, text: str) -> summary_pb2.Summary:
    """A `Summary` with one Markdown text value for TensorBoard's Text dashboard: the public
    `tensorboard.summary.v1.text_pb`, re-read as TensorBoard's own (non-public) proto class,
    which its `EventFileWriter` requires."""
    from tensorboard.summary.v1 import text_pb

    return summary_pb2.Summary.FromString(text_pb(tag, text).SerializeToString())


def make_event(summary: summary_pb2.Summary, step: int, wall_time: float) -> event_pb2.Event:
    """An `Event` record holding `summary` at `step`, stamped `wall_time` (seconds since epoch)."""
    return event_pb2.Event(wall_time=wall_time, step=int(step), summary=summary)


def open_event_writer(directory: str, filename_suffix: str) -> EventFileWriter:
    """TensorBoard's non-public `EventFileWriter` (`add_event`, `flush`, `close`; a thread)."""
    return EventFileWriter(directory, filename_suffix=filename_suffix)


# tf.data graphs -------------------------------------------------------------------------------
def dataset_inputs(dataset: tf.data.Dataset) -> List[tf.data.Dataset]:
    """The datasets `dataset` was made from: one for `map`/`batch`/..., several for `zip`.

    Calls `tf.data.Dataset._inputs()` (checked on TensorFlow 2.21.0). Sources have none;
    datasets built inside a function (`interleave`, `flat_map`) are not inputs.
    """
    try:
        inputs = dataset._inputs()
    except (AttributeError, NotImplementedError) as error:
        raise _broken(f"`{type(dataset).__name__}._inputs()` failed ({error!r})") from error
    return list(inputs)


def dataset_op_name(dataset: tf.data.Dataset) -> str:
    """The class name of the transformation that made `dataset`, e.g. `"_MapDataset"`.

    Private names, one per transformation (`cache` makes `CacheDataset`; checked on TF 2.21.0).
    """
    return type(dataset).__name__


def dataset_keeps_order(dataset: tf.data.Dataset) -> bool:
    """Whether `dataset` yields its elements in a deterministic order.

    A parallel `map` or `batch` keeps its `deterministic` argument as `_deterministic` ("true",
    "false", or "default": follow the options; checked on TF 2.21.0). Otherwise
    `dataset.options().deterministic` (merged from its inputs) decides; unset means True.
    """
    flag = getattr(dataset, "_deterministic", "default")
    if flag not in ("true", "false", "default"):
        raise _broken(f"`{type(dataset).__name__}._deterministic` is {flag!r}")
    if flag != "default":
        return flag == "true"
    return dataset.options().deterministic is not False


@contextlib.contextmanager
def keras_tuner_tracebacks_off() -> Iterator[None]:
    """KerasTuner prints the traceback of every failed trial (`keras_tuner.src.config.DEBUG`,
    on by default): off while the block runs. The message stays in the trial's `trial.json`."""
    from keras_tuner.src import config

    if not hasattr(config, "DEBUG"):
        raise _broken("keras_tuner.src.config.DEBUG switches the failed-trial tracebacks")
    previous, config.DEBUG = config.DEBUG, False
    try:
        yield
    finally:
        config.DEBUG = previous
