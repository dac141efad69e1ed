"""KerasTuner's own oracles, made to survive a killed search.

`make_oracle(tune, hyperparameters)` returns KerasTuner's `RandomSearchOracle`,
`BayesianOptimizationOracle` or `HyperbandOracle` for a recipe's `[tune]` table, each with three
repairs for a search that is killed at any instant and rerun (`SearchResume`):

1. `oracle.json` and every `trial.json` are written atomically (`toolkit.atomic_write`):
   KerasTuner writes them in place, so a kill mid-write leaves a truncated file and the rerun
   fails to parse it.
2. A trial whose `trial.json` was written but which `oracle.json` never recorded (a kill
   between the two writes of `create_trial`) is dropped on reload: the oracle, back at its saved
   state, creates it again under the same id with the same values.
3. A trial that ended but that `oracle.json` still lists as running (`end_trial` removes it from
   the running trials only after its last save) is not run again: KerasTuner's reload would queue
   it for a retry.

A trial that was really interrupted is queued again by KerasTuner's own reload under its id, and
the tuner resumes it from its run directory's checkpoint (`toolkit.tune.StepTuner`).

Hyperband's budgets are KerasTuner's "epochs"; `make_oracle` gives it `max_steps / min_steps`
of them, and the tuner trains `epochs * min_steps` optimizer steps (capped at `max_steps`).

Example:

>>> from toolkit.recipe.schema import SearchDimension, TuneConfig
>>> from toolkit.tune.space import declare_space
>>> tune = TuneConfig(tuner="hyperband", max_steps=900, min_steps=100)
>>> oracle = make_oracle(tune, declare_space([SearchDimension("optimizer.learning_rate",
...                                                           min_value=1e-4, max_value=1e-2)]))
>>> type(oracle).__name__, oracle.max_epochs, oracle.objective.direction
('ResumableHyperbandOracle', 9, 'max')
"""

import json
import os
import shutil
from typing import Any

import keras_tuner

from toolkit import atomic_write
from toolkit.errors import RecipeError
from toolkit.recipe.schema import TuneConfig

__all__ = ["SearchResume", "hyperband_budgets", "make_oracle", "objective_direction"]

_COMPLETED = "COMPLETED"
DEFAULT_TRIALS = 10  # Of a random or Bayesian search with `tune.max_trials = 0`.
# Words that make an objective one to minimize (`direction = "auto"`).
_MINIMIZED = ("loss", "error", "mse", "mae", "crossentropy")


class SearchResume:
    """Mixin for a KerasTuner `Oracle`: atomic state files and a reload that loses no trial.

    See the module doc for the three repairs. Mixed in before the oracle class:
    `class ResumableHyperbandOracle(SearchResume, keras_tuner.oracles.HyperbandOracle)`.

    Example:

    >>> issubclass(ResumableRandomOracle, keras_tuner.Oracle)
    True
    """

    def save(self) -> None:
        atomic_write.write_text(self._get_oracle_fname(), json.dumps(self.get_state()))

    def _save_trial(self, trial: Any) -> None:
        path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
        atomic_write.write_text(path, json.dumps(trial.get_state()))

    def reload(self) -> None:
        super().reload()
        started = set(self.start_order)
        for trial_id in [t for t in self.trials if t not in started]:
            # Repair 2: created but never recorded. Its folder would be taken again by the
            # same id, so it goes: trial.json first, then the rest.
            folder = self._get_trial_dir(trial_id)
            os.remove(os.path.join(folder, "trial.json"))
            shutil.rmtree(folder, ignore_errors=True)
            del self.trials[trial_id]
        for trial_id in list(self._retry_queue):
            trial = self.trials[trial_id]
            if trial.status == _COMPLETED:  # Repair 3: ended, but still listed as running.
                self._retry_queue.remove(trial_id)
                if trial_id not in self.end_order:
                    self.end_order.append(trial_id)
        self.save()


class ResumableRandomOracle(SearchResume, keras_tuner.oracles.RandomSearchOracle):
    """KerasTuner's `RandomSearchOracle` with `SearchResume`."""


class ResumableBayesianOracle(SearchResume, keras_tuner.oracles.BayesianOptimizationOracle):
    """KerasTuner's `BayesianOptimizationOracle` with `SearchResume`."""


