"""fit: train a compiled Keras model for a budget of optimizer steps, in evaluation intervals.

The run, step by step:

1. `training_data` / `evaluation_data`: refuse data that cannot be bounded; arrays become an
   endless pipeline; an endless pipeline (even wrapped in `map`/`prefetch`) is positioned by step.
2. The run directory is locked (`toolkit.checkpoint.RunLock`): one writer per run directory.
3. `run_parts.assemble`: the run's callbacks, in the order that keeps checkpoints consistent.
4. `restore_run`: with a `run_dir`, the newest good checkpoint is restored (model, optimizer,
   clock; callback states wait for step 6) and the TensorBoard events after it are cut.
5. `interval_plan`: the intervals from the restored step to the budget on the grid of
   `eval_every_steps`; `Execution` settings chosen from the budget.
6. `_run`: `on_train_begin` once, then the restored callback states (once), then, for each group
   of intervals, Keras's own `Model.fit` on the data seeked to the group's first step.
"""

import contextlib
import numbers
import warnings
import weakref
from typing import Any, List, Optional, Sequence, Tuple, Union

import keras

from toolkit import keras_compat
from toolkit.callbacks.step_history import StepHistory
from toolkit.checkpoint.checkpointer import Checkpointer
from toolkit.checkpoint.run_lock import RunLock
from toolkit.checkpoint.run_state import restore_run
from toolkit.clock import TrainClock, optimizer_step
from toolkit.distribute import check_strategy
from toolkit.errors import ModelError, RecipeError, TrainingPreempted
from toolkit.train.fast_defaults import apply_execution_settings
from toolkit.train.intervals import fit_calls, interval_plan
from toolkit.train.options import Execution, Logging, check_steps
from toolkit.train.run_callbacks import RunCallbacks
from toolkit.train.run_parts import assemble
from toolkit.train.training_data import TrainingData, evaluation_data, training_data

__all__ = ["fit"]

