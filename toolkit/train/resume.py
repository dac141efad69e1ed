"""Resume: the checkpoint, preemption and NaN-guard callbacks `fit` installs for a `run_dir`.

With a `run_dir`, `toolkit.train.fit` keeps a `Checkpointer` in `run_dir/checkpoints` and makes
the run resumable exactly: running the same `fit` (or `toolkit train`) again continues from the
newest good checkpoint as if never interrupted. What it takes beyond model and optimizer:

- `RunCheckpointer` ticks the `TrainClock` before each save, so the saved clock is that of the
  saved step (not of the last evaluation);
- `IntervalState` saves Keras's running metric state (the loss tracker's and each mean metric's
  `total`/`count`) when a checkpoint falls inside an evaluation interval and puts it back when the
  resumed interval begins, so the interval's logged means are those of all its steps;
- the run's callbacks are ordered loggers first, savers last, so a checkpoint holds every
  callback's state *after* the step boundary it was written at.

Example:

>>> default_checkpoint_every(steps=10_000, eval_every_steps=100)
300
>>> default_checkpoint_every(steps=50_000, eval_every_steps=5_000)
1000
"""

import math
import os
from typing import Any, List, Optional

import keras
import numpy as np

from toolkit.errors import ModelError
from toolkit.checkpoint.checkpointer import Checkpointer
from toolkit.callbacks.preemption import Preemption

__all__ = ["IntervalState", "RunCheckpointer", "default_checkpoint_every", "run_dir_callbacks"]

CHECKPOINT_DIR = "checkpoints"
# A checkpoint of a small model costs ~10 ms; 250 steps of even a tiny model cost far more.
_MIN_EVERY, _MAX_EVERY = 250, 1000


def default_checkpoint_every(steps: int, eval_every_steps: Optional[int]) -> int:
    """Steps between checkpoints: a multiple of the evaluation interval of at least 250 steps,
    or every 1000 steps when the interval is longer (a checkpoint may fall inside an interval).

    Example:

    >>> default_checkpoint_every(steps=300, eval_every_steps=None)
    300
    """
    grid = eval_every_steps or steps
    if grid >= _MAX_EVERY:
        return _MAX_EVERY
    return grid * math.ceil(_MIN_EVERY / grid)


class RunCheckpointer(Checkpointer):
    """A `Checkpointer` that records the clock at the saved step before every save."""

    def save(self, metrics=None):
        if self.clock is not None:
            self.wait()
            self.clock.tick(self._step())
        return super().save(metrics=metrics)


class IntervalState(keras.callbacks.Callback):
    """Saves Keras's running metric state inside an evaluation interval (see the module doc).

    Keras resets its metrics when an epoch (here: an interval) begins, so a run resumed in the
    middle of an interval would report the mean over the resumed steps only. With this state,
    the metric variables are set back to their saved values right after that reset.

    Example:

    >>> IntervalState().get_state()
    {'in_interval': False}
    """

    def __init__(self):
        super().__init__()
        self._in_interval = False
        self._pending: Optional[List[Any]] = None

    @property
    def pending(self) -> bool:
        """Whether a restored in-interval metric state waits for its interval to begin."""
        return self._pending is not None

    def get_state(self):
        if not self._in_interval:
            return {"in_interval": False}
        values = [keras.ops.convert_to_numpy(v) for v in self.model.metrics_variables]
        return {"in_interval": True, "metrics": [value.tolist() for value in values]}

    def set_state(self, state):
        self._pending = state.get("metrics") if state.get("in_interval") else None

    def on_epoch_begin(self, epoch, logs=None):
        self._in_interval = True
        pending, self._pending = self._pending, None
        if pending is None:
            return
        variables = self.model.metrics_variables
        shapes = [tuple(v.shape) for v in variables]
        saved = [np.asarray(value, dtype=v.dtype) for value, v in zip(pending, variables)]
        if len(pending) != len(variables) or [s.shape for s in saved] != shapes:
            raise ModelError(
                f"The checkpoint's metric state does not match the model's metrics: it holds "
                f"{len(pending)} metric variables, the model {len(variables)} with shapes "
                f"{shapes}. Compile the model with the same loss and metrics as the run being "
                f"resumed, or start a fresh run directory."
            )
        for variable, value in zip(variables, saved):
            variable.assign(value)

    def on_epoch_end(self, epoch, logs=None):
        self._in_interval = False


def _run_checkpoint(checkpointer, every_steps, preemption):
    """A `Checkpoint` that writes no final checkpoint after a preemption (already written)."""
    # Imported here: `toolkit.callbacks` imports `toolkit.train`, which imports this module.
    from toolkit.callbacks.checkpoint import Checkpoint

    class RunCheckpoint(Checkpoint):
        def on_train_end(self, logs=None):
            if preemption.requested is not None:
                self.checkpointer.wait()
                return
            super().on_train_end(logs)

    return RunCheckpoint(checkpointer, every_steps=every_steps)


def run_dir_callbacks(
    model: keras.Model,
    run_dir: str,
    *,
    clock,
    every_steps: int,
    batch_at=None,
    resume_hint: str,
) -> tuple:
    """Returns `(checkpointer, [IntervalState], [NanGuard, Checkpoint, Preemption])` for `fit`.

    The checkpointer's callback list is filled in by `fit` once every callback is known.

    Example:

    >>> import tempfile
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("adam", "mse")
    >>> checkpointer, state, savers = run_dir_callbacks(
    ...     model, tempfile.mkdtemp(), clock=None, every_steps=100, resume_hint="rerun")
    >>> [type(c).__name__ for c in state + savers]
    ['IntervalState', 'NanGuard', 'RunCheckpoint', 'Preemption']
    """
    checkpointer = RunCheckpointer(
        os.path.join(os.fspath(run_dir), CHECKPOINT_DIR), model=model, clock=clock
    )
    from toolkit.callbacks.nan_guard import NanGuard

    preemption = Preemption(checkpointer, resume_hint=resume_hint)
    guard = NanGuard(checkpointer, every_steps=every_steps, batch_at=batch_at)
    savers = [guard, _run_checkpoint(checkpointer, every_steps, preemption), preemption]
    return checkpointer, [IntervalState()], savers
