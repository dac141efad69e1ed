"""RunCallbacks: the callbacks of every `Model.fit` call of one `toolkit.train.fit` as one run."""

import keras

from toolkit.keras_compat import reads_batch_end_logs

__all__ = ["RunCallbacks"]


class RunCallbacks(keras.callbacks.CallbackList):
    """A `CallbackList` for which all the `Model.fit` calls of one `fit` are one training run.

    Keras calls `on_train_begin`/`on_train_end` at every `Model.fit` call, so callbacks that
    reset their state there (patience counters, logging positions, progress bars) would restart
    at every interval. Here those two hooks run once: `begin_run` before the first interval and
    `end_run` after the last; the calls Keras makes in between are ignored.

    Keras's `CallbackList` converts each execution's logs to Python floats (a host sync) before
    calling `on_train_batch_end`, even when no callback overrides it (the TensorFlow backend
    never dispatches it to a background thread). Here the hook is skipped when no callback
    overrides it, so the training loop does not wait for the device at every execution.
    """

    def __init__(self, callbacks, model):
        # Keras's `Model.fit` returns `model.history`, which only a `History` callback sets.
        super().__init__(callbacks, add_history=True, model=model)
        self._in_run = False
        self.last_epoch_logs = None
        self._uses_train_batch_end = reads_batch_end_logs(self.callbacks)

    def begin_run(self) -> None:
        """Calls every callback's `on_train_begin` (once per run)."""
        super().on_train_begin()
        self._in_run = True

    def end_run(self) -> None:
        """Calls every callback's `on_train_end` with the last epoch's logs (once per run)."""
        self._in_run = False
        super().on_train_end(self.last_epoch_logs)

    def on_train_batch_end(self, batch, logs=None):
        if self._uses_train_batch_end:
            super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.last_epoch_logs = logs
        super().on_epoch_end(epoch, logs)

    def on_train_begin(self, logs=None):
        if not self._in_run:
            super().on_train_begin(logs)

    def on_train_end(self, logs=None):
        if not self._in_run:
            super().on_train_end(logs)
