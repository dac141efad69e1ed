"""fit: train a compiled Keras model for a budget of optimizer steps, in evaluation intervals.

The run, step by step (each step is one function below, so that checkpointing can replace the
one that determines where training starts):

1. `training_data` / `evaluation_data`: refuse data that cannot be bounded; arrays become an
   endless pipeline.
2. `start_step`: where training starts. Today `model.optimizer.iterations`; with checkpoints, the
   restored step.
3. `interval_plan`: the intervals from the start step to the budget on the grid of
   `eval_every_steps` (a start inside an interval first finishes that interval).
4. Fast defaults (`toolkit.train.fast_defaults`) and the run's `TrainClock`.
5. For each interval, Keras's own `Model.fit` for exactly its steps, on the pipeline rebuilt at
   the interval's first step, evaluating at its end. Callbacks see one training run: a single
   `on_train_begin`/`on_train_end` around all the intervals, one epoch per interval.
"""

import numbers
import os
import warnings
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

import keras

from toolkit.callbacks.axes import Axes
from toolkit.callbacks.progress import Progress
from toolkit.clock import TrainClock
from toolkit.errors import ModelError, RecipeError, TrainingPreempted
from toolkit.train.fast_defaults import (
    apply_execution_settings,
    choose_jit_compile,
    choose_steps_per_execution,
)
from toolkit.checkpoint.checkpointer import Checkpointer
from toolkit.checkpoint.event_trim import trim_events
from toolkit.train.resume import default_checkpoint_every, run_dir_callbacks
from toolkit.train.history import HistoryRecorder, StepHistory
from toolkit.train.intervals import fit_calls, interval_plan, log_every_steps
from toolkit.train.run_callbacks import RunCallbacks
from toolkit.train.training_data import TrainingData, evaluation_data, training_data

__all__ = ["fit", "start_step"]

