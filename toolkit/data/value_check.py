"""`check_values`: NaN/Inf and negative sample weights in every row, under a check policy.

Sources validate *structure* when they are built; the *values* of in-memory arrays are checked
here, under a policy: `"error"` raises the first fault as a one-line `toolkit.errors.DataError`
naming the array, the row and the fix, `"warn"` warns once per fault and lets the data through,
`"off"` checks nothing. `ArraySource(data, check=...)` and `as_source(data, check=...)` call it
(`"error"` by default, so `toolkit.data.endless(arrays, ...)` and `toolkit.fit(model, (x, y),
...)` refuse NaN); a recipe's `data.check` chooses the policy. `toolkit.data.check` reports the
same faults (`non-finite`, `negative-weight`) with the same messages.

Example:

>>> import numpy as np
>>> x = np.zeros((10, 3))
>>> x[7, 0] = np.nan
>>> check_values(x, "error")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
toolkit.errors.DataError: `x` holds nan at row 7 (flat column 0); expected finite numbers. ...
"""

import warnings
from typing import Any, List, Optional

import numpy as np
import tensorflow as tf

from toolkit.data.finding import DataFinding, _lists_to_tuples, _named_leaves, _raise_first

__all__ = ["check_values"]

POLICIES = ("error", "warn", "off")


def check_values(data: Any, policy: str = "error") -> List[DataFinding]:
    """Applies a check policy to the value errors of every row of in-memory `data`.

    The value errors are the ones `check` reports as `non-finite` (NaN/Inf in a float array) and
    `negative-weight`, with the same messages; every row is read (no sample). Sources call it
    when they are built (`ArraySource(data, check=...)`); labels need the head's width and are
    checked by `check_labels`.

    Args:
        data: Arrays: `x`, `(x, y)`, `(x, y, sample_weight)`, where `x` and `y` may be dicts or
            lists of arrays.
        policy: `"error"` raises the first error as a one-line `DataError` naming the array, the
            row and the fix; `"warn"` gives each error to `warnings.warn` (one warning per array
            at fault) and lets the data through; `"off"` checks nothing. Defaults to `"error"`.

    Returns:
        The errors found (with `"warn"`); empty when all is well or with `"off"`.

    Raises:
        DataError: With `"error"`, when an error is found.
        ValueError: If `policy` is not `"error"`, `"warn"` or `"off"`.

    Example:

    >>> import numpy as np, warnings
    >>> x, y = np.array([[0.0, 1.0], [2.0, np.inf]]), np.array([0, 1])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     findings = check_values((x, y), "warn")
    >>> [f.code for f in findings], len(caught)
    (['non-finite'], 1)
    >>> check_values((x, y), "off")
    []
    """
    if policy not in POLICIES:
        raise ValueError(
            f"A check policy must be one of {POLICIES!r}. Received: {policy!r}. Use \"error\" "
            f"to stop on NaN/Inf, \"warn\" to train anyway, \"off\" to skip the check."
        )
    if policy == "off":
        return []
    arrays = tf.nest.map_structure(np.asarray, _lists_to_tuples(data))
    findings = _value_errors(_named_leaves(arrays), None, "")
    if policy == "error":
        _raise_first(findings)
    for finding in findings:
        # Point past ArraySource at the code that passed the data.
        warnings.warn(finding.message, stacklevel=3)
    return findings


def _value_errors(leaves: list, rows: Optional[np.ndarray], where: str) -> List[DataFinding]:
    """NaN/Inf in any float array, negative sample weights: what `check_values` enforces."""
    findings = []
    for name, leaf in leaves:
        findings += _non_finite(name, leaf, rows, where)
        if name.startswith("sample_weight"):
            findings += _negative_weights(name, leaf, rows, where)
    return findings


def _non_finite(name, leaf, rows, where):
    if not np.issubdtype(leaf.dtype, np.inexact) or leaf.size == 0:
        return []
    flat = leaf.reshape(len(leaf), -1)
    finite = np.isfinite(flat)
    bad = np.flatnonzero(~finite.all(axis=1))
    if bad.size == 0:
        return []
    first = int(bad[0])
    column = int(np.flatnonzero(~finite[first])[0])
    row = int(rows[first]) if rows is not None else first
    at = f"row {row}" if flat.shape[1] == 1 else f"row {row} (flat column {column})"
    others = f" and {bad.size - 1} other rows" if bad.size > 1 else ""
    return [DataFinding("non-finite", name, (
        f"`{name}` holds {flat[first, column]} at {at}{others}{where}; expected finite numbers. "
        f"Drop or impute those rows before training, e.g. `keep = np.isfinite({name})"
        f".reshape(len({name}), -1).all(axis=1)`."), "error")]


def _negative_weights(name, leaf, rows, where):
    if not _is_real(leaf) or leaf.size == 0:
        return []
    negative = (leaf.reshape(len(leaf), -1) < 0).any(axis=1)
    if not negative.any():
        return []
    first = int(np.flatnonzero(negative)[0])
    row = int(rows[first]) if rows is not None else first
    return [DataFinding("negative-weight", name, (
        f"`{name}` holds {int(negative.sum())} negative weights{where}, e.g. "
        f"{leaf.reshape(len(leaf), -1)[first].min():g} at row {row}; expected weights >= 0. "
        f"Clip or fix them, e.g. `np.maximum({name}, 0)`."), "error")]


def _is_real(array: np.ndarray) -> bool:
    """Integer or float (not bool, complex, string): values that compare with numbers."""
    return np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
