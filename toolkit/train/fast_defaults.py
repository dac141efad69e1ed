"""Fast execution defaults for `fit`: `steps_per_execution` and XLA, chosen per step budget.

Keras runs one Python round trip per step by default (`steps_per_execution=1`) and does not use
XLA on CPU. Both speed up steady-state training, but both cost compile time before the first step,
so a short run can get slower overall. `fit` therefore chooses them from the *total* step budget
(never from the steps left: a resumed run must choose what the uninterrupted run chose, because
XLA changes floating-point results and exact resume compares bits).

The thresholds come from `benchmarks/bench_fit.py` on the 2-core CPU development machine (small
MLP 40-128-128-10, batch 32, Keras 3.15, TensorFlow 2.21); see the constants below.
"""

from typing import Optional, Union

import keras

from toolkit.errors import ModelError, RecipeError
from toolkit.keras_compat import reset_compiled_functions

__all__ = ["choose_steps_per_execution", "choose_jit_compile", "apply_execution_settings"]

# Measured (benchmarks/bench_fit.py --defaults): spe=64 ran 2.8x the steady steps/s of spe=1
# (972 vs 342 steps/s on a quiet machine; 807 vs 278 under load). Its first call traced in the
# same time as spe=1 on a quiet machine (1.60 s vs 1.59 s) and ~1.1 s longer under load, so it
# pays for itself within ~500 steps; below that, budgets are short enough that a point every
# few steps matters more (callbacks only run every `steps_per_execution` steps).
FAST_STEPS_PER_EXECUTION = 64
MIN_STEPS_FOR_FAST_EXECUTION = 500
# XLA's extra compile time against the time it saves per step, at spe=64 (break-even = extra
# compile seconds / seconds saved per step; benchmarks/bench_fast_defaults.py, 2 shared cores):
#   MLP 784-256-256-10, batch 64:   +0.66 to +2.62 s, 0.55-1.42 ms/step  -> 761-2,012 steps
#   convnet((40,), 10), batch 64:   +1.58 to +2.11 s, 1.63-1.78 ms/step  -> 891-1,293 steps
#   MLP 40-128-128-10, batch 32:    +1.0 s, 0.19 ms/step (bench_fit.py)  -> ~5,400 steps
# From 2,000 steps both real-sized models are past break-even under every load measured (at
# 4,000 steps XLA made plain Keras 1.4-1.8x faster); a tiny model loses up to ~17% between 2,000
# and ~5,400 steps. Below 2,000 the break-even moved 2.6x with load: no threshold is safe there.
# The choice stays a pure function of the budget: resume compares bits, and XLA changes them.
MIN_STEPS_FOR_XLA = 2_000

_AUTO_MSG = (
    "`{name}` must be {expected} or \"auto\". Received: {name}={value!r}. "
    "Pass \"auto\" to let `fit` choose by step budget."
)


def choose_steps_per_execution(
    steps: int, requested: Union[int, str] = "auto", every_steps: Optional[int] = None
) -> int:
    """Returns the `steps_per_execution` to train a budget of `steps` total optimizer steps.

    Args:
        steps: The total step budget of the run.
        requested: A positive integer (used as is) or `"auto"`. Defaults to `"auto"`.
        every_steps: The evaluation interval, if any. `"auto"` then prefers a divisor of it
            between 32 and 64, so that whole intervals run in one `Model.fit` call (an
            execution never straddles two intervals). Defaults to `None`.

    Returns:
        `requested` if it is an integer; else, for budgets of at least 500 steps, 64 or the
        largest divisor of `every_steps` in [32, 64]; 1 below 500 steps.

    Raises:
        RecipeError: If `requested` is neither a positive integer nor `"auto"`.

    Example:

    >>> choose_steps_per_execution(10_000), choose_steps_per_execution(100)
    (64, 1)
    >>> choose_steps_per_execution(10_000, every_steps=1000)
    50
    >>> choose_steps_per_execution(100, requested=8)
    8
    """
    if requested == "auto":
        if steps < MIN_STEPS_FOR_FAST_EXECUTION:
            return 1
        if every_steps:
            for size in range(FAST_STEPS_PER_EXECUTION, FAST_STEPS_PER_EXECUTION // 2 - 1, -1):
                if every_steps % size == 0:
                    return size
        return FAST_STEPS_PER_EXECUTION
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise RecipeError(
            _AUTO_MSG.format(name="steps_per_execution", expected="a positive integer",
                             value=requested)
        )
    return requested


def choose_jit_compile(steps: int, requested: Union[bool, str] = "auto") -> bool:
    """Returns whether to compile the train step with XLA for a budget of `steps` total steps.

    Args:
        steps: The total step budget of the run.
        requested: `True`/`False` (used as is) or `"auto"`. Defaults to `"auto"`.

    Returns:
        `requested` if it is a bool, else `True` for budgets of at least 2,000 steps.

    Raises:
        RecipeError: If `requested` is neither a bool nor `"auto"`.

    Example:

    >>> choose_jit_compile(100_000), choose_jit_compile(640)
    (True, False)
    """
    if requested == "auto":
        return steps >= MIN_STEPS_FOR_XLA
    if not isinstance(requested, bool):
        raise RecipeError(_AUTO_MSG.format(name="jit_compile", expected="a bool", value=requested))
    return requested


def apply_execution_settings(
    model: keras.Model, steps_per_execution: int, jit_compile: bool
) -> None:
    """Sets `steps_per_execution` and `jit_compile` on a compiled model, keeping its state.

    Keras reads both when it builds its train, test and predict functions and caches those
    functions, so changing the attributes alone does nothing (and a stale predict function would
    even drop batches). This sets them and drops the cached functions, which Keras traces again
    on their next use (a retrace, not a `compile`): weights, optimizer variables (Adam's moments,
    `iterations`) and metrics are untouched. Nothing is rebuilt when the settings are unchanged,
    so continuing a run does not trace again.

    Args:
        model: A compiled Keras model (TensorFlow backend).
        steps_per_execution: Steps run per call of the train function.
        jit_compile: Whether to compile the train step with XLA.

    Example:

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("adam", "mse")
    >>> apply_execution_settings(model, steps_per_execution=16, jit_compile=False)
    >>> model.steps_per_execution
    16
    """
    if not getattr(model, "compiled", False):
        raise ModelError(
            f"`fit` needs a compiled model. Received: model {model.name!r} that was not "
            f"compiled. Call `model.compile(optimizer, loss)` first."
        )
    changed = model.steps_per_execution != steps_per_execution or bool(
        model.jit_compile
    ) != bool(jit_compile)
    model.steps_per_execution = steps_per_execution
    # The setter falls back to False, with a warning, for models XLA cannot compile.
    model.jit_compile = jit_compile
    if changed:
        # Keras builds these lazily again, with the new settings, on their next use.
        reset_compiled_functions(model)