class ResumableHyperbandOracle(SearchResume, keras_tuner.oracles.HyperbandOracle):
    """KerasTuner's `HyperbandOracle` with `SearchResume`."""


def objective_direction(objective: str, direction: str = "auto") -> str:
    """`"min"` or `"max"` for an objective (`direction="auto"`: min for losses and errors).

    Args:
        objective: The objective's name, e.g. `"val_accuracy"`.
        direction: `"auto"`, `"min"` or `"max"`. Defaults to `"auto"`.

    Returns:
        `"min"` or `"max"`.

    Example:

    >>> objective_direction("val_loss"), objective_direction("val_accuracy")
    ('min', 'max')
    """
    if direction != "auto":
        return direction
    return "min" if any(word in objective for word in _MINIMIZED) else "max"


def hyperband_budgets(max_steps: int, min_steps: int, factor: int) -> tuple:
    """Hyperband's step budgets, shortest first, and its `max_epochs` in units of `min_steps`.

    Args:
        max_steps: Steps of a full trial.
        min_steps: Steps of the shortest trials; `0` takes `max_steps / factor**2`.
        factor: Hyperband's reduction factor.

    Returns:
        `(min_steps, max_epochs)`.

    Raises:
        RecipeError: If `min_steps` is not below `max_steps`.

    Example:

    >>> hyperband_budgets(2700, 0, 3)
    (300, 9)
    """
    min_steps = min_steps or max(1, max_steps // factor**2)
    if min_steps >= max_steps:
        raise RecipeError(
            f"`tune.min_steps` ({min_steps}) must be below `tune.max_steps` ({max_steps}): "
            f"Hyperband grows budgets from the first to the second. Lower tune.min_steps or "
            f"raise tune.max_steps (e.g. min_steps * factor**2)."
        )
    return min_steps, max(2, round(max_steps / min_steps))


def make_oracle(tune: TuneConfig, hyperparameters: Any, max_steps: int = 0,
                discover: bool = False) -> Any:
    """KerasTuner's oracle for a `[tune]` table, with `SearchResume`.

    Args:
        tune: The `[tune]` table.
        hyperparameters: The search space (`toolkit.tune.space.declare_space`).
        max_steps: Steps of a full trial, when `tune.max_steps` is `0`. Defaults to `0`.
        discover: Let a hypermodel declare the space when it is built (KerasTuner's
            `tune_new_entries`), instead of `hyperparameters` alone. Defaults to `False`.

    Returns:
        A `keras_tuner.Oracle`.

    Raises:
        RecipeError: For an objective that is not `val_<metric>`, an empty search space, or
            Hyperband budgets that do not grow.
    """
    if not tune.objective.startswith("val_"):
        raise RecipeError(
            f"`tune.objective` = {tune.objective!r} must be a validation metric, `val_<metric>` "
            f"such as val_accuracy or val_loss: a search selects on the validation split, never "
            f"on the test split or the training loss."
        )
    if not hyperparameters.space and not discover:
        raise RecipeError(
            "The recipe has no [tune.space] entries, so there is nothing to search. Add some, "
            'e.g. [tune.space] "optimizer.learning_rate" = {min = 1e-4, max = 1e-2, '
            'sampling = "log"}.'
        )
    objective = keras_tuner.Objective(tune.objective, objective_direction(
        tune.objective, tune.direction))
    common = dict(objective=objective, hyperparameters=hyperparameters, seed=tune.seed,
                  allow_new_entries=discover, tune_new_entries=discover)
    if tune.tuner == "random":
        return ResumableRandomOracle(max_trials=tune.max_trials or DEFAULT_TRIALS, **common)
    if tune.tuner == "bayesian":
        return ResumableBayesianOracle(max_trials=tune.max_trials or DEFAULT_TRIALS, **common)
    _, max_epochs = hyperband_budgets(tune.max_steps or max_steps, tune.min_steps, tune.factor)
    oracle = ResumableHyperbandOracle(max_epochs=max_epochs, factor=tune.factor,
                                      hyperband_iterations=tune.hyperband_iterations, **common)
    oracle.max_trials = tune.max_trials or None  # KerasTuner's cap, read by create_trial.
    return oracle