def fit(
    model: keras.Model,
    data: Any,
    *,
    steps: int,
    batch_size: Optional[int] = None,
    eval_data: Any = None,
    eval_every_steps: Optional[int] = None,
    run_dir: Optional[str] = None,
    callbacks: Optional[Sequence[keras.callbacks.Callback]] = None,
    seed: int = 0,
    verbose: Union[int, str] = "auto",
    steps_per_execution: Union[int, str] = "auto",
    jit_compile: Union[bool, str] = "auto",
    hparams: Optional[Mapping[str, Any]] = None,
    clock: Optional[TrainClock] = None,
    checkpoint_every_steps: Optional[int] = None,
) -> StepHistory:
    """Trains `model` until `model.optimizer.iterations == steps`, evaluating at intervals.

    The budget is a total step count, so calling `fit` again with a larger `steps` continues
    the same run (every axis continues too); with the budget already reached it does nothing
    and warns. Each interval of `eval_every_steps` steps is one Keras `Model.fit` epoch of
    exactly that many steps (`steps_per_epoch` is always given: an endless dataset can never
    silently run an endless epoch), followed by an evaluation on `eval_data`. Intervals sit on
    the grid of multiples of `eval_every_steps`: a run starting at step 150 with intervals of
    100 first trains 50 steps, and a budget that is not a multiple ends with a shorter interval.

    Speed: unless given, `steps_per_execution` and `jit_compile` (XLA) are chosen from the
    budget (`toolkit.train.fast_defaults`); they stay set on the model afterwards. With a
    `run_dir`, TensorBoard logging on four axes (`toolkit.callbacks.Axes`) is installed; with
    `verbose`, a progress bar over the whole budget (`toolkit.callbacks.Progress`).

    Args:
        model: A compiled Keras model (`model.compile(optimizer, loss, metrics)`).
        data: Training data: a dataset from `toolkit.data.endless` (rebuilt at the start
            step), arrays `x`, `(x, y)`, `(x, y, sample_weight)` or a dict (drawn with
            `toolkit.data.endless(data, batch_size, seed=seed)`), or another endless
            `tf.data.Dataset` (read on from where the previous interval stopped).
        steps: Total optimizer steps to reach.
        batch_size: Examples per step, for array data. Defaults to `None`.
        eval_data: Finite evaluation data, `(x, y)`, `(x, y, sample_weight)` or a finite
            `tf.data.Dataset`. Defaults to `None` (no evaluation).
        eval_every_steps: Steps per interval. Defaults to `None` (one interval: evaluate at
            the end only).
        run_dir: Directory of the run: TensorBoard events and checkpoints. With it the run is
            resumable: calling `fit` again with the same `run_dir` (e.g. after a crash, a kill
            or a preemption) continues from the newest good checkpoint exactly, and SIGTERM /
            Ctrl-C write a checkpoint and stop (`TrainingPreempted`). Defaults to `None` (no
            logging, no checkpoints).
        callbacks: Keras callbacks; they see one run with one epoch per interval. Defaults to
            `None`.
        seed: Seed of the endless pipeline made from arrays. Defaults to `0`.
        verbose: `0` (silent) or `1`/`2`/`"auto"` (progress bar). Defaults to `"auto"`.
        steps_per_execution: Steps per Keras train-function call, or `"auto"`. Defaults to
            `"auto"`.
        jit_compile: Whether to compile with XLA, or `"auto"`. Defaults to `"auto"`.
        hparams: Hyperparameters for TensorBoard's HParams plugin. Defaults to `None` (the
            budget, batch size, seed, optimizer, learning rate and execution settings).
        clock: The run's `toolkit.TrainClock` (e.g. restored from a checkpoint). Defaults to
            `None` (a new clock fed by the data's batch size and dataset size).
        checkpoint_every_steps: Steps between checkpoints in `run_dir/checkpoints`. Defaults to
            `None` (`toolkit.train.resume.default_checkpoint_every`: a multiple of the
            evaluation interval of at least 250 steps, at most 1000).

    Returns:
        A `StepHistory` with a point at each interval end of this call. With `run_dir` it is
        the whole run's: the points before the restored step come from the checkpoint, so a
        resumed run returns the same history as an uninterrupted one.

    Raises:
        DataError: For training data that cannot be bounded or bad evaluation data.
        ModelError: For a model that is not compiled.
        RecipeError: For a bad `steps`, `eval_every_steps`, `verbose` or execution setting.
        ModelError: For a `run_dir` whose checkpoint belongs to another model (nothing changed).
        TrainingPreempted: SIGTERM or SIGINT stopped training after writing a checkpoint.

    Example:

    >>> import numpy as np
    >>> x, y = np.random.rand(64, 4).astype("float32"), np.random.randint(0, 3, 64)
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> history = fit(model, (x, y), steps=30, batch_size=8, eval_data=(x, y),
    ...               eval_every_steps=20, verbose=0)
    >>> history.steps
    [20, 30]
    >>> history = fit(model, (x, y), steps=45, batch_size=8, eval_every_steps=20, verbose=0)
    >>> history.steps
    [40, 45]
    """
    _check_compiled(model)
    steps = _check_steps("steps", steps)
    if eval_every_steps is not None:
        eval_every_steps = _check_steps("eval_every_steps", eval_every_steps)
    verbose = _check_verbose(verbose)
    train = training_data(data, batch_size=batch_size, seed=seed)
    evaluation = evaluation_data(eval_data, train.batch_size)

    spe = choose_steps_per_execution(steps, steps_per_execution, eval_every_steps)
    jit = choose_jit_compile(steps, jit_compile)
    if clock is None:
        clock = TrainClock(
            batch_size=train.batch_size,
            dataset_size=train.dataset_size,
            examples_at=train.examples_at,
        )
    history = StepHistory()
    every = log_every_steps(steps, spe)
    if hparams is None:
        hparams = _default_hparams(model, steps, train, eval_every_steps, seed, spe, jit)
    user_callbacks = list(callbacks or [])
    for callback in user_callbacks:
        if isinstance(callback, Axes) and callback.clock is None:
            callback.clock = clock
    defaults = []
    if run_dir is not None and not any(isinstance(c, Axes) for c in user_callbacks):
        defaults.append(Axes(run_dir, every_steps=every, clock=clock, hparams=hparams))
    if verbose and not any(isinstance(c, Progress) for c in user_callbacks):
        defaults.append(Progress(steps, every_steps=every))
    # Loggers first, savers last: a checkpoint holds every state after its step boundary.
    ordered = defaults + user_callbacks + [HistoryRecorder(history, clock)]
    checkpointer = preemption = None
    if run_dir is not None:
        if checkpoint_every_steps is None:
            checkpoint_every_steps = default_checkpoint_every(steps, eval_every_steps)
        checkpoint_every_steps = _check_steps("checkpoint_every_steps", checkpoint_every_steps)
        checkpointer, state, savers = run_dir_callbacks(
            model, run_dir, clock=clock, every_steps=checkpoint_every_steps,
            batch_at=_batch_at(train), resume_hint=_RESUME_HINT,
        )
        ordered += state + savers
        checkpointer.callbacks = ordered
        preemption = savers[-1]
    first = start_step(model, run_dir, checkpointer)
    if checkpointer is not None and state[0].pending and train.rebuild is not None:
        _build_metrics(model, train.batches(first, 1))  # reused by the first interval
    plan = interval_plan(first, steps, eval_every_steps)
    if not plan:
        warnings.warn(
            f"`fit` has nothing to train: the model is at step {first}, which reaches the "
            f"budget steps={steps}. Pass a larger `steps` to continue training.",
            stacklevel=2,
        )
        return history
    apply_execution_settings(model, spe, jit)
    run_callbacks = RunCallbacks(ordered, model=model)
    _run(model, train, evaluation, plan, eval_every_steps or steps, run_callbacks, clock,
         checkpointer)
    if preemption is not None and preemption.requested is not None:
        raise TrainingPreempted(preemption.message, exit_code=preemption.exit_code)
    return history


