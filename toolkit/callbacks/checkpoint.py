"""Checkpoint: save a resumable checkpoint every N optimizer steps inside `model.fit`."""

import os
from typing import Union

import keras

from toolkit.checkpoint.checkpointer import Checkpointer

__all__ = ["Checkpoint"]


@keras.saving.register_keras_serializable(package="toolkit")
class Checkpoint(keras.callbacks.Callback):
    """Saves model, optimizer (Adam's moments, step) and clock every N optimizer steps.

    Use it in any `model.fit` to make the run resumable with `toolkit.checkpoint.restore`. It saves
    when the optimizer step crosses a multiple of `every_steps`, at the end of an epoch that
    crossed one (or at every epoch end when `keep_best > 0`, with the epoch's metrics, so the
    best checkpoints by `monitor` are kept), and at the end of training. The step is counted
    from the batch index: no host sync between saves, and it works with
    `steps_per_execution > 1` (a save then happens at the first execution boundary past the
    multiple). Before the first training step it gives the callbacks the states read by
    `Checkpointer.restore` (`Checkpointer.apply_callback_states`), after Keras callbacks have
    reset themselves in `on_train_begin`.

    Args:
        directory: Checkpoint directory, or a `Checkpointer` (to also save a clock and callback
            states, or to share it with `NanGuard`).
        every_steps: Save every this many optimizer steps. Defaults to `1000`.
        max_to_keep: Newest checkpoints kept (only with a directory). Defaults to `3`.
        keep_best: Best checkpoints by `monitor` kept as well (only with a directory).
            Defaults to `0`.
        monitor: Metric of the epoch logs ranking checkpoints. Defaults to `"val_loss"`.
        mode: `"min"` or `"max"`. Defaults to `"min"`.

    Example:

    >>> import tempfile, keras, numpy as np
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> callback = Checkpoint(tempfile.mkdtemp(), every_steps=4)
    >>> _ = model.fit(np.ones((80, 3)), np.ones(80), batch_size=8, verbose=0,
    ...               callbacks=[callback])
    >>> [info.step for info in callback.checkpointer.checkpoints()]  # Newest 3 kept.
    [4, 8, 10]
    """

    def __init__(
        self,
        directory: Union[str, os.PathLike, Checkpointer],
        every_steps: int = 1000,
        max_to_keep: int = 3,
        keep_best: int = 0,
        monitor: str = "val_loss",
        mode: str = "min",
    ):
        super().__init__()
        if not isinstance(every_steps, int) or every_steps < 1:
            raise ValueError(
                f"`every_steps` must be a positive int. Received: every_steps={every_steps!r}."
            )
        if isinstance(directory, Checkpointer):
            defaults = (3, 0, "val_loss", "min")
            if (max_to_keep, keep_best, monitor, mode) != defaults:
                raise ValueError(
                    "Pass `max_to_keep`, `keep_best`, `monitor` and `mode` to the `Checkpointer`, "
                    "not to `Checkpoint`, when giving it a `Checkpointer`."
                )
            self.checkpointer = directory
            max_to_keep, keep_best = directory.max_to_keep, directory.keep_best
            monitor, mode = directory.monitor, directory.mode
            directory = directory.directory
        else:
            self.checkpointer = None
        self.directory = os.fspath(directory)
        self.every_steps = every_steps
        self.max_to_keep = max_to_keep
        self.keep_best = keep_best
        self.monitor = monitor
        self.mode = mode

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self):
        return {
            "directory": self.directory,
            "every_steps": self.every_steps,
            "max_to_keep": self.max_to_keep,
            "keep_best": self.keep_best,
            "monitor": self.monitor,
            "mode": self.mode,
        }

    def set_model(self, model):
        super().set_model(model)
        if self.checkpointer is None or self.checkpointer.model is not model:
            self.checkpointer = Checkpointer(
                self.directory,
                model=model,
                max_to_keep=self.max_to_keep,
                keep_best=self.keep_best,
                monitor=self.monitor,
                mode=self.mode,
            )

    def on_train_begin(self, logs=None):
        # One host read per fit() call; between saves the step is counted from batch indices.
        self._epoch_start_step = self._anchor = self._step_now()
        self._pending = True

    def on_train_batch_begin(self, batch, logs=None):
        if self._pending:
            self.checkpointer.apply_callback_states()
            self._pending = False
        step = self._epoch_start_step + batch
        if step // self.every_steps > self._boundary:
            saved = self._save()
            # Re-anchor the count on the true step (skipped loss-scale steps, rollbacks).
            self._epoch_start_step = saved - batch

    def on_epoch_end(self, epoch, logs=None):
        step = self._step_now()  # Keras already synced to compute the epoch logs.
        self._epoch_start_step = step
        crossed = step // self.every_steps > self._boundary
        ranked = self.keep_best > 0 and self.monitor in (logs or {})
        if step != self.checkpointer.last_saved_step and (crossed or ranked):
            self._save(logs)

    def on_train_end(self, logs=None):
        if self._step_now() != self.checkpointer.last_saved_step:
            self._save()
        self.checkpointer.wait()

    @property
    def _boundary(self) -> int:
        # The last save (or restore, or rollback); without one, the step training started at.
        last = self.checkpointer.last_saved_step
        return (self._anchor if last is None else last) // self.every_steps

    def _step_now(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def _save(self, metrics=None) -> int:
        self.checkpointer.save(metrics=metrics)
        return self._step_now()
