"""Axes: TensorBoard logging on the four axes of S0.3 (steps, examples, wall time, epochs)."""

import os
import time
import warnings
from typing import Any, Dict, Mapping, Optional

import keras
import numpy as np
from tensorboard.plugins.hparams import api as hparams_api

from toolkit.callbacks.log_points import LogPoints, optimizer_step
from toolkit.callbacks.metric_windows import MetricWindows
from toolkit.callbacks.scalar_writer import ScalarWriter
from toolkit.clock import TrainClock
from toolkit.keras_compat import loss_tracker

__all__ = ["Axes"]

EXAMPLES_FAMILY = "by_examples"


@keras.saving.register_keras_serializable(package="toolkit")
class Axes(keras.callbacks.Callback):
    """Writes training and evaluation scalars for TensorBoard against steps, examples and time.

    Use it to compare runs the four ways of S0.3: against optimizer steps (updates needed),
    against examples seen (data efficiency, free of the batch-size effect), against wall time
    (TensorBoard's "Relative" axis) and against epoch-equivalents. `toolkit.train.fit` installs
    it when given a `run_dir`; it works as well in a plain `model.fit(callbacks=[Axes(...)])`.

    Every `every_steps` optimizer steps it writes, into `log_dir/train`:
    - each training metric (`loss`, `accuracy`, ...) as its mean over the steps since the
      previous point, recovered from Keras's running state (see
      `toolkit.callbacks.metric_windows`): the *batch* loss with `every_steps=1` and
      `steps_per_execution=1`, not Keras's running mean over the epoch;
    - `learning_rate` (the optimizer's rate at this step, schedules included),
      `steps_per_second` and `examples_per_second` (over the window, evaluation time excluded),
      and `epochs` (epoch-equivalents = examples seen / dataset size) when the size is known.

    At each epoch end (each evaluation interval of `fit`) the `val_` metrics go to
    `log_dir/validation` under the same tags. Every tag's event step is `optimizer.iterations`,
    so curves continue across `fit` calls and resumed runs; every tag is also written under
    `by_examples/` with the examples seen as event step. Nothing is read from the device between
    log points (see `toolkit.callbacks.log_points`), so it costs nothing per step, and it works
    with any `steps_per_execution` (a point then lands on the first step at or after each
    multiple of `every_steps`, and is labelled with that true step). A final point is written
    at the end of training when steps were run since the last one.

    Args:
        log_dir: Directory of the run's event files (`train/`, `validation/` and, for the
            HParams plugin, the directory itself).
        every_steps: Optimizer steps between training points. Defaults to `100`.
        clock: The run's `toolkit.TrainClock`, for examples seen, wall time and epochs. Defaults
            to `None`: a clock of its own, whose batch size is measured from the first window
            (the loss tracker's example count per step).
        hparams: Hyperparameters for TensorBoard's HParams plugin (name to bool, int, float or
            str; other values are written as strings). Defaults to `None` (none written).

    Example:

    >>> import tempfile
    >>> import numpy as np
    >>> x, y = np.ones((64, 4)), np.ones(64)
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile("adam", "mse")
    >>> log_dir = tempfile.mkdtemp()
    >>> axes = Axes(log_dir, every_steps=5, hparams={"learning_rate": 1e-3})
    >>> _ = model.fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), callbacks=[axes],
    ...               verbose=0)
    >>> sorted(os.listdir(log_dir))[-2:]
    ['train', 'validation']
    """

    def __init__(
        self,
        log_dir: str,
        *,
        every_steps: int = 100,
        clock: Optional[TrainClock] = None,
        hparams: Optional[Mapping[str, Any]] = None,
    ):
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self.every_steps = every_steps
        self.clock = clock
        self.hparams = dict(hparams) if hparams is not None else None
        self._points = LogPoints(every_steps)
        self._windows = MetricWindows()
        self._writers: Dict[str, ScalarWriter] = {}
        self._hparams_written = False

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self) -> Dict[str, Any]:
        """The constructor arguments (a `clock` is run state: it is not part of the config)."""
        return {"log_dir": self.log_dir, "every_steps": self.every_steps, "hparams": self.hparams}

    # Resume (the callback-state protocol of `toolkit.checkpoint.Checkpointer`) ----------------

    def get_state(self) -> Dict[str, Any]:
        """The logging position: grid, open window and whether the HParams were written."""
        return {
            "next_step": self._points.next_step,
            "last_step": getattr(self, "_last_step", None),
            **self._windows.get_state(),  # "base", "carry", "closed"
            "hparams_written": self._hparams_written,
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Continues the logging position of `get_state` (the open window resumes with the
        metric state `toolkit.train.fit` restores when the interval begins again)."""
        self._points.next_step = int(state["next_step"])
        if state.get("last_step") is not None:
            self._last_step = int(state["last_step"])
        self._windows.set_state(state)
        self._hparams_written = bool(state["hparams_written"])

    # Keras hooks --------------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        step = optimizer_step(self.model)
        self._points.start(step)
        self._windows.reset()
        if self.clock is None:
            self.clock = TrainClock()
            self._measure_batch_size = True
        else:
            self._measure_batch_size = not _knows_examples(self.clock)
        self._owns_clock = not self.clock.running
        if self._owns_clock:
            self.clock.start()
        self._last_step = step
        self._last_time = time.monotonic()
        self._eval_seconds = 0.0
        self._eval_started = None
        self._training = True
        self._write_hparams()

    def on_epoch_begin(self, epoch, logs=None):
        self._points.epoch_begin(optimizer_step(self.model))
        self._windows.epoch_begin()  # A window restored by `set_state` goes on from here.

    # Not on_train_batch_end: overriding it makes Keras convert the logs at every step.
    def on_train_batch_begin(self, batch, logs=None):
        step = self._points.due(self.model, batch)
        if step is not None:
            self._write_train(step)

    def on_test_begin(self, logs=None):
        if getattr(self, "_training", False):
            self._end_of_epoch()
            self._eval_started = time.monotonic()

    def on_test_end(self, logs=None):
        if getattr(self, "_eval_started", None) is not None:
            self._eval_seconds += time.monotonic() - self._eval_started
            self._eval_started = None

    def on_epoch_end(self, epoch, logs=None):
        self._end_of_epoch()
        validation = {
            name[len("val_"):]: value
            for name, value in (logs or {}).items()
            if name.startswith("val_")
        }
        if validation:
            step = optimizer_step(self.model)
            self._write("validation", validation, step, self.clock.examples_at(step))
        # Once per evaluation interval: TensorBoard shows the interval's points now, and a
        # crash loses at most the points of the current interval.
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        step = optimizer_step(self.model)
        if step > self._last_step:
            self._write_train(step)
        if self._owns_clock:
            self.clock.pause()
        self._training = False
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    # Writing ------------------------------------------------------------------------------------

    def _end_of_epoch(self) -> None:
        # Keras evaluates and resets the metrics after the epoch's last execution: write a point
        # that is due now, and keep the rest of the window's training part (once per epoch).
        if self._windows.closed:
            return
        step = self._points.due_at_epoch_end(self.model)
        if step is not None:
            self._write_train(step)
        self._windows.close_epoch(self.model)

    def _write_train(self, step: int) -> None:
        now = time.monotonic()
        values = self._windows.read(self.model)
        if self._measure_batch_size:
            self._learn_batch_size(step)
        # Examples and epochs are pure functions of the step: no need to tick the clock here.
        examples = self.clock.examples_at(step)
        seconds = now - self._last_time - self._eval_seconds
        if seconds > 0:
            values["steps_per_second"] = (step - self._last_step) / seconds
            if _knows_examples(self.clock):
                examples_done = examples - self.clock.examples_at(self._last_step)
                values["examples_per_second"] = examples_done / seconds
        values["learning_rate"] = float(np.asarray(self.model.optimizer.learning_rate))
        if self.clock.dataset_size and _knows_examples(self.clock):
            values["epochs"] = examples / self.clock.dataset_size
        self._write("train", values, step, examples)
        self._last_step, self._last_time, self._eval_seconds = step, now, 0.0

    def _write(self, run: str, values: Mapping[str, float], step: int, examples: int) -> None:
        writer = self._writer(run)
        writer.write(values, step)
        if _knows_examples(self.clock):
            writer.write({f"{EXAMPLES_FAMILY}/{tag}": v for tag, v in values.items()}, examples)

    def _writer(self, run: str) -> ScalarWriter:
        if run not in self._writers:
            self._writers[run] = ScalarWriter(os.path.join(self.log_dir, run))
        return self._writers[run]

    def _learn_batch_size(self, step: int) -> None:
        # A clock without a batch size: measure it once from the loss tracker's example count.
        tracker = loss_tracker(self.model)
        steps = step - self._last_step
        count = self._windows.last_count.get(getattr(tracker, "name", "loss"))
        self._measure_batch_size = False
        if tracker is None or count is None or steps <= 0:
            warnings.warn(
                "Axes cannot tell how many examples a step holds, so the `by_examples/` tags "
                "and examples/s are not written. Pass `clock=toolkit.TrainClock(batch_size=...)`.",
                stacklevel=2,
            )
            return
        self.clock.batch_size = max(1, round(count / steps))

    def _write_hparams(self) -> None:
        if self.hparams is None or self._hparams_written:
            return
        writer = ScalarWriter(self.log_dir)
        values = {name: _hparam_value(value) for name, value in self.hparams.items()}
        writer.write_summary(hparams_api.hparams_pb(values), step=0)
        writer.close()
        self._hparams_written = True


def _knows_examples(clock: TrainClock) -> bool:
    # A clock that knows no batch size counts 0 examples for every step.
    return clock.examples_at(1) > 0


def _hparam_value(value: Any):
    if isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):  # NumPy scalars
        return value.item()
    return str(value)
