"""The `[tune]` table: the search `toolkit tune` runs over the rest of a recipe.

Example:

>>> TuneConfig(max_steps=900).factor
3
"""

import dataclasses

from toolkit.recipe.entries import SearchDimension
from toolkit.recipe.setting import setting

__all__ = ["TuneConfig"]


@dataclasses.dataclass(frozen=True)
class TuneConfig:
    """The `[tune]` table: the search `toolkit tune` runs over the rest of the recipe.

    Every trial is a full run of the recipe with the `[tune.space]` values applied, in its own
    run directory under the search directory; budgets are optimizer steps.

    Args:
        tuner: KerasTuner's oracle: `"hyperband"`, `"random"` or `"bayesian"`.
        objective: What trials are ranked by: `val_<metric>` on the validation split
            (`data.validation_examples`), e.g. `"val_accuracy"`.
        direction: `"max"`, `"min"`, or `"auto"` (min for losses and errors, else max).
        max_trials: Trials of a random or Bayesian search (`0`: 10); for Hyperband, a cap
            (`0`: none, as many trials as its brackets hold).
        max_steps: Optimizer steps of a full trial; `0` takes `train.steps`.
        min_steps: Hyperband: steps of the shortest trials; `0` takes `max_steps / factor**2`.
        factor: Hyperband: the budget grows, and the trials shrink, by this factor per round.
        hyperband_iterations: Hyperband: how many times to run all of its brackets.
        seed: Seed of the oracle's choices.
        space: `SearchDimension`s, one per `[tune.space]` entry.

    Example:

    >>> TuneConfig().tuner, TuneConfig().objective
    ('hyperband', 'val_accuracy')
    """

    tuner: str = setting(
        "hyperband",
        "KerasTuner oracle: hyperband (step budgets; promoted trials continue from their "
        "parent's checkpoint), random or bayesian.",
        choices=("hyperband", "random", "bayesian"),
    )
    objective: str = setting(
        "val_accuracy",
        "Trial ranking: val_<metric> on the held-out validation split (data.validation_examples), "
        "e.g. val_accuracy or val_loss.",
    )
    direction: str = setting(
        "auto", "max, min, or auto (min for losses and errors, max otherwise).",
        choices=("auto", "max", "min"),
    )
    max_trials: int = setting(
        0, "Trials of a random or bayesian search (0: 10); a cap for hyperband (0: none, "
        "as many as its brackets hold).", minimum=0
    )
    max_steps: int = setting(
        0, "Optimizer steps of a full trial; 0 takes train.steps.", minimum=0
    )
    min_steps: int = setting(
        0, "hyperband: optimizer steps of the shortest trials; 0 takes max_steps / factor^2.",
        minimum=0,
    )
    factor: int = setting(
        3, "hyperband: budget growth and trial reduction per round.", minimum=2
    )
    hyperband_iterations: int = setting(
        1, "hyperband: how many times to run all of its brackets.", minimum=1
    )
    seed: int = setting(1, "Seed of the oracle's choices.", minimum=1)
    space: tuple[SearchDimension, ...] = setting(
        (),
        '[tune.space] entries: "table.key" = {min = ..., max = ..., sampling = "log"} (a range; '
        "integers when both bounds are, step optional) or {choices = [...]}.",
    )
