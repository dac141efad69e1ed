"""find_batch_size: examples/s and peak memory against the batch size, the knee and the largest fit.

Computational speed rises with the batch size up to a point set by the hardware and libraries,
then flattens (S1.5); memory grows with it until the device runs out. For each batch size, from
small to large, the finder trains through Keras's own `Model.fit` with the model's own settings
(`steps_per_execution`, `jit_compile`, dtype policy, distribution strategy) and measures:

- **examples/s**, steady state: the first `WARMUP_EXECUTIONS` train-function calls after each
  new shape (tracing, XLA compilation, `tf.data` start-up) are not timed; then `num_windows`
  windows of at least `window_seconds` each are timed and the median kept (a shared machine moves
  single timings by 10-30%). Keras turns each call's logs into floats before the timer's hook
  runs, so each timestamp follows a finished call, as in any run with a per-batch callback.
  `steps_per_execution` is lowered where one call would outlast a window (`_steps_per_call`
  says why that costs little; the table shows the value used).
- **peak memory** over the whole measurement (`toolkit.probes.memory.PeakMemory`: the accelerator
  allocator's peak, else the process's peak resident memory).

The sweep stops at the first batch size that runs out of memory (`tf.errors.ResourceExhaustedError`)
or whose peak passes `(1 - SAFETY_MARGIN) x max_memory_bytes`. The result names the **knee**, the
smallest batch size within `1 - KNEE_FRACTION` (5%) of the best examples/s (S1.5: larger batches
beyond it buy no speed, and cost generalization and updates, S1.2 and S1.7), and the largest batch
size that fits.

The caller's model and optimizer are left as they were: a `ModelSnapshot` is put back before each
batch size and at the end, even after an error or out-of-memory, together with the execution
settings and `model.history`. A `model_fn` is called once per batch size instead, and its model
dropped after. `keras.backend.clear_session()` is never called: it would reset the caller's
process-wide Keras state (dtype policy, random seed, layer names) and frees nothing that dropping
the step's tensors does not.

Example:

>>> import keras, numpy as np
>>> keras.utils.set_random_seed(0)
>>> x, y = np.random.rand(256, 4).astype("float32"), np.random.rand(256).astype("float32")
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
>>> model.compile("adam", "mse")
>>> search = find_batch_size(model, (x, y), batch_sizes=(8, 16), num_windows=2,
...                          window_seconds=0.02)
>>> [point.status for point in search.points], search.largest_fitting
(['fits', 'fits'], 16)
"""

import gc
import statistics
import time
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from toolkit.data import endless
from toolkit.data.sources import as_source
from toolkit.errors import DataError, ModelError, RecipeError
from toolkit.keras_compat import reset_compiled_functions
from toolkit.probes.batch_size_search import (SAFETY_MARGIN, BatchSizePoint, BatchSizeSearch,
                                               fits_memory)
from toolkit.probes.memory import PeakMemory, format_bytes
from toolkit.probes.snapshot import ModelSnapshot

__all__ = ["default_batch_sizes", "find_batch_size"]

# S1.4-S1.5: try sizes from tens to a few thousand. 8 still shows the per-step overhead regime.
DEFAULT_MIN_BATCH_SIZE, DEFAULT_MAX_BATCH_SIZE = 8, 4096
# Untimed calls after each new shape: the first traces (and XLA-compiles), the second catches a
# retrace with relaxed shapes and the `tf.data` prefetch filling up.
WARMUP_EXECUTIONS = 2
DEFAULT_NUM_WINDOWS, DEFAULT_WINDOW_SECONDS = 5, 0.25
_UNBOUNDED_STEPS = 10**9  # `fit` needs a count for endless data; the timer stops it.

ModelOrFunction = Union[keras.Model, Callable[[], keras.Model]]


