"""The settings of `fit` beyond data, budget and evaluation, in two small groups.

`Execution` says how Keras runs the train step (`steps_per_execution`, XLA); `Logging` says what
`fit` writes into a run directory and how often (TensorBoard points, checkpoints, HParams). Both
default to `"auto"`/`None` values that `fit` resolves from the step budget.

Example:

>>> from toolkit.train.options import Execution, Logging
>>> Execution(steps_per_execution=8).resolve(steps=1000, eval_every_steps=None)
(8, False)
>>> Logging(checkpoint_every_steps=0)
Traceback (most recent call last):
...
toolkit.errors.RecipeError: `checkpoint_every_steps` must be a positive number of optimizer steps. Received: checkpoint_every_steps=0. Pass e.g. checkpoint_every_steps=1000.
"""

import dataclasses
import math
import numbers
from typing import Any, Mapping, Optional, Tuple, Union

from toolkit.errors import RecipeError
from toolkit.train.fast_defaults import choose_jit_compile, choose_steps_per_execution

__all__ = ["Execution", "Logging", "check_steps"]

# A checkpoint of a small model costs ~10 ms; 250 steps of even a tiny model cost far more.
_MIN_CHECKPOINT_EVERY, _MAX_CHECKPOINT_EVERY = 250, 1000


def check_steps(name: str, value: Any) -> int:
    """Returns `value` as a positive step count, or raises `RecipeError` naming `name`.

    Example:

    >>> check_steps("steps", 10)
    10
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise RecipeError(
            f"`{name}` must be a positive number of optimizer steps. Received: {name}={value!r}."
            f" Pass e.g. {name}=1000."
        )
    return int(value)


@dataclasses.dataclass(frozen=True)
class Execution:
    """How Keras runs the train step inside `toolkit.fit`.

    Args:
        steps_per_execution: Steps per Keras train-function call, or `"auto"` (chosen from the
            step budget by `toolkit.train.fast_defaults`). Defaults to `"auto"`.
        jit_compile: Whether to compile the train step with XLA, or `"auto"`. Defaults to
            `"auto"`.

    Example:

    >>> Execution().resolve(steps=100, eval_every_steps=None)
    (1, False)
    """

    steps_per_execution: Union[int, str] = "auto"
    jit_compile: Union[bool, str] = "auto"

    def __post_init__(self):
        self.resolve(steps=1, eval_every_steps=None)  # Validates both settings.

    def resolve(self, steps: int, eval_every_steps: Optional[int]) -> Tuple[int, bool]:
        """Returns `(steps_per_execution, jit_compile)` for a budget of `steps` total steps."""
        spe = choose_steps_per_execution(steps, self.steps_per_execution, eval_every_steps)
        return spe, choose_jit_compile(steps, self.jit_compile)


@dataclasses.dataclass(frozen=True)
class Logging:
    """What `toolkit.fit` writes into a `run_dir`, and how often.

    Args:
        every_steps: Optimizer steps between TensorBoard training points, `0` for no
            TensorBoard logging. Defaults to `None` (about 50 points per curve, a multiple of
            `steps_per_execution`).
        checkpoint_every_steps: Optimizer steps between checkpoints. Defaults to `None` (a
            multiple of the evaluation interval of at least 250 steps, at most 1000).
        hparams: Hyperparameters for TensorBoard's HParams plugin. Defaults to `None` (the
            budget, batch size, optimizer, learning rate and execution settings).

    Example:

    >>> Logging().resolve_checkpoint_every(steps=10_000, eval_every_steps=100)
    300
    """

    every_steps: Optional[int] = None
    checkpoint_every_steps: Optional[int] = None
    hparams: Optional[Mapping[str, Any]] = None

    def __post_init__(self):
        if self.every_steps is not None and self.every_steps != 0:
            check_steps("every_steps", self.every_steps)
        if self.checkpoint_every_steps is not None:
            check_steps("checkpoint_every_steps", self.checkpoint_every_steps)

    def resolve_every_steps(self, steps: int, steps_per_execution: int) -> int:
        """Steps between TensorBoard points: given, or about 50 points per curve.

        About 50 points show the shape of a batch-loss curve while logging stays under 3% of
        the training time of a small MLP (`benchmarks/bench_fit.py`: a point costs a few
        milliseconds on a busy 2-core CPU).
        """
        if self.every_steps is not None:
            return self.every_steps
        every = max(1, math.ceil(steps / 50))
        return math.ceil(every / steps_per_execution) * steps_per_execution

    def resolve_checkpoint_every(self, steps: int, eval_every_steps: Optional[int]) -> int:
        """Steps between checkpoints: given, or a multiple of the evaluation interval of at
        least 250 steps (1000 when the interval is longer: a checkpoint may then fall inside
        an interval)."""
        if self.checkpoint_every_steps is not None:
            return self.checkpoint_every_steps
        grid = eval_every_steps or steps
        if grid >= _MAX_CHECKPOINT_EVERY:
            return _MAX_CHECKPOINT_EVERY
        return grid * math.ceil(_MIN_CHECKPOINT_EVERY / grid)
