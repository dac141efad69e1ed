"""Checks data values: the one place where NaN/Inf, labels and weights are validated.

Sources validate *structure* when they are built (rows, dtypes, shapes: what makes a source
usable at all); every check of *values* lives here, so each fault has one message wherever it is
found:

- `check_values(data, policy)` finds the value errors of every row of in-memory arrays (NaN/Inf,
  negative sample weights) and applies a policy: `"error"` raises the first as a one-line
  `toolkit.errors.DataError`, `"warn"` warns once per fault and lets the data through, `"off"`
  checks nothing. `ArraySource(data, check=...)` and `as_source(data, check=...)` call it
  (`"error"` by default, so `toolkit.data.endless(arrays, ...)` and `toolkit.fit(model, (x, y),
  ...)` refuse NaN); a recipe's `data.check` chooses the policy.
- `check_labels(y, num_classes)` checks class labels against a head of `num_classes` outputs.
- `check(data)` returns every finding of arrays or a source (feature statistics on at most
  `max_examples` examples of it): errors (training on this is meaningless): `empty` (no
  examples), `non-finite` (NaN/Inf in any array), `label-range` (class labels outside
  `[0, num_classes)`, or `y` of the wrong shape), `label-not-integer`, `negative-weight` (sample
  weights below 0); warnings: `constant-feature` (a feature with one value, it carries nothing),
  `feature-scale` (values above `scale_threshold` in magnitude or spread, S2.8: scale with
  `toolkit.layers.InputScaling`), `class-imbalance` and `missing-class`. With
  `raise_on_errors=True` the first error is raised as a `DataError`.

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

import dataclasses
import warnings
from typing import Any, List, Optional

import numpy as np
import tensorflow as tf

from toolkit.errors import DataError

__all__ = ["DataFinding", "check", "check_labels", "check_values"]

POLICIES = ("error", "warn", "off")
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


def check_labels(
    y: Any, num_classes: int, *, imbalance_ratio: float = 10.0, width_name: str = "num_classes"
) -> List[DataFinding]:
    """Returns the findings of class labels `y` for a head of `num_classes` outputs.

    Errors: `non-finite` (a NaN/Inf label indexes no class), `label-range` (a label outside
    `[0, num_classes)`, or `y` neither one class index nor one one-hot row per example) and
    `label-not-integer`; warnings: `missing-class`, `class-imbalance`. `check` reports class
    labels through it, so a NaN label is one finding, not two.

    Args:
        y: One class index per example (or one-hot rows of `num_classes`).
        num_classes: The head's number of outputs.
        imbalance_ratio: Warn when the most frequent class outnumbers the rarest by more than
            this. Defaults to `10.0`.
        width_name: What sets the head's width, for the fix of a label above it (a recipe
            passes its key). Defaults to `"num_classes"`.

    Returns:
        A list of `DataFinding`; empty when the labels fit the head and are balanced.

    Example:

    >>> import numpy as np
    >>> print(check_labels(np.array([0, 1, 2, 9]), 4)[0].message)  # doctest: +ELLIPSIS
    `y`: label 9 is out of range for a head of 4 outputs (labels must lie in [0, 3]; 1 of 4 ...
    """
    return _label_findings(np.asarray(y), num_classes, imbalance_ratio, "", width_name=width_name)


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


def _raise_first(findings: List[DataFinding]) -> None:
    errors = [finding for finding in findings if finding.severity == "error"]
    if errors:
        more = f" ({len(errors) - 1} more errors: run `check` to list them)"
        raise DataError(errors[0].message + (more if len(errors) > 1 else ""))


def _empty(leaves: list) -> List[DataFinding]:
    for name, leaf in leaves:
        if leaf.ndim == 0 or len(leaf) == 0:
            return [DataFinding("empty", name, (
                f"`{name}` holds no examples (shape {leaf.shape}); expected at least one row. "
                f"Check the loading or filtering step that produced it."), "error")]
    return []


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


def _label_findings(y, num_classes, imbalance_ratio, where, width_name="num_classes", rows=None):
    if not isinstance(y, np.ndarray) or y.ndim == 0 or len(y) == 0:
        return []  # a dict of heads (each with its own classes), or empty data
    non_finite = _non_finite("y", y, rows, where)
    if non_finite:
        return non_finite  # a NaN label indexes no class either
    if not _is_real(y):
        return [DataFinding("label-not-integer", "y", (
            f"`y` holds {y.dtype} values; expected integer class indices in [0, {num_classes}). "
            f"Map them to indices, e.g. `classes, y = np.unique(y, return_inverse=True)`, or "
            f"treat the target as regression (num_classes=None)."), "error")]
    labels = y.reshape(len(y), -1)
    if labels.shape[1] == num_classes and num_classes > 1 and np.isin(labels, (0, 1)).all():
        labels = labels.argmax(axis=1)  # one-hot labels
    elif labels.shape[1] != 1:
        return [DataFinding("label-range", "y", (
            f"`y` has shape {y.shape}; expected one class index per example (shape "
            f"({len(y)},)) or one-hot rows of {num_classes}. Reshape `y`, or treat the target "
            f"as regression (num_classes=None)."), "error")]
    labels = labels.reshape(-1)
    if np.issubdtype(labels.dtype, np.floating):
        fractional = labels != np.round(labels)
        if fractional.any():
            return [DataFinding("label-not-integer", "y", (
                f"`y` holds non-integer class labels{where}, e.g. {labels[fractional][0]!r}; "
                f"expected integers in [0, {num_classes}). Use integer class indices, or treat "
                f"the target as regression (num_classes=None)."), "error")]
    if labels.size == 0:
        return []
    outside = (labels < 0) | (labels >= num_classes)
    if outside.any():
        low, high = labels.min(), labels.max()
        widen = f", or set {width_name} to at least {_label(high) + 1}"
        widen = widen if high >= num_classes else ""
        return [DataFinding("label-range", "y", (
            f"`y`: label {_label(low if low < 0 else high)!r} is out of range for a head of "
            f"{num_classes} outputs (labels must lie in [0, {num_classes - 1}]; "
            f"{int(outside.sum())} of {len(labels)} examples{where} do not, labels span "
            f"[{_label(low)!r}, {_label(high)!r}]). Remap the labels to 0..{num_classes - 1}"
            f"{widen}."), "error")]
    counts = np.bincount(labels.astype(np.int64), minlength=num_classes)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        return [DataFinding("missing-class", "y", (
            f"`y` has no example of {missing.size} of {num_classes} classes{where} "
            f"({_listed(missing.tolist())}); the head cannot learn them. Check the labels or "
            f"lower num_classes."), "warning")]
    ratio = counts.max() / counts.min()
    if ratio <= imbalance_ratio:
        return []
    return [DataFinding("class-imbalance", "y", (
        f"Class {int(counts.argmax())} has {ratio:.1f}x more examples than class "
        f"{int(counts.argmin())} ({int(counts.max())} vs {int(counts.min())}){where}; above "
        f"the {imbalance_ratio:g}x threshold. Consider sample weights (inverse class "
        f"frequency) or resampling, and per-class metrics."), "warning")]


def _is_real(array: np.ndarray) -> bool:
    """Integer or float (not bool, complex, string): values that compare with numbers."""
    return np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)


def _label(value: Any) -> Any:
    """A label as the user wrote it: `9`, not `9.0` or `np.int64(9)`."""
    value = value.item()
    return int(value) if float(value).is_integer() else value


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
