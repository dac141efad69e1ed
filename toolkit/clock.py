"""TrainClock: one clock for steps, examples seen, wall time and epoch-equivalents."""

import dataclasses
import time
from typing import Callable, Optional, Union

import tensorflow as tf

__all__ = ["TrainClock", "ClockReading"]


@dataclasses.dataclass(frozen=True)
class ClockReading:
    """A snapshot of the `TrainClock` at one optimizer step.

    Args:
        step: Optimizer steps taken (`model.optimizer.iterations`).
        examples_seen: Training examples drawn up to `step`.
        wall_seconds: Training wall time up to `step`, summed over every resumed run.
        epochs: Epoch-equivalents (`examples_seen / dataset_size`), or `None` when the dataset
            size is unknown.
    """

    step: int
    examples_seen: int
    wall_seconds: float
    epochs: Optional[float]


class TrainClock(tf.Module):
    """Keeps step, examples seen, wall time and epoch-equivalents for one training run.

    The step is always `model.optimizer.iterations`: the clock never counts steps itself, so it
    cannot drift from the optimizer. Examples seen are a pure function of the step (the endless
    pipeline's batch sizes summed, never `step * batch` when the batch size changes). Wall time is
    the training time accumulated over every run that resumed this one, excluding the time the run
    was stopped. The clock is a `tf.Module` whose state lives in variables, so
    `tf.train.Checkpoint(clock=clock)` saves and restores it with the model and the optimizer.

    The clock is read (`tick`) only where a host sync already happens, e.g. every `N` steps in a
    logging callback, never inside the train step.

    Args:
        batch_size: Examples per step, or a function `step -> batch size` for a batch-size
            schedule. Ignored when `examples_at` is given. Defaults to `None` (examples unknown,
            reported as `0`).
        dataset_size: Number of training examples, to report epoch-equivalents. Defaults to
            `None` (no epoch-equivalents).
        examples_at: Function `step -> examples drawn before that step`. Defaults to `None`
            (derived from `batch_size`).
        name: Module name. Defaults to `"train_clock"`.

    Example:

    >>> clock = TrainClock(batch_size=32, dataset_size=4000)
    >>> clock.start()
    >>> reading = clock.tick(step=125)
    >>> reading.examples_seen, reading.epochs
    (4000, 1.0)
    """

    def __init__(
        self,
        batch_size: Union[int, Callable[[int], int], None] = None,
        dataset_size: Optional[int] = None,
        examples_at: Optional[Callable[[int], int]] = None,
        name: str = "train_clock",
    ):
        super().__init__(name=name)
        if dataset_size is not None and dataset_size <= 0:
            raise ValueError(
                f"`dataset_size` must be a positive number of examples or None. "
                f"Received: dataset_size={dataset_size!r}."
            )
        self.batch_size = batch_size
        self.dataset_size = dataset_size
        self._examples_at = examples_at
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.examples_seen = tf.Variable(0, dtype=tf.int64, trainable=False, name="examples_seen")
        self.wall_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="wall_seconds")
        self._last_time = None

    def examples_at(self, step: int) -> int:
        """Returns the number of examples drawn before optimizer step `step`."""
        step = int(step)
        if self._examples_at is not None:
            return int(self._examples_at(step))
        if self.batch_size is None:
            return 0
        if callable(self.batch_size):
            return int(sum(int(self.batch_size(k)) for k in range(step)))
        return step * int(self.batch_size)

    def start(self) -> None:
        """Starts (or restarts, after a pause or a resume) counting wall time."""
        self._last_time = time.monotonic()

    def pause(self) -> None:
        """Adds the wall time since the last `start`/`tick` and stops counting."""
        self._advance_wall()
        self._last_time = None

    @property
    def running(self) -> bool:
        """Whether wall time is being counted."""
        return self._last_time is not None

    def tick(self, step: int) -> ClockReading:
        """Records that training reached optimizer step `step` and returns the reading."""
        self._advance_wall()
        step = int(step)
        self.step.assign(step)
        self.examples_seen.assign(self.examples_at(step))
        return self.reading()

    def reading(self) -> ClockReading:
        """Returns the clock as last recorded, without advancing it."""
        examples = int(self.examples_seen.numpy())
        epochs = None if self.dataset_size is None else examples / self.dataset_size
        return ClockReading(
            step=int(self.step.numpy()),
            examples_seen=examples,
            wall_seconds=float(self.wall_seconds.numpy()),
            epochs=epochs,
        )

    def _advance_wall(self) -> None:
        if self._last_time is None:
            return
        now = time.monotonic()
        self.wall_seconds.assign_add(now - self._last_time)
        self._last_time = now


def optimizer_step(model) -> int:
    """`model.optimizer.iterations` as a Python int (a device read: call it at log points only).

    Works under any `tf.distribute` strategy: `int()` of a Keras variable fails inside a
    strategy's scope, where its value is a `MirroredVariable`.
    """
    return int(model.optimizer.iterations.numpy())

