"""`DataFinding`: one problem found in data, and the names findings give to arrays.

The data checks (`toolkit.data.check`, `toolkit.data.value_check`, `toolkit.data.label_check`)
all report `DataFinding`s, name the arrays at fault the way a user wrote them (`x`, `y`,
`sample_weight`, `x['age']`, `x[1]`) and raise the first error the same way, so a fault has one
message wherever it is found.

Example:

>>> import numpy as np
>>> [name for name, _ in _named_leaves(({"age": np.zeros(3)}, np.zeros(3)))]
["x['age']", 'y']
>>> _raise_first([DataFinding("empty", "x", "`x` holds no examples.", "error")])
Traceback (most recent call last):
...
toolkit.errors.DataError: `x` holds no examples.
"""

import dataclasses
from typing import Any, List, Optional

from toolkit.errors import DataError

__all__ = ["DataFinding"]

_TUPLE_NAMES = ("x", "y", "sample_weight")
_MAX_LISTED = 5


@dataclasses.dataclass(frozen=True)
class DataFinding:
    """One problem found by `check`.

    Args:
        code: Stable identifier of the check, e.g. `"non-finite"`.
        feature: The array or feature concerned (`"y"`, `"x[:, 3]"`), or `None`.
        message: What was found and how to fix it, in one line.
        severity: `"error"` (training would be meaningless) or `"warning"`.

    Example:

    >>> print(DataFinding("empty", "x", "`x` holds no examples.", "error"))
    error empty [x]: `x` holds no examples.
    """

    code: str
    feature: Optional[str]
    message: str
    severity: str

    def __str__(self) -> str:
        where = f" [{self.feature}]" if self.feature is not None else ""
        return f"{self.severity} {self.code}{where}: {self.message}"


def _raise_first(findings: List[DataFinding]) -> None:
    errors = [finding for finding in findings if finding.severity == "error"]
    if errors:
        more = f" ({len(errors) - 1} more errors: run `check` to list them)"
        raise DataError(errors[0].message + (more if len(errors) > 1 else ""))


def _listed(items: list) -> str:
    shown = ", ".join(str(item) for item in items[:_MAX_LISTED])
    return shown + (f", ... {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def _lists_to_tuples(data: Any) -> Any:
    """Reads lists as tuples, the way sources nest data (tf.data would stack a list)."""
    if isinstance(data, (list, tuple)):
        return tuple(_lists_to_tuples(item) for item in data)
    if isinstance(data, dict):
        return {key: _lists_to_tuples(value) for key, value in data.items()}
    return data


def _named_leaves(data: Any) -> list:
    """`(name, leaf)` of every array, named as a user would: `x`, `y`, `x['age']`, `x[1]`."""
    if isinstance(data, tuple):
        return [leaf for part, name in zip(data, _TUPLE_NAMES) for leaf in _paths(part, name)]
    return _paths(data, "x")


def _paths(item: Any, prefix: str) -> list:
    if isinstance(item, dict):
        # tf.nest flattens dicts in sorted key order.
        return [leaf for key in sorted(item) for leaf in _paths(item[key], f"{prefix}[{key!r}]")]
    if isinstance(item, (list, tuple)):
        return [leaf for i, sub in enumerate(item) for leaf in _paths(sub, f"{prefix}[{i}]")]
    return [(prefix, item)]
