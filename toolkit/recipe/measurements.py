"""The optional callbacks of a recipe run (`[callbacks]`): gradient noise scale, sharpness, and
ending on the best weights (`callbacks.restore_best`).

`measurement_callbacks` builds the probes the recipe asks for, on the recipe's own training data
(the probes draw their batches with their own seeds, outside the training steps); after training
`measurement_summary` turns them into `summary.json` entries, which `report.md` and the CLI quote:
"critical batch size ≈ …; you train at …" (S1.5) and the top Hessian eigenvalue against the
learning rate's stability threshold 2/η.

Example:

>>> from toolkit.recipe import load_recipe
>>> from toolkit.recipe.inputs import build_inputs
>>> recipe = load_recipe("digits_mlp", ["callbacks.gradient_noise_every_steps=50"])
>>> [type(c).__name__ for c in measurement_callbacks(recipe, build_inputs(recipe, None), None)]
['GradientNoiseScale']
"""

import os
import warnings
from typing import Any, Dict, List, Optional

from toolkit.recipe.schema import Recipe

__all__ = ["measurement_callbacks", "measurement_summary"]

NEVER_STOP_STEPS = 2**62  # `callbacks.restore_best`'s patience.
_SHARPNESS_EXAMPLES = 512  # The fixed probe batch: enough for a stable estimate, cheap to solve.


def measurement_callbacks(recipe: Recipe, inputs: Any, run_dir: Optional[os.PathLike]) -> List:
    """The `[callbacks]` probes of a recipe, ready for `toolkit.fit`.

    Args:
        recipe: The recipe.
        inputs: Its `toolkit.recipe.inputs.RecipeInputs`.
        run_dir: The run directory (their TensorBoard scalars), or `None`.

    Returns:
        A list of `GradientNoiseScale` and `Sharpness` callbacks (empty when both are off).
    """
    from toolkit.callbacks import GradientNoiseScale, Sharpness

    from toolkit.callbacks import EarlyStopping

    config = recipe.callbacks
    callbacks: List = []
    if config.restore_best:
        # Patience beyond any budget: it never stops, it only keeps and restores the best.
        callbacks.append(EarlyStopping(NEVER_STOP_STEPS, monitor=config.restore_best,
                                       min_delta=0.0, restore_best_weights=True))
    wanted = config.gradient_noise_every_steps or config.sharpness_every_steps
    if not wanted:
        return callbacks
    if inputs.multi_head:
        warnings.warn("The [callbacks] probes measure one head's loss; this recipe trains "
                      "several heads, so they are skipped.", stacklevel=2)
        return callbacks
    data = inputs.heads[""]
    log_dir = os.fspath(run_dir) if run_dir is not None else None
    if config.gradient_noise_every_steps:
        callbacks.append(GradientNoiseScale(
            (data.x_train, data.y_train), log_dir=log_dir, batch_size=recipe.data.batch_size,
            every_steps=config.gradient_noise_every_steps, seed=recipe.train.seed))
    if config.sharpness_every_steps:
        batch = (data.x_train[:_SHARPNESS_EXAMPLES], data.y_train[:_SHARPNESS_EXAMPLES])
        callbacks.append(Sharpness(batch, every_steps=config.sharpness_every_steps,
                                   log_dir=log_dir, seed=recipe.train.seed))
    return callbacks


def measurement_summary(callbacks: List) -> Dict[str, Any]:
    """`summary.json` entries of the probes: `gradient_noise`, `sharpness`, `restored_best`.

    Args:
        callbacks: The callbacks of `measurement_callbacks`, after training.

    Returns:
        A dict with `gradient_noise` (`noise_scale`, `batch_size`, `probes`, `summary`) and/or
        `sharpness` (`step`, `eigenvalue`, `threshold` = 2/η, `ratio` = λ/(2/η), `probes`),
        and/or `restored_best` (`monitor`, `step`, `value`).
    """
    from toolkit.callbacks import EarlyStopping, GradientNoiseScale, Sharpness

    summary: Dict[str, Any] = {}
    for callback in callbacks:
        if isinstance(callback, GradientNoiseScale):
            summary["gradient_noise"] = {
                "noise_scale": callback.noise_scale, "batch_size": callback.batch_size,
                "probes": len(callback.history), "summary": callback.summary()}
        elif isinstance(callback, EarlyStopping) and callback.best_step is not None:
            summary["restored_best"] = {"monitor": callback.monitor, "step": callback.best_step,
                                        "value": callback.best_value}
        elif isinstance(callback, Sharpness) and callback.history:
            step, value, threshold = callback.history[-1]
            summary["sharpness"] = {
                "step": step, "eigenvalue": value, "threshold": threshold,
                "ratio": value / threshold if threshold else None,
                "probes": len(callback.history)}
    return summary
