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
import warnings
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

import keras

from toolkit.callbacks.axes import Axes
from toolkit.callbacks.progress import Progress
from toolkit.clock import TrainClock
from toolkit.errors import ModelError, RecipeError
from toolkit.train.fast_defaults import (
    apply_execution_settings,
    choose_jit_compile,
    choose_steps_per_execution,
)
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
        run_dir: Directory for TensorBoard events. Defaults to `None` (no logging).
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

    Returns:
        A `StepHistory` with a point at each interval end of this call.

    Raises:
        DataError: For training data that cannot be bounded or bad evaluation data.
        ModelError: For a model that is not compiled.
        RecipeError: For a bad `steps`, `eval_every_steps`, `verbose` or execution setting.

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

    first = start_step(model, run_dir)
    plan = interval_plan(first, steps, eval_every_steps)
    if not plan:
        warnings.warn(
            f"`fit` has nothing to train: the model is at step {first}, which reaches the "
            f"budget steps={steps}. Pass a larger `steps` to continue training.",
            stacklevel=2,
        )
        return StepHistory()

    spe = choose_steps_per_execution(steps, steps_per_execution, eval_every_steps)
    jit = choose_jit_compile(steps, jit_compile)
    apply_execution_settings(model, spe, jit)
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
    run_callbacks = RunCallbacks(
        defaults + user_callbacks + [HistoryRecorder(history, clock)], model=model
    )
    _run(model, train, evaluation, plan, eval_every_steps or steps, run_callbacks, clock)
    return history


def start_step(model: keras.Model, run_dir: Optional[str]) -> int:
    """Returns the optimizer step training starts from: `model.optimizer.iterations`.

    This is where a restore from `run_dir` plugs in (it sets the model, optimizer and clock
    state, then the step read here is the restored one).

    Example:

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("adam", "mse")
    >>> start_step(model, run_dir=None)
    0
    """
    del run_dir  # Checkpoint restore (issue 3) goes here.
    return int(model.optimizer.iterations)


def _run(
    model: keras.Model,
    train: TrainingData,
    evaluation,
    plan: List[Tuple[int, int]],
    every: int,
    callbacks: RunCallbacks,
    clock: TrainClock,
) -> None:
    clock.start()
    try:
        callbacks.set_params({"verbose": 0, "epochs": plan[-1][0] // every + 1, "steps": every})
        callbacks.begin_run()
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
                break
        callbacks.end_run()
    finally:
        clock.pause()


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
