"""The callbacks of one `fit` run, in the order that makes a checkpoint consistent.

Loggers first (`Axes`, `LossCurveDiagnosis`, `Progress`), then the user's callbacks, then the bookkeeping whose state a
checkpoint holds (`HistoryRecorder`, `IntervalMetrics`), then the savers (`NanGuard`,
`Checkpoint`, `Preemption`): a checkpoint written at a step boundary then holds every other
callback's state *after* that boundary. The order is fixed here, in one place, and only matters
within one hook call; restored states are applied once for all of them, after
`on_train_begin` (see `toolkit.checkpoint.run_state`).

Example:

>>> import keras
>>> from toolkit.clock import TrainClock
>>> from toolkit.callbacks.step_history import StepHistory
>>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
>>> model.compile("adam", "mse")
>>> parts = assemble(model, run_dir=None, user_callbacks=[], clock=TrainClock(),
...                  history=StepHistory(), log_every_steps=10, checkpoint_every_steps=100,
...                  progress_steps=None, hparams=None)
>>> [type(c).__name__ for c in parts.callbacks], parts.checkpointer
(['HistoryRecorder'], None)
"""

import dataclasses
from typing import Any, Callable, List, Mapping, Optional, Sequence

import keras

from toolkit.callbacks.axes import Axes
from toolkit.callbacks.checkpoint import Checkpoint
from toolkit.callbacks.interval_metrics import IntervalMetrics
from toolkit.callbacks.loss_curve_diagnosis import LossCurveDiagnosis
from toolkit.callbacks.nan_guard import NanGuard
from toolkit.callbacks.preemption import Preemption
from toolkit.callbacks.progress import Progress
from toolkit.callbacks.step_history import HistoryRecorder, StepHistory
from toolkit.checkpoint.checkpointer import Checkpointer
from toolkit.checkpoint.run_state import checkpoint_dir
from toolkit.clock import TrainClock

__all__ = ["RunParts", "assemble"]

RESUME_HINT = (
    "run the same command again (`toolkit train` with the same --run-dir, or `fit` with the same "
    "`run_dir`): it continues from this checkpoint"
)


@dataclasses.dataclass(frozen=True)
class RunParts:
    """The callbacks of a run and, with a run directory, its checkpointer and preemption hook.

    Args:
        callbacks: Every callback, in hook order.
        checkpointer: The run's `Checkpointer`, or `None` without a run directory.
        preemption: The run's `Preemption` callback, or `None`.
    """

    callbacks: List[keras.callbacks.Callback]
    checkpointer: Optional[Checkpointer]
    preemption: Optional[Preemption]


def assemble(
    model: keras.Model,
    *,
    run_dir: Optional[str],
    user_callbacks: Sequence[keras.callbacks.Callback],
    clock: TrainClock,
    history: StepHistory,
    log_every_steps: int,
    checkpoint_every_steps: int,
    progress_steps: Optional[int],
    hparams: Optional[Mapping[str, Any]],
    progress_every_steps: Optional[int] = None,
    batch_at: Optional[Callable[[int], Any]] = None,
) -> RunParts:
    """Returns the run's callbacks (see the module doc).

    Args:
        model: The compiled model.
        run_dir: The run directory, or `None` (no logging, no checkpoints).
        user_callbacks: The user's callbacks. A user `Axes`, `LossCurveDiagnosis` or `Progress`
            replaces the default; a user `LossCurveDiagnosis` without an `initial_batch` gets
            `batch_at`.
        clock: The run's clock, given to `Axes`, the history and the checkpointer.
        history: The `StepHistory` to fill.
        log_every_steps: Steps between TensorBoard points (`0`: no `Axes`).
        checkpoint_every_steps: Steps between checkpoints.
        progress_steps: The budget for a progress bar, or `None` (no bar).
        hparams: HParams for `Axes`.
        progress_every_steps: Steps between progress-bar updates. Defaults to `None`
            (`log_every_steps`).
        batch_at: `step -> batch` for `NanGuard`'s diagnosis and the loss-curve diagnosis's
            starting loss. Defaults to `None`.
    """
    user_callbacks = list(user_callbacks)
    loggers: List[keras.callbacks.Callback] = []
    if run_dir is not None and log_every_steps and not _has(user_callbacks, Axes):
        loggers.append(Axes(run_dir, every_steps=log_every_steps, clock=clock, hparams=hparams))
    for callback in user_callbacks:
        if isinstance(callback, LossCurveDiagnosis) and callback.initial_batch is None:
            callback.initial_batch = batch_at
    if run_dir is not None and not _has(user_callbacks, LossCurveDiagnosis):
        loggers.append(LossCurveDiagnosis(
            run_dir, every_steps=log_every_steps or None, initial_batch=batch_at))
    if progress_steps is not None and not _has(user_callbacks, Progress):
        every = progress_every_steps or log_every_steps or 1
        loggers.append(Progress(progress_steps, every_steps=every))
    bookkeeping: List[keras.callbacks.Callback] = [HistoryRecorder(history, clock)]
    if run_dir is None:
        return RunParts(loggers + user_callbacks + bookkeeping, None, None)
    bookkeeping.append(IntervalMetrics())
    checkpointer = Checkpointer(checkpoint_dir(run_dir), model=model, clock=clock)
    preemption = Preemption(checkpointer, resume_hint=RESUME_HINT)
    savers = [
        NanGuard(checkpointer, every_steps=checkpoint_every_steps, batch_at=batch_at),
        Checkpoint(checkpointer, every_steps=checkpoint_every_steps),
        preemption,
    ]
    callbacks = loggers + user_callbacks + bookkeeping + savers
    checkpointer.callbacks = callbacks
    return RunParts(callbacks, checkpointer, preemption)


def _has(callbacks: Sequence[Any], kind: type) -> bool:
    return any(isinstance(callback, kind) for callback in callbacks)
