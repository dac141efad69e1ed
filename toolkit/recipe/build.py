"""Turning a recipe into the things `toolkit.train.fit` runs: data, a compiled model.

- `build_data(config)`: a built-in dataset (`toolkit.data.load`) or a user function named
  `"package.module:function"`, cut to `max_train_examples` / `max_eval_examples` and checked:
  its structure always, its values (NaN/Inf) under `config.check`.
- `build_model(recipe, data)`: `toolkit.models.mlp` / `convnet` or a user function, its head
  checked against the labels, compiled with the recipe's optimizer and a `from_logits=True` loss
  (the conventions' linear head, S2.4), or mean squared error for regression.

Example:

>>> from toolkit.recipe import load_recipe
>>> from toolkit.recipe.build import build_data, build_model
>>> recipe = load_recipe("digits_mlp", overrides=["data.max_train_examples=64"])
>>> data = build_data(recipe.data)
>>> model = build_model(recipe, data)
>>> model.output_shape, data.x_train.shape
((None, 10), (64, 64))
"""

import dataclasses
import importlib
import inspect
import warnings
from typing import Any, Callable

import numpy as np

from toolkit.errors import DataError, ModelError
from toolkit.recipe.data_check import check_head_labels
from toolkit.recipe.schema import ModelConfig, Recipe

__all__ = ["build_data", "build_model", "import_function", "loss_and_metrics", "make_optimizer"]

# The keys of [model] each built-in architecture takes (besides name and num_outputs).
_MODEL_KEYS = {
    "mlp": ("input_scaling", "hidden_units"),
    "convnet": ("input_scaling", "filters", "kernel_size", "pool", "dense_units"),
}
_DATA_KEYS = ("x_train", "y_train", "x_test", "y_test")


