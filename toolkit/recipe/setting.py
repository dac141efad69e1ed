"""`setting()`: how the recipe schema declares one key (default, help, choices, lower bound).

Every field of every recipe table (`toolkit.recipe.schema`, `toolkit.recipe.tune_table`) is
declared with it; the loader and `toolkit train --help` read the metadata it records.
"""

import dataclasses
from typing import Any

__all__ = ["setting"]


def setting(default: Any, help: str, *, choices: tuple = (), minimum: float | None = None):
    """Declares one recipe key: its default, one-line help, allowed choices and lower bound.

    Args:
        default: The value used when a recipe leaves the key out (immutable: tuples for lists).
        help: One line saying what the key does, shown by `toolkit train --help`.
        choices: Allowed values of an enum-like string key; empty for any value. Defaults to `()`.
        minimum: Smallest allowed value of a numeric key (inclusive). Defaults to `None`.

    Returns:
        A `dataclasses.field` carrying the metadata.

    Example:

    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class Demo:
    ...     units: int = setting(8, "Width of the layer.", minimum=1)
    >>> dataclasses.fields(Demo)[0].metadata["help"]
    'Width of the layer.'
    """
    metadata = {"help": help, "choices": tuple(choices), "minimum": minimum}
    return dataclasses.field(default=default, metadata=metadata)
