"""`data.augment`: recipe entries turned into `toolkit.data.augment` functions.

A recipe lists augmentations as TOML tables, applied in order to every training batch:

    [data]
    augment = [{name = "random_shift", max_shift = 4}, {name = "gaussian_noise", stddev = 0.05}]

`parse_augment` checks each entry when the recipe is loaded (an unknown name or a wrong argument
is a `RecipeError` naming the entry, the valid names or the function's arguments), and
`build_augment` composes the functions for `toolkit.data.endless(..., augment=...)`, where each
gets its own stateless seed keyed by (seed, step): a resumed run reproduces every variant.

Example:

>>> steps = parse_augment([{"name": "random_shift", "max_shift": 4}], "data.augment", "recipe")
>>> steps
(random_shift(max_shift=4),)
>>> callable(build_augment(steps))
True
"""

import inspect
from typing import Any, Callable, Optional

from toolkit.errors import RecipeError, ToolkitError
from toolkit.recipe.schema import AugmentStep

__all__ = ["augmentation_names", "build_augment", "parse_augment"]

# The augmentations a recipe may name: every public function of `toolkit.data.augment` but
# `compose` (the list itself is the composition).
_NAMES = ("random_shift", "random_scale", "gaussian_noise", "random_flip", "random_crop",
          "random_brightness")
_EXAMPLE = '[{name = "random_shift", max_shift = 4}]'


def augmentation_names() -> tuple:
    """Returns the names `data.augment` entries may use.

    Example:

    >>> augmentation_names()[:3]
    ('random_shift', 'random_scale', 'gaussian_noise')
    """
    return _NAMES


def _function(name: str) -> Callable:
    from toolkit.data import augment

    return getattr(augment, name)


def parse_augment(value: Any, key: str, source: str) -> tuple:
    """Checks a `data.augment` value and returns it as a tuple of `AugmentStep`s.

    Each entry is a table with a `name` (one of `augmentation_names()`) and the function's
    keyword arguments; the function is built once here so that a bad argument value is reported
    when the recipe is loaded, not after the model is built.

    Args:
        value: The TOML value: a list of tables.
        key: The recipe key, for messages (`"data.augment"`).
        source: Where the value came from (a file or a `--set`), for messages.

    Returns:
        A tuple of `AugmentStep`.

    Raises:
        RecipeError: If the value is not a list of tables, a name is unknown, or the arguments
            do not fit the function.

    Example:

    >>> parse_augment([{"name": "flip"}], "data.augment", "x.toml")
    Traceback (most recent call last):
    ...
    toolkit.errors.RecipeError: x.toml: `data.augment[0]` names an unknown augmentation 'flip'. \
Valid names: random_shift, random_scale, gaussian_noise, random_flip, random_crop, \
random_brightness. Did you mean 'random_flip'?
    """
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise RecipeError(
            f"{source}: `{key}` must be a list of tables such as {_EXAMPLE}. Received: "
            f"{value!r}. Write one {{name = ..., argument = value}} table per augmentation."
        )
    return tuple(_parse_entry(entry, f"{key}[{i}]", source) for i, entry in enumerate(value))


def _parse_entry(entry: dict, where: str, source: str) -> AugmentStep:
    import difflib

    name = entry.get("name")
    if not isinstance(name, str):
        raise RecipeError(
            f"{source}: `{where}` needs a `name` string, e.g. {_EXAMPLE}. Received: {entry!r}."
        )
    if name not in _NAMES:
        close = difflib.get_close_matches(name, _NAMES, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise RecipeError(
            f"{source}: `{where}` names an unknown augmentation {name!r}. Valid names: "
            f"{', '.join(_NAMES)}.{hint}"
        )
    kwargs = {k: v for k, v in entry.items() if k != "name"}
    function = _function(name)
    parameters = list(inspect.signature(function).parameters)
    for argument in kwargs:
        if argument not in parameters:
            close = difflib.get_close_matches(argument, parameters, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise RecipeError(
                f"{source}: `{where}` ({name}): unknown argument {argument!r}. Its arguments are "
                f"{', '.join(parameters)} (see toolkit.data.augment.{name}).{hint}"
            )
    try:
        inspect.signature(function).bind(**kwargs)
    except TypeError as error:
        raise RecipeError(
            f"{source}: `{where}` ({name}): {error}. Its arguments are "
            f"{', '.join(parameters)} (see toolkit.data.augment.{name})."
        ) from None
    try:
        function(**kwargs)
    except (ToolkitError, TypeError, ValueError) as error:
        raise RecipeError(f"{source}: `{where}` ({name}): {error}") from None
    return AugmentStep(name=name, arguments=tuple(sorted(kwargs.items())))


def build_augment(steps: tuple) -> Optional[Callable]:
    """Returns the composed augmentation of `steps`, or `None` when there is none.

    Args:
        steps: `AugmentStep`s, as in `DataConfig.augment`.

    Returns:
        `fn(batch, seed) -> batch` for `toolkit.data.endless`, or `None` for no steps.

    Example:

    >>> build_augment(()) is None
    True
    """
    if not steps:
        return None
    from toolkit.data.augment import compose

    return compose(*(_function(step.name)(**step.kwargs) for step in steps))
