"""ModelTuner: the step-budget search, for a user's own `build(hp)` or `keras_tuner.HyperModel`.

Where `search_recipe` searches a recipe, `ModelTuner` searches any model a KerasTuner user
already builds from hyperparameters, and trains each trial with `toolkit.fit` on budgets in
optimizer steps: each trial is a run directory with TensorBoard's four axes and checkpoints, a
promoted Hyperband trial continues from its parent's last checkpoint (Adam's state included),
and a killed search resumes when rerun on the same directory. The model is trained by
`toolkit.fit`, so a `HyperModel.fit` override is not called; `build(hp)` must compile the model.

Example:

>>> import tempfile
>>> import keras
>>> import numpy as np
>>> from toolkit.recipe.schema import TuneConfig
>>> x, y = np.random.rand(256, 8).astype("float32"), np.random.randint(0, 2, 256)
>>> def build(hp):
...     model = keras.Sequential([keras.Input((8,)),
...                               keras.layers.Dense(hp.Int("units", 4, 16), "relu"),
...                               keras.layers.Dense(2)])
...     model.compile(keras.optimizers.Adam(hp.Float("learning_rate", 1e-3, 1e-2,
...                                                  sampling="log")),
...                   keras.losses.SparseCategoricalCrossentropy(from_logits=True),
...                   metrics=["accuracy"])
...     return model
>>> tuner = ModelTuner(build, TuneConfig(tuner="hyperband", max_steps=9, min_steps=3),
...                    directory=tempfile.mkdtemp(), verbose=0)
>>> tuner.search((x, y), batch_size=32, validation_data=(x[:64], y[:64]))
>>> best = tuner.oracle.get_best_trials(1)[0]
>>> sorted(best.metrics.metrics)
['val_accuracy', 'val_loss']
"""

import os
from pathlib import Path
from typing import Any, Dict, Optional

from toolkit.recipe.schema import TuneConfig
from toolkit.tune.oracles import hyperband_budgets, make_oracle
from toolkit.tune.step_tuner import StepTuner

__all__ = ["ModelTuner"]


class ModelTuner(StepTuner):
    """A `StepTuner` over a `build(hp)` function or `keras_tuner.HyperModel` (see the module doc).

    Args:
        hypermodel: `build(hp) -> compiled keras.Model`, or a `keras_tuner.HyperModel`.
        tune: The search: `tuner`, `objective` (a `val_<metric>` of `validation_data`),
            `direction`, `max_trials`, `max_steps` (required), `min_steps`, `factor`,
            `hyperband_iterations`, `seed`; its `space` is ignored (the hypermodel declares it).
        directory: The search directory; rerunning on it resumes the search.
        seed: Seed set before each trial's model is built (the same initialization for every
            trial). Defaults to `0`.
        overwrite: Delete a previous search there first. Defaults to `False`.
        verbose: `1` prints one line per trial start and end. Defaults to `1`.

    Call `search(data, validation_data=..., **fit_kwargs)`: `data` and `fit_kwargs`
    (`batch_size`, `eval_every_steps`, ...) go to `toolkit.fit` for every trial.
    """

    def __init__(self, hypermodel: Any, tune: TuneConfig, *, directory: str | os.PathLike,
                 seed: int = 0, overwrite: bool = False, verbose: int = 1):
        import keras_tuner

        if not tune.max_steps:
            raise ValueError("`ModelTuner` needs `tune.max_steps`, the optimizer steps of a "
                             "full trial, e.g. TuneConfig(max_steps=3000).")
        min_steps = 0
        if tune.tuner == "hyperband":
            min_steps, _ = hyperband_budgets(tune.max_steps, tune.min_steps, tune.factor)
        self.seed = seed
        oracle = make_oracle(tune, keras_tuner.HyperParameters(), discover=True)
        super().__init__(oracle, directory=directory, max_steps=tune.max_steps,
                         min_steps=min_steps, hypermodel=hypermodel, overwrite=overwrite,
                         verbose=verbose)

    def train_trial(self, trial: Any, run_dir: Path, steps: int, data: Any, *,
                    validation_data: Any, eval_every_steps: Optional[int] = None,
                    **fit_kwargs: Any) -> Dict[str, float]:
        import keras

        from toolkit.train import fit

        keras.utils.set_random_seed(self.seed)
        model = self.hypermodel.build(trial.hyperparameters)
        history = fit(model, data, steps=steps, eval_data=validation_data,
                      eval_every_steps=min(eval_every_steps or steps, steps),
                      run_dir=os.fspath(run_dir), verbose=0, **fit_kwargs)
        return {key: float(value) for key, value in history.final().items()
                if key.startswith("val_")}