def import_function(
    spec: str, key: str, error: type, call: tuple = (), expected: str = ""
) -> Callable:
    """Imports the function named by `"package.module:function"` and checks how it is called.

    Args:
        spec: `"package.module:function"`.
        key: The recipe key that named it, for error messages.
        error: The `ToolkitError` type to raise when the user's name is wrong.
        call: `(args, kwargs)` the toolkit will call it with; a function that cannot take them
            is refused before any work. Defaults to `()` (not checked).
        expected: The expected signature, for the message. Defaults to `""`.

    Returns:
        The callable.

    Raises:
        error: If the module cannot be found or has no such callable. An `ImportError` raised
            *inside* the user's module is a bug there and propagates unchanged.

    Example:

    >>> import_function("math:sqrt", "model.name", ModelError)(9.0)
    3.0
    >>> import_function("json:dumps", "model.name", ModelError, call=((1, 2), {}),
    ...                 expected="f(input_shape, num_outputs)")
    Traceback (most recent call last):
    ...
    toolkit.errors.ModelError: `model.name` = 'json:dumps' cannot be called as f(input_shape, num_outputs): too many positional arguments (its signature is (obj, *, skipkeys=False, ensure_ascii=True, check_circular=True, allow_nan=True, cls=None, indent=None, separators=None, default=None, sort_keys=False, **kw)). Name a function with that signature.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise error(f"`{key}` = {spec!r} is not of the form 'package.module:function'.")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as failure:
        if failure.name is None or not module_name.startswith(failure.name):
            raise  # the user's module imports something missing: a bug there
        raise error(
            f"`{key}` = {spec!r}: cannot import module {module_name!r}. Check the spelling and "
            f"that the module is importable (installed or on PYTHONPATH)."
        ) from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise error(
            f"`{key}` = {spec!r}: module {module_name!r} has no function {attribute!r}. "
            f"Check the name after the colon."
        )
    if call:
        _check_signature(function, spec, key, error, call, expected)
    return function


def _check_signature(function, spec, key, error, call, expected) -> None:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # Builtins without a signature: let the call tell.
        return
    args, kwargs = call
    try:
        signature.bind(*args, **kwargs)
    except TypeError as failure:
        raise error(
            f"`{key}` = {spec!r} cannot be called as {expected}: {failure} (its signature is "
            f"{signature}). Name a function with that signature."
        ) from None


def build_data(config: Any) -> Any:
    """Loads the recipe's dataset as a `toolkit.data.BuiltinData`, cut and checked.

    A user function (`data.name = "package.module:function"`) is called with no arguments and
    returns a `BuiltinData` or a dict with `x_train`, `y_train`, `x_test`, `y_test` and optionally
    `num_classes` and `task` (`"classification"` or `"regression"`); without them, integer labels
    mean classification with `max(label) + 1` classes.

    Args:
        config: The recipe's `DataConfig`.

    Returns:
        A `toolkit.data.BuiltinData`.

    Raises:
        DataError: For an unknown dataset, a malformed user dataset, or (with `config.check =
            "error"`, the default) NaN/Inf in it.

    Example:

    >>> from toolkit.recipe.schema import DataConfig
    >>> build_data(DataConfig(name="digits", max_eval_examples=10)).x_test.shape
    (10, 64)
    """
    from toolkit.data import ArraySource, BuiltinData, load

    if ":" in config.name:
        data = import_function(config.name, "data.name", DataError, call=((), {}),
                               expected="f() -> dataset")()
        data = _as_builtin(data, config.name, BuiltinData)
    else:
        data = load(config.name, seed=config.seed)
    cut = {}
    if config.max_train_examples:
        cut.update(x_train=data.x_train[: config.max_train_examples],
                   y_train=data.y_train[: config.max_train_examples])
    if config.max_eval_examples:
        cut.update(x_test=data.x_test[: config.max_eval_examples],
                   y_test=data.y_test[: config.max_eval_examples])
    data = dataclasses.replace(data, **cut)
    for split in ("train", "test"):
        try:
            ArraySource((getattr(data, f"x_{split}"), getattr(data, f"y_{split}")),
                        check=config.check)
        except DataError as error:
            raise DataError(f"Dataset {config.name!r}, {split} split: {error}") from None
    return data


def _as_builtin(data: Any, spec: str, builtin_type: type) -> Any:
    """Converts what a user data function returned into a `BuiltinData`."""
    if isinstance(data, builtin_type):
        return data
    if not isinstance(data, dict) or not all(key in data for key in _DATA_KEYS):
        raise DataError(
            f"`data.name` = {spec!r} must return a toolkit.data.BuiltinData or a dict with keys "
            f"{', '.join(_DATA_KEYS)}. Received: {type(data).__name__}"
            f"{' with keys ' + repr(sorted(data)) if isinstance(data, dict) else ''}."
        )
    arrays = {key: np.asarray(data[key]) for key in _DATA_KEYS}
    integer = np.issubdtype(arrays["y_train"].dtype, np.integer)
    task = data.get("task", "classification" if integer else "regression")
    if task not in ("classification", "regression"):
        raise DataError(
            f"`data.name` = {spec!r} returned task={task!r}; expected 'classification' or "
            f"'regression'."
        )
    num_classes = data.get("num_classes")
    if task == "classification" and num_classes is None:
        labels = np.concatenate([arrays["y_train"].ravel(), arrays["y_test"].ravel()])
        num_classes = int(labels.max()) + 1 if labels.size and integer else None
    return builtin_type(name=spec, num_classes=num_classes, task=task,
                        description=f"User dataset from {spec}.", **arrays)


def _num_outputs(config: ModelConfig, data: Any) -> int:
    if config.num_outputs:
        return config.num_outputs
    if data.task == "classification":
        return int(data.num_classes)
    return int(np.prod(np.asarray(data.y_train).shape[1:], dtype=np.int64))


def _architecture(config: ModelConfig, seed: int) -> Callable:
    """Returns `function(input_shape, num_outputs, adapt_data) -> keras.Model` for the config."""
    if config.name not in _MODEL_KEYS and ":" not in config.name:
        raise ModelError(
            f"Unknown `model.name` {config.name!r}. Expected 'mlp', 'convnet' or "
            f"'package.module:function'."
        )
    # Resolve the user's function first: a wrong name is reported before any warning.
    function = None
    if config.name not in _MODEL_KEYS:
        function = import_function(
            config.name, "model.name", ModelError,
            call=(((1,), 1), {"adapt_data": None, "seed": 0}),
            expected="f(input_shape, num_outputs, *, adapt_data, seed) -> keras.Model",
        )
    defaults = ModelConfig()
    taken = _MODEL_KEYS.get(config.name, ())
    ignored = [key for keys in _MODEL_KEYS.values() for key in keys
               if key not in taken and getattr(config, key) != getattr(defaults, key)]
    for key in dict.fromkeys(ignored):
        warnings.warn(f"`model.{key}` is ignored by model.name={config.name!r}.", stacklevel=3)
    if function is not None:
        return lambda shape, outputs, x: function(shape, outputs, adapt_data=x, seed=seed)
    from toolkit import models

    kwargs = {key: getattr(config, key) for key in taken}
    if kwargs.get("input_scaling") == "auto":
        del kwargs["input_scaling"]
    if kwargs.get("pool") == "none":
        kwargs["pool"] = None
    builder = getattr(models, config.name)
    return lambda shape, outputs, x: builder(shape, outputs, adapt_data=x, seed=seed, **kwargs)


def build_model(recipe: Recipe, data: Any) -> Any:
    """Builds and compiles the recipe's model for `data`.

    Args:
        recipe: The recipe (its `model`, `optimizer` and `train.seed` are used).
        data: A `toolkit.data.BuiltinData`, as returned by `build_data`.

    Returns:
        A compiled `keras.Model` with a linear head: `SparseCategoricalCrossentropy(
        from_logits=True)` and an `accuracy` metric for classification, mean squared error and a
        `mae` metric for regression.

    Raises:
        ModelError: For an unknown model name, or a model whose output does not match the data.
        DataError: For class labels out of range for the head, or not integers
            (`toolkit.recipe.data_check.check_head_labels`).

    Example:

    >>> from toolkit.recipe import load_recipe
    >>> recipe = load_recipe("heavy_tailed_regression", overrides=["data.max_train_examples=32"])
    >>> build_model(recipe, build_data(recipe.data)).loss.name
    'mean_squared_error'
    """
    import keras

    num_outputs = _num_outputs(recipe.model, data)
    if data.task == "classification":
        check_head_labels(data, num_outputs)
    make = _architecture(recipe.model, recipe.train.seed)
    model = make(tuple(data.x_train.shape[1:]), num_outputs, data.x_train)
    if not isinstance(model, keras.Model):
        raise ModelError(
            f"`model.name` = {recipe.model.name!r} returned {type(model).__name__}; expected an "
            f"uncompiled keras.Model."
        )
    width = model.output_shape[-1] if isinstance(model.output_shape, tuple) else None
    if width != num_outputs:
        raise ModelError(
            f"`model.name` = {recipe.model.name!r} built a model with output shape "
            f"{model.output_shape}; expected a single output of width {num_outputs}. Build the "
            f"head with the `num_outputs` argument."
        )
    loss, metrics = loss_and_metrics(data.task)
    model.compile(make_optimizer(recipe), loss, metrics=metrics)
    return model


def make_optimizer(recipe: Recipe) -> Any:
    """Returns the recipe's Keras optimizer: `optimizer.name` at its learning-rate schedule.

    The schedule (`optimizer.schedule`, the final anneal) is a function of the optimizer step
    over `train.steps` (`toolkit.train.schedules.learning_rate`).

    Example:

    >>> type(make_optimizer(Recipe())).__name__
    'Adam'
    """
    import keras

    from toolkit.train.schedules import learning_rate

    config = recipe.optimizer
    rate = learning_rate(
        config.learning_rate, config.schedule, steps=recipe.train.steps,
        decay_steps=config.decay_steps, decay_factor=config.decay_factor,
        decay_rate=config.decay_rate, final_anneal_fraction=config.final_anneal_fraction,
        final_anneal_factor=config.final_anneal_factor,
    )
    optimizer = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}[config.name]
    return optimizer(learning_rate=rate)


def loss_and_metrics(task: str) -> tuple:
    """Returns `(loss, [metric])` for a linear head: logits for classification (S2.4).

    Args:
        task: `"classification"` or `"regression"`.

    Returns:
        `SparseCategoricalCrossentropy(from_logits=True)` and accuracy, or mean squared error and
        mean absolute error (`mae`).

    Example:

    >>> loss, metrics = loss_and_metrics("regression")
    >>> loss.name, metrics[0].name
    ('mean_squared_error', 'mae')
    """
    import keras

    if task == "classification":
        return (keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return keras.losses.MeanSquaredError(), [keras.metrics.MeanAbsoluteError(name="mae")]
