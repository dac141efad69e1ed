"""Checks data before training: `check(data)` returns every problem found, as `DataFinding`s.

Sources validate *structure* when they are built (rows, dtypes, shapes: what makes a source
usable at all); *values* are checked by three functions that share their findings and messages,
so each fault has one message wherever it is found:

- `check_values(data, policy)` (`toolkit.data.value_check`) finds the value errors of every row of
  in-memory arrays (NaN/Inf, negative sample weights) and applies a policy: `"error"` raises the
  first as a one-line `toolkit.errors.DataError`, `"warn"` warns once per fault and lets the data
  through, `"off"` checks nothing. `ArraySource(data, check=...)` and `as_source(data,
  check=...)` call it; a recipe's `data.check` chooses the policy.
- `check_labels(y, num_classes)` (`toolkit.data.label_check`) checks class labels against a head
  of `num_classes` outputs.
- `check(data)` (this module) returns every finding of arrays or a source (feature statistics on
  at most `max_examples` examples of it): errors (training on this is meaningless): `empty` (no
  examples), `non-finite` (NaN/Inf in any array), `label-range` (class labels outside
  `[0, num_classes)`, or `y` of the wrong shape), `label-not-integer`, `negative-weight` (sample
  weights below 0); warnings: `constant-feature` (a feature with one value, it carries nothing),
  `feature-scale` (values above `scale_threshold` in magnitude or spread, S2.8: scale with
  `toolkit.layers.InputScaling`), `class-imbalance` and `missing-class`. With
  `raise_on_errors=True` the first error is raised as a `DataError`.

`DataFinding`, `check_values` and `check_labels` are importable from here too.

Example:

>>> import numpy as np
>>> x = np.stack([np.linspace(0, 1, 50), np.full(50, 3.0), np.linspace(0, 5e4, 50)], axis=1)
>>> for finding in check((x, np.arange(50) % 2), num_classes=2):
...     print(finding.severity, finding.code, finding.feature)
warning constant-feature x[:, 1]
warning feature-scale x[:, 2]
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

# `DataFinding`, `check_labels`, `check_values`, `POLICIES` and the helpers `toolkit.data.sources`
# imports were defined here before the split: importing them from here keeps working.
from toolkit.data.finding import (
    DataFinding,
    _lists_to_tuples,
    _listed,
    _named_leaves,
    _raise_first,
)
from toolkit.data.label_check import _label_findings, check_labels
from toolkit.data.value_check import POLICIES, _is_real, _value_errors, check_values  # noqa: F401

__all__ = ["DataFinding", "check", "check_labels", "check_values"]


def check(
    data: Any,
    *,
    num_classes: Optional[int] = None,
    max_examples: int = 100_000,
    scale_threshold: float = 1e3,
    imbalance_ratio: float = 10.0,
    raise_on_errors: bool = False,
) -> List[DataFinding]:
    """Returns the problems found in `data`, errors first.

    Args:
        data: Arrays (`x`, `(x, y)`, `(x, y, sample_weight)`, dicts of arrays) or a source
            (`toolkit.data.sources`); a source is read through `gather`.
        num_classes: Number of classes of a classification head: labels must be integers in
            `[0, num_classes)`. `None` skips the label range check (regression). Defaults to `None`.
        max_examples: Compute feature statistics on at most this many examples (a fixed random
            sample of larger data). NaN/Inf, labels and weights of arrays (and of sources with
            `tensors`) are checked on every row; a source read through `gather` only on the
            sample (rows in messages are rows of the whole data). Defaults to `100_000`.
        scale_threshold: A feature whose absolute values or spread exceed this calls for
            `InputScaling` (S2.8). Defaults to `1e3`.
        imbalance_ratio: Warn when the most frequent class outnumbers the rarest by more than
            this. Defaults to `10.0`.
        raise_on_errors: Raise the first error as a `DataError` instead of returning it.
            Defaults to `False`.

    Returns:
        A list of `DataFinding`, errors before warnings; empty when all is well.

    Raises:
        DataError: With `raise_on_errors=True`, when an error is found.

    Example:

    >>> import numpy as np
    >>> [f.code for f in check((np.ones((4, 2)), np.array([0, 1, 2, 5])), num_classes=3)]
    ['label-range', 'constant-feature']
    >>> data = (np.ones((4, 2)), np.array([0, 1, 2, 5]))
    >>> check(data, num_classes=3, raise_on_errors=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    toolkit.errors.DataError: `y`: label 5 is out of range for a head of 3 outputs ...
    """
    everything, sample, rows = _read(data, max_examples)
    # Values are checked on every row that can be read cheaply, statistics on the sample.
    values, value_rows = (everything, None) if everything is not None else (sample, rows)
    where = " (in a sample)" if value_rows is not None else ""
    leaves = _named_leaves(values)
    findings = _empty(leaves)
    if not findings:
        y = values[1] if isinstance(values, tuple) and len(values) > 1 else None
        labels = isinstance(y, np.ndarray) and num_classes is not None
        # Class labels are read by the label check, NaN/Inf included: one finding per fault.
        findings = _value_errors([leaf for leaf in leaves if not (labels and leaf[0] == "y")],
                                 value_rows, where)
        if labels:
            findings += _label_findings(y, num_classes, imbalance_ratio, where, rows=value_rows)
        sampled = " (in a sample)" if rows is not None else ""
        for name, leaf in _named_leaves(sample):
            if name.startswith("x") and _is_real(leaf):
                findings += _check_features(name, leaf, scale_threshold, sampled)
    findings.sort(key=lambda finding: finding.severity != "error")
    if raise_on_errors:
        _raise_first(findings)
    return findings


def _read(data: Any, max_examples: int):
    """Returns (every row or `None`, a sample of at most `max_examples` rows, its rows in `data`).

    Every row is returned for arrays and sources holding `tensors`, `None` for a source read
    through `gather`; the sample's rows are `None` when the sample is the whole data.
    """
    if hasattr(data, "gather") and hasattr(data, "element_spec"):
        tensors = getattr(data, "tensors", None)
        if tensors is not None:
            data = tensors
        else:
            size = data.num_examples
            if size is None and hasattr(data, "size_at"):
                size = int(data.size_at(tf.constant(0, tf.int64)))
            indices = _sample(int(size or 0), max_examples)
            if indices.size == 0:
                empty = lambda s: np.zeros((0,) + tuple(s.shape))  # noqa: E731
                return None, tf.nest.map_structure(empty, data.element_spec), None
            batch = tf.nest.map_structure(np.asarray, data.gather(tf.constant(indices, tf.int64)))
            return None, batch, _rows(indices, size)
    arrays = tf.nest.map_structure(np.asarray, _lists_to_tuples(data))
    first = tf.nest.flatten(arrays)[0]
    size = len(first) if first.ndim else 0
    indices = _sample(size, max_examples)
    rows = _rows(indices, size)
    if rows is None:
        return arrays, arrays, None
    return arrays, tf.nest.map_structure(lambda a: a[indices], arrays), rows


def _sample(rows: int, max_examples: int) -> np.ndarray:
    if rows <= max_examples:
        return np.arange(rows)
    # A fixed sample: the same data always gives the same findings.
    return np.sort(np.random.default_rng(0).choice(rows, size=max_examples, replace=False))


def _rows(indices: np.ndarray, size: int) -> Optional[np.ndarray]:
    return indices if indices.size < size else None


def _empty(leaves: list) -> List[DataFinding]:
    for name, leaf in leaves:
        if leaf.ndim == 0 or len(leaf) == 0:
            return [DataFinding("empty", name, (
                f"`{name}` holds no examples (shape {leaf.shape}); expected at least one row. "
                f"Check the loading or filtering step that produced it."), "error")]
    return []


def _check_features(name, leaf, scale_threshold, where):
    if len(leaf) < 2 or leaf.size == 0:
        return []
    flat = leaf.reshape(len(leaf), -1).astype(np.float64)
    finite = np.where(np.isfinite(flat), flat, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: already an error
        low, high = np.nanmin(finite, axis=0), np.nanmax(finite, axis=0)
    names = [_feature_name(name, leaf.shape[1:], i) for i in range(flat.shape[1])]
    findings = []
    constant = np.flatnonzero(low == high)
    if constant.size:
        findings.append(DataFinding("constant-feature", names[constant[0]], (
            f"{constant.size} of {flat.shape[1]} features of `{name}` are constant{where} "
            f"({_listed([names[i] for i in constant])}, e.g. always {low[constant[0]]:g}); they "
            f"carry no information. Drop them, or ignore this for image borders."), "warning"))
    magnitude = np.maximum(np.abs(low), np.abs(high))
    large = np.flatnonzero((magnitude > scale_threshold) | (high - low > scale_threshold))
    if large.size:
        worst = large[np.argmax(magnitude[large])]
        findings.append(DataFinding("feature-scale", names[worst], (
            f"{large.size} features of `{name}` exceed {scale_threshold:g} in magnitude or "
            f"spread{where}; the widest, `{names[worst]}`, spans [{low[worst]:.4g}, "
            f"{high[worst]:.4g}]. Put `toolkit.layers.InputScaling` (tanh(x/C), S2.8) first "
            f"in the model."), "warning"))
    return findings


def _feature_name(name: str, shape: tuple, flat_index: int) -> str:
    if not shape:
        return name
    index = np.unravel_index(flat_index, shape)
    return f"{name}[:, {', '.join(str(int(i)) for i in index)}]"
