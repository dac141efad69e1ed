"""The recipe's compiled model: one linear head, or one head per `[data.sources.<head>]` table.

With several sources (S0.1: one model, two datasets, two losses), the architecture of `[model]`
is built as usual and its output layer is replaced by one `toolkit.layers.LinearHead` per source,
named after it, on the shared trunk. Each head gets its own loss (`SparseCategoricalCrossentropy(
from_logits=True)` for classification, mean squared error for regression) and its own weighted
metric (accuracy or `mae`), so Keras logs `<head>_loss` and `<head>_accuracy` / `<head>_mae` and
the masked sample weights of `toolkit.data.mix` keep each head on its own data.

Before anything is built, each classification head's labels (all rows) are checked against its
width by `toolkit.recipe.data_check.check_head_labels`, whatever `data.check` says: one message
naming the recipe key to fix. The input scaling is then adapted on the finite training rows: with
`data.check = "warn"` NaN/Inf rows still reach training, but they would turn every statistic of
the scaling layer into NaN.

Example:

>>> from toolkit.recipe import load_recipe
>>> from toolkit.recipe.inputs import build_inputs
>>> recipe = load_recipe("two_tasks", ["data.max_train_examples=64", "data.max_eval_examples=8"])
>>> model = build_recipe_model(recipe, build_inputs(recipe, run_dir=None))
>>> {name: tuple(output.shape) for name, output in model.output.items()}
{'digit': (None, 10), 'position': (None, 1)}
"""

import dataclasses
import warnings
from typing import Any

import numpy as np

from toolkit.errors import ModelError
from toolkit.recipe.build import (
    _architecture,
    _num_outputs,
    build_model,
    loss_and_metrics,
    make_optimizer,
)
from toolkit.recipe.data_check import check_head_labels
from toolkit.recipe.schema import Recipe

__all__ = ["build_recipe_model"]


def build_recipe_model(recipe: Recipe, inputs: Any) -> Any:
    """Builds and compiles the model for `inputs` (`toolkit.recipe.inputs.RecipeInputs`).

    Args:
        recipe: The recipe (`model`, `optimizer`, `train.seed`).
        inputs: The recipe's data; one head (`""`) or one per source.

    Returns:
        A compiled `keras.Model`; with several heads its outputs are a dict keyed by head name.

    Raises:
        ModelError: For an unknown model, a model with several outputs to put heads on, or a
            head name that is already a layer name of the trunk.
        DataError: For class labels out of range for their head (or not integers), whatever
            `data.check` says.

    Example:

    >>> from toolkit.recipe import load_recipe
    >>> from toolkit.recipe.inputs import build_inputs
    >>> recipe = load_recipe("digits_mlp", ["data.max_train_examples=32"])
    >>> build_recipe_model(recipe, build_inputs(recipe, run_dir=None)).output_shape
    (None, 10)
    """
    if not inputs.multi_head:
        data = inputs.heads[""]
        if data.task == "classification":
            # Before _finite_rows: a NaN label must be reported, not dropped with its row.
            check_head_labels(data, _num_outputs(recipe.model, data))
        return build_model(recipe, _finite_rows(data))
    return _multi_head(recipe, inputs.heads)


def _width(data: Any) -> int:
    if data.task == "classification":
        return int(data.num_classes)
    return int(np.prod(np.asarray(data.y_train).shape[1:], dtype=np.int64))


def _multi_head(recipe: Recipe, heads: dict) -> Any:
    import keras

    from toolkit.layers import LinearHead

    if recipe.model.num_outputs:
        warnings.warn(
            f"`model.num_outputs` = {recipe.model.num_outputs} is ignored with [data.sources]: "
            f"each head's width comes from its dataset.", stacklevel=3)
    widths = {head: _width(data) for head, data in heads.items()}
    for head, data in heads.items():
        if data.task == "classification":
            check_head_labels(data, widths[head], head)
    adapt_x = np.concatenate([_finite_rows(data).x_train for data in heads.values()])
    base = _architecture(recipe.model, recipe.train.seed)(adapt_x.shape[1:], 1, adapt_x)
    if not isinstance(base, keras.Model) or len(base.outputs) != 1:
        raise ModelError(
            f"`model.name` = {recipe.model.name!r} must build a keras.Model with one output whose "
            f"last layer is the head; [data.sources] replaces that layer with one head per source."
        )
    trunk_layers = {layer.name for layer in base.layers[:-1]}
    for head in heads:
        if head in trunk_layers:
            raise ModelError(
                f"Head name {head!r} ([data.sources.{head}]) is already a layer of the "
                f"{base.name!r} trunk; Keras needs unique layer names. Rename the table, e.g. "
                f"[data.sources.{head}_task]."
            )
    features = base.layers[-1].input  # the trunk's output, what the original head read
    outputs = {
        head: LinearHead(widths[head], seed=_head_seed(recipe.train.seed, i), name=head)(features)
        for i, head in enumerate(heads)
    }
    model = keras.Model(base.inputs, outputs, name=f"{base.name}_heads")
    losses, metrics = {}, {}
    for head, data in heads.items():
        losses[head], metrics[head] = loss_and_metrics(data.task)
    # weighted_metrics, not metrics: only weighted ones honour the mask of the other heads' rows.
    model.compile(make_optimizer(recipe), loss=losses, weighted_metrics=metrics)
    return model


def _finite_rows(data: Any) -> Any:
    """`data` with only the training rows whose features and targets are all finite.

    The model adapts its input scaling on `x_train`; with `data.check = "warn"` NaN/Inf rows
    were reported once and still reach training, but statistics over them would all be NaN.
    """
    keep = np.ones(len(data.x_train), bool)
    for array in (np.asarray(data.x_train), np.asarray(data.y_train)):
        if np.issubdtype(array.dtype, np.inexact) and array.size:
            keep &= np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    if keep.all():
        return data
    return dataclasses.replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep])


def _head_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, 1000 + index]).generate_state(1)[0])