def default_batch_sizes(dataset_size: Optional[int] = None) -> Tuple[int, ...]:
    """Powers of two from 8 to 4096, or to the largest one not above `dataset_size`.

    Example:

    >>> default_batch_sizes(1437)
    (8, 16, 32, 64, 128, 256, 512, 1024)
    """
    largest = DEFAULT_MAX_BATCH_SIZE if not dataset_size else min(DEFAULT_MAX_BATCH_SIZE,
                                                                  int(dataset_size))
    sizes, size = [], DEFAULT_MIN_BATCH_SIZE
    while size <= largest:
        sizes.append(size)
        size *= 2
    return tuple(sizes) or (largest,)


def find_batch_size(
    model: ModelOrFunction,
    data: Any,
    *,
    batch_sizes: Optional[Sequence[int]] = None,
    max_memory_bytes: Optional[int] = None,
    num_windows: int = DEFAULT_NUM_WINDOWS,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
) -> BatchSizeSearch:
    """Measures steady-state examples/s and peak memory per batch size; the model is left as is.

    Args:
        model: A compiled Keras model (snapshotted and put back bit for bit), or a function
            without arguments returning a fresh compiled one (called once per batch size).
            Timed with its own `jit_compile` and `steps_per_execution` (lowered where one call
            would outlast a window).
        data: Arrays or a source, drawn by `toolkit.data.endless(data, batch_size)`; or a
            function `batch_size -> batches` (a `tf.data.Dataset`, repeated if finite, or an
            iterable), e.g. `lambda b: prepared.train_data(batch_size=b)`.
        batch_sizes: Increasing batch sizes to try. Defaults to `None`: powers of two from 8 to
            4096, stopping at the dataset size when known (`default_batch_sizes`).
        max_memory_bytes: Memory limit; a batch size whose peak passes 90% of it does not fit
            and ends the sweep. Defaults to `None` (only out-of-memory ends it).
        num_windows: Timed windows per batch size (the median is kept). Defaults to `5`.
        window_seconds: Least duration of a window; a window holds whole calls. Defaults to
            `0.25`.

    Returns:
        A `BatchSizeSearch`. If even the smallest batch size does not fit, its `knee` and
        `largest_fitting` are `None` and a warning says so.

    Raises:
        RecipeError: For bad `batch_sizes`, `max_memory_bytes`, `num_windows` or
            `window_seconds`.
        ModelError: If `model` is neither a compiled model nor a function returning one.
        DataError: If `data` cannot be re-batched or yields too few batches.
    """
    _check_arguments(max_memory_bytes, num_windows, window_seconds)
    max_memory_bytes = None if max_memory_bytes is None else int(max_memory_bytes)
    make_batches, dataset_size = _batch_maker(data)
    sizes = _check_batch_sizes(batch_sizes, dataset_size)
    meter = PeakMemory.detect()
    subject = _Subject(model, lambda: make_batches(sizes[0]))
    points, previous_speed = [], None
    stopped_because = f"it reached the last batch size, {sizes[-1]}"
    try:
        for size in sizes:
            point = _measure_size(subject, make_batches, size, meter, previous_speed,
                                  (num_windows, window_seconds), max_memory_bytes)
            points.append(point)
            previous_speed = point.examples_per_second
            if point.status == "out_of_memory":
                stopped_because = f"batch size {size} ran out of memory (ResourceExhaustedError)"
                break
            if point.status == "over_max_memory":
                stopped_because = (
                    f"batch size {size} peaked at {format_bytes(point.peak_memory_bytes)}, over "
                    f"{1 - SAFETY_MARGIN:.0%} of max memory {format_bytes(max_memory_bytes)}")
                break
    finally:
        subject.close()
    return BatchSizeSearch.from_points(points, meter.source, max_memory_bytes, stopped_because)