def start_step(
    model: keras.Model, run_dir: Optional[str], checkpointer: Optional[Checkpointer] = None
) -> int:
    """Returns the optimizer step training starts from, restoring the run's newest checkpoint.

    With a `checkpointer` (the one `fit` keeps in `run_dir/checkpoints`), the newest good
    checkpoint is restored: model, built optimizer, clock and callback states (a damaged newest
    checkpoint is skipped with a warning). The run's TensorBoard events logged after that step
    by the interrupted run are then cut off (`toolkit.checkpoint.event_trim`), so the curves go on
    without overlap. Without one, the step is `model.optimizer.iterations`.

    Example:

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("adam", "mse")
    >>> start_step(model, run_dir=None)
    0
    """
    if checkpointer is not None and checkpointer.checkpoints():
        step = checkpointer.restore()
        clock = checkpointer.clock
        examples = clock.examples_at(step) if clock is not None else 0
        trim_events(os.fspath(run_dir), step=step, examples=examples)
    return int(model.optimizer.iterations)


def _run(
    model: keras.Model,
    train: TrainingData,
    evaluation,
    plan: List[Tuple[int, int]],
    every: int,
    callbacks: RunCallbacks,
    clock: TrainClock,
    checkpointer: Optional[Checkpointer] = None,
) -> None:
    clock.start()
    try:
        callbacks.set_params({"verbose": 0, "epochs": plan[-1][0] // every + 1, "steps": every})
        callbacks.begin_run()
        if checkpointer is not None:
            # `on_train_begin` reset the callbacks' counters: the restored ones win.
            checkpointer.apply_pending_states()
        budget = plan[-1][1]
        while plan:
            for begin, end, num_epochs in fit_calls(plan, every, model.steps_per_execution):
                epoch = begin // every
                model.fit(
                    train.batches(begin, end - begin),
                    epochs=epoch + num_epochs,
                    initial_epoch=epoch,
                    steps_per_epoch=(end - begin) // num_epochs,
                    validation_data=evaluation,
                    callbacks=callbacks,
                    shuffle=False,  # endless pipelines shuffle themselves
                    verbose=0,
                )
                if model.stop_training:
                    plan = []
                    break
                now = int(model.optimizer.iterations)
                if now != end:
                    # A NanGuard rollback moved the step back: plan again from there, on the
                    # pipeline rebuilt at the restored step, until the budget is reached.
                    plan = interval_plan(now, budget, every)
                    break
            else:
                plan = []
        callbacks.end_run()
    finally:
        clock.pause()
        if checkpointer is not None:
            checkpointer.close()


_RESUME_HINT = (
    "run the same command again (`toolkit train` with the same --run-dir, or `fit` with the same "
    "`run_dir`): it continues from this checkpoint"
)


def _build_metrics(model: keras.Model, dataset) -> None:
    """Builds the compiled metrics (Keras does it at the first step) to restore their state."""
    metrics = getattr(model, "_compile_metrics", None)
    if metrics is not None and not metrics.built:
        model._symbolic_build(data_batch=next(iter(dataset.take(1))))


def _batch_at(train: TrainingData):
    """`step -> batch` of the endless pipeline (for NanGuard's diagnosis), or `None`."""
    if train.rebuild is None:
        return None
    return lambda step: next(iter(train.rebuild(step).take(1)))


def _default_hparams(model, steps, train, eval_every_steps, seed, spe, jit) -> dict:
    optimizer = model.optimizer
    learning_rate = optimizer.get_config().get("learning_rate")
    hparams = {
        "steps": steps,
        "batch_size": train.batch_size if train.batch_size is not None else "unknown",
        "eval_every_steps": eval_every_steps or steps,
        "seed": seed,
        "optimizer": type(optimizer).__name__,
        "steps_per_execution": spe,
        "jit_compile": jit,
    }
    if isinstance(learning_rate, numbers.Number):
        hparams["learning_rate"] = float(learning_rate)
    elif isinstance(learning_rate, dict):  # a serialized schedule
        hparams["learning_rate"] = str(learning_rate.get("class_name", "schedule"))
    return hparams


def _check_compiled(model: Any) -> None:
    if not isinstance(model, keras.Model):
        raise ModelError(
            f"`fit` trains a Keras model. Received: {type(model).__name__}. Pass a "
            f"`keras.Model` compiled with an optimizer and a loss."
        )
    if not model.compiled or model.optimizer is None:
        raise ModelError(
            f"`fit` needs a compiled model. Received: model {model.name!r} that was not "
            f"compiled. Call `model.compile(optimizer, loss)` first."
        )


def _check_steps(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise RecipeError(
            f"`{name}` must be a positive number of optimizer steps. Received: {name}={value!r}."
            f" Pass e.g. {name}=1000."
        )
    return int(value)


def _check_verbose(verbose: Any) -> int:
    if verbose == "auto":
        return 1
    if verbose in (0, 1, 2) and not isinstance(verbose, bool):
        return int(verbose)
    raise RecipeError(
        f'`verbose` must be 0, 1, 2 or "auto". Received: verbose={verbose!r}. '
        f"Pass verbose=0 for no progress bar."
    )
