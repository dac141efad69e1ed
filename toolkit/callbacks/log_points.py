"""LogPoints: at which batch ends a callback acts, by optimizer step, without per-step syncs.

Two per-step costs are avoided. A callback that reads `optimizer.iterations` at every batch
forces a device-to-host sync per step (per execution with `steps_per_execution > 1`). And a
callback that overrides `on_train_batch_end` makes Keras 3 convert the step's logs to Python
floats on the training thread at every batch end (`toolkit.train.fit`'s `RunCallbacks` skips that
hook when no callback overrides it; a plain `model.fit` on the TensorFlow backend converts them
anyway). So the toolkit's callbacks act in
`on_train_batch_begin`, whose `batch` argument is the epoch-relative index of the execution's
first batch: `step at epoch begin + batch` is the number of optimizer steps done. The true
`optimizer.iterations` is read only when that count reaches the next multiple of `every_steps`:
one read per log point, plus one per epoch begin. The steps of an epoch's last execution are
seen at the epoch end (`due_at_epoch_end`), before Keras evaluates and resets its metrics.

With `steps_per_execution = k`, callbacks run only every `k` steps, so a point lands at the first
execution boundary at or after each multiple of `every_steps`, and it reports the true step.
"""

from typing import Optional

import keras

from toolkit import clock

__all__ = ["LogPoints"]


class LogPoints:
    """Decides which batch ends are log points: every `every_steps` optimizer steps.

    Args:
        every_steps: Optimizer steps between log points (the grid is the multiples of it).

    Example:

    >>> points = LogPoints(every_steps=10)
    >>> points.start(step=0)
    >>> points.epoch_begin(step=0)
    >>> points.is_near(batch=9), points.is_near(batch=10)
    (False, True)
    """

    def __init__(self, every_steps: int):
        if isinstance(every_steps, bool) or not isinstance(every_steps, int) or every_steps < 1:
            raise ValueError(
                f"`every_steps` must be a positive integer. Received: every_steps={every_steps!r}. "
                f"Pass e.g. every_steps=100."
            )
        self.every_steps = every_steps
        self.next_step = every_steps
        self._epoch_start = 0

    def start(self, step: int) -> None:
        """Starts the grid after optimizer step `step` (the step training starts from)."""
        self.next_step = (int(step) // self.every_steps + 1) * self.every_steps
        self._epoch_start = int(step)

    def epoch_begin(self, step: int) -> None:
        """Records the optimizer step at which a Keras epoch begins."""
        self._epoch_start = int(step)

    def is_near(self, batch: int) -> bool:
        """Whether the steps done before batch `batch` of the epoch reach the next point."""
        return self._epoch_start + int(batch) >= self.next_step

    def reached(self, step: int) -> bool:
        """Whether the true step `step` reached the next point; if so, moves the grid past it."""
        if step < self.next_step:
            return False
        self.next_step = (step // self.every_steps + 1) * self.every_steps
        return True

    def due(self, model: keras.Model, batch: int) -> Optional[int]:
        """In `on_train_batch_begin(batch)`: the optimizer step if it is a log point, or `None`."""
        if not self.is_near(batch):
            return None
        step = optimizer_step(model)
        return step if self.reached(step) else None

    def due_at_epoch_end(self, model: keras.Model) -> Optional[int]:
        """At an epoch's end: the optimizer step if it reached a log point, else `None`."""
        step = optimizer_step(model)
        return step if self.reached(step) else None


def optimizer_step(model: keras.Model) -> int:
    """Reads `model.optimizer.iterations` (a host sync: call it only at log points)."""
    return clock.optimizer_step(model)