def _check_arguments(max_memory_bytes, num_windows, window_seconds) -> None:
    if max_memory_bytes is not None and (isinstance(max_memory_bytes, bool) or not isinstance(
            max_memory_bytes, (int, np.integer)) or max_memory_bytes < 1):
        raise RecipeError(f"`max_memory_bytes` must be a positive number of bytes or None. "
                          f"Received: max_memory_bytes={max_memory_bytes!r}.")
    if isinstance(num_windows, bool) or not isinstance(num_windows, int) or num_windows < 1:
        raise RecipeError(f"`num_windows` must be a positive integer. Received: "
                          f"num_windows={num_windows!r}. Pass e.g. num_windows=5.")
    if not isinstance(window_seconds, (int, float)) or not window_seconds > 0:
        raise RecipeError(f"`window_seconds` must be a positive number of seconds. Received: "
                          f"window_seconds={window_seconds!r}. Pass e.g. window_seconds=0.25.")


def _check_batch_sizes(batch_sizes, dataset_size) -> Tuple[int, ...]:
    if batch_sizes is None:
        return default_batch_sizes(dataset_size)
    sizes = tuple(batch_sizes) if isinstance(batch_sizes, (list, tuple)) else None
    if not sizes or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
                        for s in sizes) or list(sizes) != sorted(set(sizes)):
        raise RecipeError(
            f"`batch_sizes` must be increasing positive integers, smallest first (the sweep "
            f"stops at the first that does not fit). Received: batch_sizes={batch_sizes!r}. "
            f"Pass e.g. batch_sizes=(8, 16, 32, 64), or None for powers of two up to 4096.")
    return tuple(int(s) for s in sizes)


def _batch_maker(data) -> Tuple[Callable[[int], Any], Optional[int]]:
    """`batch_size -> batches`, and the dataset size when known."""
    if isinstance(data, tf.data.Dataset):
        raise DataError(
            "`find_batch_size` must re-batch the data at every batch size, which a "
            "tf.data.Dataset does not allow. Pass arrays (x, y), a toolkit source, or a function "
            "batch_size -> dataset, e.g. lambda b: dataset.unbatch().batch(b).repeat().")
    if callable(data):
        return data, None
    source = as_source(data)  # DataError for arrays it cannot use, before any training.
    return (lambda size: endless(source, size)), source.num_examples


def _repeated(batches: Any) -> Any:
    """A finite dataset repeated; any other iterable as the generator `Model.fit` accepts."""
    if not isinstance(batches, tf.data.Dataset):
        return (batch for batch in batches)
    if int(batches.cardinality()) != int(tf.data.INFINITE_CARDINALITY):
        return batches.repeat()
    return batches


class _Subject:
    """The model measured at each batch size: the caller's (put back after) or a fresh one."""

    def __init__(self, model: ModelOrFunction, first_batches: Callable[[], Any]):
        self.model_fn = None if isinstance(model, keras.Model) else model
        self.snapshot = None
        if self.model_fn is None:
            _check_compiled(model, "`find_batch_size` needs")
            if not model.built:
                batch = next(iter(_repeated(first_batches())))
                model(keras.utils.unpack_x_y_sample_weight(batch)[0])
            self.snapshot = ModelSnapshot.take(model)
            self.steps_per_execution = model.steps_per_execution
            self.history = model.__dict__.get("history", None)
        elif not callable(model):
            raise ModelError(f"`find_batch_size` needs a compiled keras.Model or a function "
                             f"returning one. Received: {type(model).__name__}.")

    def open(self) -> keras.Model:
        if self.model_fn is None:
            self.snapshot.restore()  # Every batch size starts from the caller's exact state.
            return self.snapshot.model
        model = self.model_fn()
        _check_compiled(model, "the `model_fn` given to `find_batch_size` must return")
        return model

    def close(self) -> None:
        if self.model_fn is not None:
            gc.collect()  # The fresh model and its optimizer go now, not at some later cycle.
            return
        model = self.snapshot.model
        self.snapshot.restore()
        _set_steps_per_execution(model, self.steps_per_execution)
        model.stop_training = False
        if self.history is None:
            model.__dict__.pop("history", None)
        else:
            model.history = self.history


