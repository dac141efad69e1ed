"""Everything a recipe needs before its first step: seeds, data, data check and compiled model.

`toolkit train` trains what `prepare_recipe` builds; `toolkit find-lr`, `toolkit doctor` and the
other probes measure the very same model on the very same pipeline, so what they report applies
to the run the recipe would make.

Example:

>>> from toolkit.recipe import load_recipe
>>> prepared = prepare_recipe(load_recipe("digits_mlp", ["data.max_train_examples=64"]))
>>> type(prepared.model.optimizer).__name__, prepared.inputs.dataset_size
('Adam', 64)
"""

import dataclasses
import os
from typing import Any, List, Optional

from toolkit.recipe.augmentations import build_augment
from toolkit.recipe.data_check import check_recipe_data
from toolkit.recipe.heads import build_recipe_model
from toolkit.recipe.inputs import RecipeInputs, build_inputs
from toolkit.recipe.schema import Recipe

__all__ = ["PreparedRecipe", "prepare_recipe"]


@dataclasses.dataclass(frozen=True)
class PreparedRecipe:
    """A recipe's loaded data and compiled model, before any training step.

    Args:
        recipe: The recipe.
        inputs: Its `RecipeInputs` (training source, evaluation data, heads).
        model: The compiled, untrained `keras.Model`.
        data_findings: The data check's findings that did not stop the run (one line each).
    """

    recipe: Recipe
    inputs: RecipeInputs
    model: Any
    data_findings: List[str]

    def train_data(self, *, batch_size: Optional[int] = None, seed: Optional[int] = None,
                   start_step: int = 0) -> Any:
        """The recipe's endless training pipeline (`toolkit.data.endless`).

        Args:
            batch_size: Examples per batch. Defaults to `None` (`data.batch_size`, grown at
                `data.batch_growth_steps`).
            seed: Sampling seed. Defaults to `None` (`train.seed`).
            start_step: First step drawn. Defaults to `0`.

        Returns:
            A `tf.data.Dataset` of endless batches.
        """
        from toolkit.data import endless
        from toolkit.train.schedules import BatchSizeSchedule

        recipe = self.recipe
        if batch_size is None and recipe.data.batch_growth_steps:
            batch_size = BatchSizeSchedule(recipe.data.batch_size, recipe.data.batch_growth_steps,
                                           factor=recipe.data.batch_growth_factor)
        return endless(
            self.inputs.train, batch_size or recipe.data.batch_size,
            seed=recipe.train.seed if seed is None else seed, start_step=start_step,
            sampling=recipe.data.sampling, augment=build_augment(recipe.data.augment),
        )


def prepare_recipe(recipe: Recipe, run_dir: Optional[os.PathLike] = None) -> PreparedRecipe:
    """Seeds Keras, loads and checks the data and builds the compiled model of a recipe.

    Args:
        recipe: The recipe.
        run_dir: The run directory (home of `shards.jsonl` for `data.shards_dir`). Defaults to
            `None` (nothing written).

    Returns:
        A `PreparedRecipe`.

    Raises:
        DataError: For unknown, malformed or non-finite data (under `data.check = "error"`), or
            labels out of range.
        ModelError: For an unknown model or one that does not fit the data.
        StrategyError: For a `train.strategy` that cannot start (no TPU, no `TF_CONFIG`).
    """
    import keras

    from toolkit.distribute import make_strategy, set_precision

    strategy = make_strategy(recipe.train.strategy)
    keras.utils.set_random_seed(recipe.train.seed)
    inputs = build_inputs(recipe, run_dir)
    findings = check_recipe_data(inputs, recipe.data.check, recipe.model.input_scaling)
    previous = keras.config.dtype_policy()
    set_precision(recipe.train.precision)
    try:
        # Weights, optimizer slots and metrics are created in the strategy's scope; `fit` runs
        # in it too. The policy is the model's own once built: the global one is put back.
        with strategy.scope():
            model = build_recipe_model(recipe, inputs)
    finally:
        keras.config.set_dtype_policy(previous)
    return PreparedRecipe(recipe=recipe, inputs=inputs, model=model, data_findings=findings)