_WARNED_POSITIONS: "weakref.WeakSet" = weakref.WeakSet()  # Warn once per dataset.


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
    execution: Optional[Execution] = None,
    logging: Optional[Logging] = None,
    verbose: Union[int, str] = "auto",
) -> StepHistory:
    """Trains `model` until `model.optimizer.iterations == steps`, evaluating at intervals.

    The budget is a total step count: calling `fit` again with a larger `steps` continues the
    same run (every axis too); with the budget reached it warns and does nothing. Each interval
    of `eval_every_steps` steps is one Keras epoch of exactly that many steps, on the grid of
    multiples of `eval_every_steps` (a run at step 150 with intervals of 100 first trains 50).

    Args:
        model: A compiled Keras model (`model.compile(optimizer, loss, metrics)`).
        data: Training data: a dataset from `toolkit.data.endless`, also wrapped in `map`,
            `prefetch` or `with_options` (positioned at every step, so resume is exact); arrays
            `x`, `(x, y)`, `(x, y, sample_weight)` or a dict (drawn by `endless(data,
            batch_size)`); or another endless `tf.data.Dataset` (read on through one iterator).
        steps: Total optimizer steps to reach.
        batch_size: Examples per step, for array data. Defaults to `None`.
        eval_data: Finite evaluation data, `(x, y)`, `(x, y, sample_weight)` or a finite
            `tf.data.Dataset`. Defaults to `None` (no evaluation).
        eval_every_steps: Steps per interval. Defaults to `None` (evaluate at the end only).
        run_dir: The run directory: TensorBoard events on four axes (`toolkit.callbacks.Axes`),
            checkpoints, `NanGuard`, and SIGTERM/Ctrl-C handling (`TrainingPreempted`). Calling
            `fit` again with it continues from the newest good checkpoint exactly. One process
            at a time: another one's run directory raises `RunDirectoryInUse`. Defaults to
            `None` (no files).
        callbacks: Keras callbacks; they see one run, one epoch per interval. Defaults to `None`.
        execution: `toolkit.train.Execution` (`steps_per_execution`, XLA). Defaults to `None`
            (both chosen from the budget).
        logging: `toolkit.train.Logging` (TensorBoard point and checkpoint intervals, HParams).
            Defaults to `None` (chosen from the budget).
        verbose: `0` (silent) or `1`/`2`/`"auto"` (a progress bar). Defaults to `"auto"`.

    Returns:
        A `StepHistory` with a point per interval end. With `run_dir` it is the whole run's,
        so a resumed run returns the same history as an uninterrupted one.

    Raises:
        DataError: For training data that cannot be bounded or bad evaluation data.
        ModelError: For a model that is not compiled, or a checkpoint of another model.
        RecipeError: For a bad `steps`, `eval_every_steps` or `verbose`.
        RunDirectoryInUse: Another process trains in `run_dir`.
        StrategyError: The model was built under a strategy Keras's `fit` cannot train under
            (a multi-worker one; `toolkit.distribute.check_strategy`).
        TrainingPreempted: SIGTERM or SIGINT stopped training after writing a checkpoint.

    Example:

    >>> import numpy as np
    >>> x, y = np.random.rand(64, 4).astype("float32"), np.random.randint(0, 3, 64)
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> fit(model, (x, y), steps=30, batch_size=8, eval_data=(x, y), eval_every_steps=20,
    ...     verbose=0).steps
    [20, 30]
    >>> fit(model, (x, y), steps=45, batch_size=8, eval_every_steps=20, verbose=0).steps
    [40, 45]
    """
    _check_compiled(model)
    check_strategy(model.distribute_strategy)
    steps = check_steps("steps", steps)
    every = check_steps("eval_every_steps", eval_every_steps) if eval_every_steps else None
    verbose = _check_verbose(verbose)
    train = training_data(data, batch_size=batch_size)
    evaluation = evaluation_data(eval_data, train.batch_size)
    spe, jit = (execution or Execution()).resolve(steps, every)
    logging = logging or Logging()
    clock = TrainClock(batch_size=train.batch_size, dataset_size=train.dataset_size,
                       examples_at=train.examples_at)
    history = StepHistory()
    # Variables built outside Keras's own `fit` (metrics, optimizer slots, restored states)
    # belong to the strategy the model was built under.
    with RunLock(run_dir) if run_dir is not None else contextlib.nullcontext(), \
            _strategy_scope(model):
        parts = assemble(
            model, run_dir=run_dir, user_callbacks=callbacks or [], clock=clock,
            history=history, log_every_steps=logging.resolve_every_steps(steps, spe),
            checkpoint_every_steps=logging.resolve_checkpoint_every(steps, every),
            progress_steps=steps if verbose else None,
            hparams=logging.hparams or _default_hparams(model, steps, train, every, spe, jit),
            progress_every_steps=Logging().resolve_every_steps(steps, spe),
            batch_at=train.batch_at if train.info is not None else None,
        )
        if run_dir is not None:
            _warn_position(train)
            # Keras builds its compiled metrics at the first step; a restored interval's metric
            # state (`IntervalMetrics`) needs them before it.
            keras_compat.build_compiled_metrics(model, train.spec_batch())
            first = restore_run(parts.checkpointer, run_dir)
        else:
            first = optimizer_step(model)
        plan = interval_plan(first, steps, every)
        if not plan:
            if parts.checkpointer is not None:
                parts.checkpointer.apply_callback_states()  # The run's history, restored.
            warnings.warn(
                f"`fit` has nothing to train: the model is at step {first}, which reaches the "
                f"budget steps={steps}. Pass a larger `steps` to continue training.",
                stacklevel=2,
            )
            return history
        apply_execution_settings(model, spe, jit)
        _run(model, train, evaluation, plan, every or steps,
             RunCallbacks(parts.callbacks, model=model), clock, parts.checkpointer)
    preemption = parts.preemption
    if preemption is not None and preemption.requested is not None:
        raise TrainingPreempted(preemption.message, exit_code=preemption.exit_code)
    return history


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
        model.stop_training = False  # A model left stopped by an earlier `fit` trains again.
        callbacks.begin_run()
        if checkpointer is not None:
            # The one place restored callback states are applied: after `on_train_begin`,
            # where callbacks reset themselves, and before the first step.
            checkpointer.apply_callback_states()
        budget = plan[-1][1]
        if model.stop_training:  # A restored callback state says the run had stopped early.
            plan = []
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
                now = optimizer_step(model)
                if now != end:
                    # A NanGuard rollback moved the step back: plan again from there, on the
                    # data seeked to the restored step, until the budget is reached.
                    plan = interval_plan(now, budget, every)
                    break
            else:
                plan = []
        callbacks.end_run()
    finally:
        clock.pause()
        if checkpointer is not None:
            checkpointer.close()


def _warn_position(train: TrainingData) -> None:
    """Warns once per dataset that a resumed run will not see the same batches."""
    message = train.position_warning()
    if message is not None and train.dataset not in _WARNED_POSITIONS:
        _WARNED_POSITIONS.add(train.dataset)
        warnings.warn(message, stacklevel=3)


def _default_hparams(model, steps, train, eval_every_steps, spe, jit) -> dict:
    optimizer = model.optimizer
    learning_rate = optimizer.get_config().get("learning_rate")
    hparams = {
        "steps": steps,
        "batch_size": train.batch_size if train.batch_size is not None else "unknown",
        "eval_every_steps": eval_every_steps or steps,
        "optimizer": type(optimizer).__name__,
        "steps_per_execution": spe,
        "jit_compile": jit,
    }
    if isinstance(learning_rate, numbers.Number):
        hparams["learning_rate"] = float(learning_rate)
    elif isinstance(learning_rate, dict):  # a serialized schedule
        hparams["learning_rate"] = str(learning_rate.get("class_name", "schedule"))
    return hparams


def _strategy_scope(model: keras.Model):
    """The scope of the `tf.distribute` strategy `model` was built in (the default one too)."""
    strategy = getattr(model, "distribute_strategy", None)
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


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


def _check_verbose(verbose: Any) -> int:
    if verbose == "auto":
        return 1
    if verbose in (0, 1, 2) and not isinstance(verbose, bool):
        return int(verbose)
    raise RecipeError(
        f'`verbose` must be 0, 1, 2 or "auto". Received: verbose={verbose!r}. '
        f"Pass verbose=0 for no progress bar."
    )
