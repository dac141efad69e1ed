"""Introspection of the recipe schema: every key with its type, default and help.

The `toolkit train --help` key list and the schema's own tests read the recipe language from here,
so they can never drift from `toolkit.recipe.schema`.

Example:

>>> from toolkit.recipe.keys import iter_keys
>>> next(iter_keys()).key
'data.name'
"""

import dataclasses
from typing import Any, Iterator, NamedTuple

from toolkit.recipe.schema import TABLES

__all__ = ["KeyInfo", "iter_keys"]


class KeyInfo(NamedTuple):
    """One recipe key as the schema declares it (see `iter_keys`)."""

    key: str
    type: Any
    default: Any
    help: str
    choices: tuple
    minimum: float | None


def iter_keys() -> Iterator[KeyInfo]:
    """Yields every recipe key, as `"table.key"`, with its type, default and help.

    Returns:
        An iterator of `KeyInfo`, table by table in `TABLES` order.

    Example:

    >>> [info.key for info in iter_keys()][:3]
    ['data.name', 'data.batch_size', 'data.batch_growth_steps']
    """
    for table, cls in TABLES.items():
        for field in dataclasses.fields(cls):
            yield KeyInfo(
                key=f"{table}.{field.name}",
                type=field.type,
                default=field.default,
                help=field.metadata["help"],
                choices=field.metadata["choices"],
                minimum=field.metadata["minimum"],
            )
