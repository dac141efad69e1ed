"""Preemption: SIGTERM / Ctrl-C become "checkpoint at the next step boundary, then stop"."""

import logging
import os
import signal
import threading
from typing import Optional, Sequence, Union

import keras

from toolkit.checkpoint.checkpointer import Checkpointer

__all__ = ["Preemption"]

logger = logging.getLogger("toolkit")


@keras.saving.register_keras_serializable(package="toolkit")
class Preemption(keras.callbacks.Callback):
    """Turns SIGTERM and SIGINT into a checkpoint at the next step boundary and a clean stop.

    Schedulers (Kubernetes, Slurm, preemptible VMs) send SIGTERM and kill the process a few
    seconds later; Ctrl-C sends SIGINT. While installed, either signal only sets a flag. At the
    next step boundary (`on_train_batch_begin`, no host sync in between) the callback writes a
    checkpoint *first*, then sets `model.stop_training`: Keras finishes the step already queued
    (and the epoch's validation, if any) and `fit` returns; the checkpointer is *sealed*
    (`Checkpointer.sealed`) so that no later save replaces the preemption checkpoint. A second
    signal while waiting restores the previous handlers and re-delivers it (a second Ctrl-C
    interrupts at once).

    Use it as a callback (handlers live from `on_train_begin` to `on_train_end`), or as a
    context manager around a loop of several `fit` calls, so a signal between two calls is
    also caught; then check `requested` after each call. On exit, a request not yet saved is
    saved. The previous handlers are always put back.

    Args:
        checkpointer: The `Checkpointer` to write with, or a directory (a `Checkpointer` for the
            model is then made when the callback is given the model; as a context manager
            around `fit` calls, pass a `Checkpointer`).
        signals: Signals to catch. Defaults to `(signal.SIGTERM, signal.SIGINT)`.
        resume_hint: How to resume, appended to the message. Defaults to `None` (a hint for
            `toolkit.checkpoint.restore`).

    Attributes:
        requested: The signal number received, or `None`.
        message: What happened and how to resume, once a signal was handled.
        exit_code: `128 + signal number` once a signal was received (the shell's convention,
            so a scheduler restarts the job), else `0`.

    Example:

    >>> import signal, tempfile, keras, numpy as np
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> checkpointer = Checkpointer(tempfile.mkdtemp(), model=model)
    >>> def sigterm(batch, logs):  # Stands in for a scheduler's SIGTERM after step 3.
    ...     if batch == 2:
    ...         signal.raise_signal(signal.SIGTERM)
    >>> kill = keras.callbacks.LambdaCallback(on_train_batch_end=sigterm)
    >>> with Preemption(checkpointer, resume_hint="run the same command") as preemption:
    ...     _ = model.fit(np.ones((80, 3)), np.ones(80), batch_size=8, verbose=0,
    ...                   callbacks=[kill, preemption])
    >>> print(preemption.message)  # doctest: +ELLIPSIS
    Training stopped by SIGTERM: checkpoint of step 3 saved in ... To resume, run the same command.
    >>> int(model.optimizer.iterations), preemption.exit_code  # One queued step still ran.
    (4, 143)
    """

    def __init__(
        self,
        checkpointer: Union[Checkpointer, str, os.PathLike],
        signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT),
        resume_hint: Optional[str] = None,
    ):
        super().__init__()
        if not isinstance(checkpointer, (Checkpointer, str, os.PathLike)):
            raise TypeError(
                f"`checkpointer` must be a `toolkit.checkpoint.Checkpointer` or a directory. "
                f"Received: {type(checkpointer).__name__}."
            )
        self.checkpointer = checkpointer if isinstance(checkpointer, Checkpointer) else None
        self.directory = (
            self.checkpointer.directory if self.checkpointer else os.fspath(checkpointer)
        )
        self.signals = tuple(signals)
        self.resume_hint = resume_hint
        self.requested: Optional[int] = None
        self.message: Optional[str] = None
        self._previous = {}
        self._saved_after_request = False
        self._context = False

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self):
        return {
            "checkpointer": self.directory,
            "signals": [int(s) for s in self.signals],
            "resume_hint": self.resume_hint,
        }

    def set_model(self, model):
        super().set_model(model)
        if self.checkpointer is None or self.checkpointer.model is not model:
            self.checkpointer = Checkpointer(self.directory, model=model)

    @property
    def exit_code(self) -> int:
        return 0 if self.requested is None else 128 + int(self.requested)

    # ---------------------------------------------------------------- handlers
    def install(self) -> None:
        """Installs the handlers (main thread only; elsewhere a warning, and nothing caught)."""
        if self._previous:
            return
        if threading.current_thread() is not threading.main_thread():
            logger.warning("Preemption: not in the main thread, so signals cannot be caught.")
            return
        self.requested, self.message, self._saved_after_request = None, None, False
        if self.checkpointer is not None:
            self.checkpointer.sealed = False
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        """Puts the previous handlers back."""
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def _handle(self, signum, frame):
        if self.requested is not None:
            # Second signal: the user insists; behave as if we were never installed.
            self.uninstall()
            signal.raise_signal(signum)
            return
        self.requested = signum
        logger.warning(
            "Received %s: writing a checkpoint at the next step boundary, then stopping. "
            "Send it again to stop at once.",
            signal.Signals(signum).name,
        )

    def __enter__(self):
        self._context = True
        self.install()
        return self

    def __exit__(self, *exc_info):
        try:
            if self.requested is not None and exc_info[0] is None:
                self._checkpoint()
        finally:
            self._context = False
            self.uninstall()
        return False

    # ---------------------------------------------------------------- callback hooks
    def on_train_begin(self, logs=None):
        if not self._context:
            self.install()

    def on_train_batch_begin(self, batch, logs=None):
        if self.requested is not None and not self._saved_after_request:
            self._checkpoint()
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.requested is not None:
            # Signal during the last step or the validation: no batch boundary came after it.
            self._checkpoint()
        if not self._context:
            self.uninstall()

    def _checkpoint(self) -> None:
        if self._saved_after_request:
            return
        self._saved_after_request = True
        path = self.checkpointer.save()
        self.checkpointer.wait()
        # The run stops here: what Keras still does (the queued step, the interval's partial
        # evaluation) must not write a newer checkpoint than this one.
        self.checkpointer.sealed = True
        step = self.checkpointer.last_saved_step
        hint = self.resume_hint or (
            f"call `toolkit.checkpoint.restore(model, {self.checkpointer.directory!r})` before "
            f"`fit` and rebuild the data at the step it returns"
        )
        where = f"checkpoint of step {step} saved in `{path}`" if path else (
            f"no new checkpoint (non-finite state); newest good step is {step}"
        )
        self.message = (
            f"Training stopped by {signal.Signals(self.requested).name}: {where}. "
            f"To resume, {hint}."
        )
        logger.warning(self.message)