def _check_compiled(model, who: str) -> None:
    if not isinstance(model, keras.Model) or not getattr(model, "compiled", False) or \
            model.optimizer is None:
        name = getattr(model, "name", type(model).__name__)
        raise ModelError(f"{who} a compiled keras.Model. Received: {name!r}, not compiled. Call "
                         f"`model.compile(optimizer, loss)` first.")


def _set_steps_per_execution(model: keras.Model, steps: int) -> None:
    if model.steps_per_execution != steps:
        model.steps_per_execution = steps
        reset_compiled_functions(model)  # Keras reads the setting only when it traces.


class _WindowTimer(keras.callbacks.Callback):
    """Times windows of whole train-function calls after the warm-up; stops `fit` when done."""

    def __init__(self, num_windows: int, window_seconds: float):
        super().__init__()
        self.num_windows, self.window_seconds = num_windows, window_seconds
        self.windows = []  # (steps, seconds)
        self._calls, self._start = 0, None

    def on_train_batch_end(self, batch, logs=None):
        # Keras made `logs` floats before calling this hook: the call has finished.
        now = time.perf_counter()
        self._calls += 1
        if self._calls <= WARMUP_EXECUTIONS:
            self._start = (now, batch)
            return
        start_time, start_step = self._start
        if now - start_time >= self.window_seconds:
            self.windows.append((batch - start_step, now - start_time))
            self._start = (now, batch)
            if len(self.windows) >= self.num_windows:
                self.model.stop_training = True


def _steps_per_call(model_steps: int, previous_speed: Optional[float], batch_size: int,
                    window_seconds: float) -> int:
    """The model's `steps_per_execution`, lowered so that one call lasts about a window.

    The call's length is predicted from the previous batch size's examples/s (they grow with the
    batch, so the guess runs long). Uncapped, mnist1d_cnn's 50 steps per call at batch 2048 take
    ~5 s on a 2-core CPU, warm-up plus 5 windows over half a minute per batch size. A capped call
    still lasts about a quarter of a window or more while examples/s at most double from one
    batch size to the next, so Keras's per-call overhead (~2 ms on CPU: 342 vs 972 steps/s of a
    small MLP at 1 and 64 steps per call, `toolkit.train.fast_defaults`) stays within a few
    percent of it. The first batch size keeps the model's own setting.
    """
    if previous_speed is None:
        return model_steps
    return min(model_steps, max(1, int(previous_speed * window_seconds / batch_size)))


def _measure_size(subject, make_batches, size, meter, previous_speed, windows,
                  max_memory_bytes) -> BatchSizePoint:
    num_windows, window_seconds = windows
    meter.reset()
    model = None
    steps_per_execution = 1
    try:
        model = subject.open()
        steps_per_execution = _steps_per_call(model.steps_per_execution, previous_speed, size,
                                              window_seconds)
        _set_steps_per_execution(model, steps_per_execution)
        timer = _WindowTimer(num_windows, window_seconds)
        model.fit(_repeated(make_batches(size)), epochs=1, steps_per_epoch=_UNBOUNDED_STEPS,
                  shuffle=False, verbose=0, callbacks=[timer])
    except tf.errors.ResourceExhaustedError:
        # The failed step's tensors are freed with the exception; the caller's model is put
        # back by `_Subject.close`, a fresh one is dropped here.
        model = None
        gc.collect()
        return BatchSizePoint(size, "out_of_memory", None, (), meter.peak_bytes(),
                              steps_per_execution)
    model = None
    if len(timer.windows) < num_windows:
        raise DataError(f"The data for batch size {size} ended after warm-up and "
                        f"{len(timer.windows)} of {num_windows} timed windows. Give endless "
                        f"data (toolkit.data.endless) or a function returning a dataset.")
    speeds = tuple(steps * size / seconds for steps, seconds in timer.windows)
    peak = meter.peak_bytes()
    status = "fits" if fits_memory(peak, max_memory_bytes) else "over_max_memory"
    return BatchSizePoint(size, status, float(statistics.median(speeds)), speeds, peak,
                          steps_per_execution)
