"""IntervalMetrics: Keras's running metric state survives a checkpoint inside an epoch."""

from typing import Any, List, Optional

import keras
import numpy as np

from toolkit import keras_compat
from toolkit.errors import ModelError

__all__ = ["IntervalMetrics"]


@keras.saving.register_keras_serializable(package="toolkit")
class IntervalMetrics(keras.callbacks.Callback):
    """Checkpoints Keras's running metric state when a checkpoint falls inside an epoch.

    Keras resets its metrics (the loss tracker's and each mean metric's `total`/`count`) when an
    epoch begins, and `toolkit.fit` runs one epoch per evaluation interval. A run resumed in
    the middle of an interval would therefore report the mean over the resumed steps only. This
    callback's state holds the metric variables whenever a checkpoint is written inside an
    epoch; restored, it sets them back right after Keras's reset at the next epoch begin, so the
    interval's logged means are those of all its steps, as in the uninterrupted run.

    `toolkit.fit(run_dir=...)` installs it. In a plain `model.fit`, give it to the
    `toolkit.checkpoint.Checkpointer` with the other callbacks whose state is saved.

    Example:

    >>> IntervalMetrics().get_state()
    {'in_interval': False}
    """

    def __init__(self):
        super().__init__()
        self._in_interval = False
        self._pending: Optional[List[Any]] = None

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self):
        return {}

    def get_state(self):
        if not self._in_interval:
            return {"in_interval": False}
        variables = keras_compat.metrics_variables(self.model)
        values = [keras.ops.convert_to_numpy(v) for v in variables]
        return {"in_interval": True, "metrics": [value.tolist() for value in values]}

    def set_state(self, state):
        self._pending = state.get("metrics") if state.get("in_interval") else None

    def on_epoch_begin(self, epoch, logs=None):
        self._in_interval = True
        pending, self._pending = self._pending, None
        if pending is None:
            return
        variables = keras_compat.metrics_variables(self.model)
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
