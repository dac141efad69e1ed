"""KerasTuner searches on step budgets: trials are toolkit runs, and Hyperband continues them.

A recipe's `[tune]` table declares the search: a space over any recipe keys (`[tune.space]`),
KerasTuner's oracle (`hyperband`, `random`, `bayesian`), the objective on the held-out
validation split (`data.validation_examples`) and the budgets in optimizer steps. `search_recipe`
(the CLI's `toolkit tune`) runs it:

- every trial is a full run directory under `<search_dir>/runs/` (TensorBoard's four axes,
  checkpoints, diagnosis, `report.md`), with the test split evaluated once at its end;
- Hyperband's promoted trials continue from their parent's last checkpoint, Adam's state and
  data position included (`StepTuner`), where plain KerasTuner restarts the optimizer;
- a killed search reruns to completion with every trial run exactly once
  (`toolkit.tune.oracles.SearchResume`);
- `ModelTuner` brings the same to a user's own `build(hp)` function or `keras_tuner.HyperModel`.

Example, end to end (a tiny random search; `toolkit tune` runs the shipped one):

>>> import dataclasses, tempfile
>>> from toolkit.recipe import load_recipe
>>> from toolkit.recipe.space_tables import parse_space
>>> recipe = load_recipe("digits_mlp", [
...     "data.validation_examples=100", "data.max_train_examples=400", "train.steps=10",
...     "train.deterministic=false", "tune.tuner=random", "tune.max_trials=2"])
>>> space = parse_space({"optimizer.learning_rate": {"min": 1e-3, "max": 1e-2}}, "", "")
>>> recipe = dataclasses.replace(recipe, tune=dataclasses.replace(recipe.tune, space=space))
>>> result = search_recipe(recipe, tempfile.mkdtemp(), verbose=0)
>>> len(result.trials), sorted(result.best.validation), result.optimizer_steps
(2, ['val_accuracy', 'val_loss'], 20)
"""

from toolkit.tune.model_tuner import ModelTuner
from toolkit.tune.oracles import make_oracle
from toolkit.tune.recipe_tuner import RecipeTuner, SearchResult, TrialResult, search_recipe
from toolkit.tune.space import declare_space
from toolkit.tune.step_tuner import StepTuner

__all__ = [
    "ModelTuner",
    "RecipeTuner",
    "SearchResult",
    "StepTuner",
    "TrialResult",
    "declare_space",
    "make_oracle",
    "search_recipe",
]
