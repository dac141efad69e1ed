"""PeriodicProbe: the step grid shared by callbacks that measure outside the train step."""

from typing import Any

import keras

from toolkit.callbacks.log_points import optimizer_step

__all__ = ["PeriodicProbe"]


class PeriodicProbe(keras.callbacks.Callback):
    """Calls `probe(step)` every `every_steps` optimizer steps, outside the train step.

    A subclass sets `self._points` (a `toolkit.callbacks.log_points.LogPoints`, started in its
    `on_train_begin`) and `self._writer` (a `ScalarWriter` or `None`), and implements `probe`.
    It acts at batch begins, so it works with any `steps_per_execution` and costs one read of
    the step per point; the steps of an epoch's last execution are probed at the epoch's end.

    Example:

    >>> from toolkit.callbacks.log_points import LogPoints
    >>> class Counter(PeriodicProbe):
    ...     def on_train_begin(self, logs=None):
    ...         self._points, self._writer, self.steps = LogPoints(4), None, []
    ...         self._points.start(optimizer_step(self.model))
    ...     def probe(self, step):
    ...         self.steps.append(step)
    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> counter = Counter()
    >>> _ = model.fit(np.ones((80, 2)), np.ones(80), batch_size=8, verbose=0, callbacks=[counter])
    >>> counter.steps
    [4, 8]
    """

    def probe(self, step: int) -> Any:
        """Measures at optimizer step `step` (implemented by the subclass)."""
        raise NotImplementedError

    def on_epoch_begin(self, epoch, logs=None):
        self._points.epoch_begin(optimizer_step(self.model))

    # Not on_train_batch_end: overriding it makes Keras convert the logs at every step.
    def on_train_batch_begin(self, batch, logs=None):
        step = self._points.due(self.model, batch)
        if step is not None:
            self.probe(step)

    def on_epoch_end(self, epoch, logs=None):
        # The steps of an epoch's last execution have no batch begin after them.
        step = self._points.due_at_epoch_end(self.model)
        if step is not None:
            self.probe(step)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
