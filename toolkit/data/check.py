"""Checks data before training: what makes training meaningless, and what calls for care.

`check(data)` looks at arrays or a source (at most `max_examples` examples of it) and returns a
list of `DataFinding`s:

- errors (training on this is meaningless): `empty` (no examples), `non-finite` (NaN/Inf in any
  array), `label-range` (class labels outside `[0, num_classes)`), `label-not-integer`,
  `negative-weight` (sample weights below 0);
- warnings: `constant-feature` (a feature with one value, it carries nothing), `feature-scale`
  (values above `scale_threshold` in magnitude or spread, S2.8: scale with
  `toolkit.layers.InputScaling`), `class-imbalance` and `missing-class`.

With `raise_on_errors=True` the first error is raised as a `toolkit.errors.DataError`.

Example:

>>> import numpy as np
>>> x = np.stack([np.linspace(0, 1, 50), np.full(50, 3.0), np.linspace(0, 5e4, 50)], axis=1)
>>> for finding in check((x, np.arange(50) % 2), num_classes=2):
...     print(finding.severity, finding.code, finding.feature)
warning constant-feature x[:, 1]
warning feature-scale x[:, 2]
"""

import dataclasses
from typing import Any, List, Optional

import numpy as np
import tensorflow as tf

from toolkit.data.sources import _lists_to_tuples
from toolkit.errors import DataError

__all__ = ["DataFinding", "check"]

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
        max_examples: Check at most this many examples (a fixed random sample of larger data).
            Defaults to `100_000`.
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
    toolkit.errors.DataError: `y` holds labels outside [0, 3): 1 of 4 examples, e.g. 5 ...
    """
    arrays, sampled = _read(data, max_examples)
    findings = _check_arrays(arrays, sampled, num_classes, scale_threshold, imbalance_ratio)
    findings.sort(key=lambda finding: finding.severity != "error")
    errors = [finding for finding in findings if finding.severity == "error"]
    if raise_on_errors and errors:
        more = f" ({len(errors) - 1} more errors: run `check` to list them)"
        more = more if len(errors) > 1 else ""
        raise DataError(errors[0].message + more)
    return findings


def _read(data: Any, max_examples: int):
    """Returns (nested NumPy arrays, whether they are a sample) of at most `max_examples` rows."""
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
                return tf.nest.map_structure(empty, data.element_spec), False
            batch = data.gather(tf.constant(indices, tf.int64))
            return tf.nest.map_structure(np.asarray, batch), indices.size < size
    data = _lists_to_tuples(data)
    arrays = tf.nest.map_structure(np.asarray, data)
    rows = len(tf.nest.flatten(arrays)[0]) if tf.nest.flatten(arrays)[0].ndim else 0
    indices = _sample(rows, max_examples)
    if indices.size == rows:
        return arrays, False
    return tf.nest.map_structure(lambda a: a[indices], arrays), True


def _sample(rows: int, max_examples: int) -> np.ndarray:
    if rows <= max_examples:
        return np.arange(rows)
    # A fixed sample: the same data always gives the same findings.
    return np.sort(np.random.default_rng(0).choice(rows, size=max_examples, replace=False))


def _check_arrays(arrays, sampled, num_classes, scale_threshold, imbalance_ratio):
    parts = arrays if isinstance(arrays, tuple) else (arrays,)
    named = {name: part for name, part in zip(_TUPLE_NAMES, parts)}
    where = " (in a sample)" if sampled else ""
    findings = []
    leaves = [leaf for part_name, part in named.items() for leaf in _named_leaves(part, part_name)]
    for name, leaf in leaves:
        if leaf.ndim == 0 or len(leaf) == 0:
            findings.append(DataFinding("empty", name, (
                f"`{name}` holds no examples (shape {leaf.shape}); expected at least one row. "
                f"Check the loading or filtering step that produced it."), "error"))
            return findings
    for name, leaf in leaves:
        findings += _check_finite(name, leaf, where)
    if "y" in named and num_classes is not None:
        findings += _check_labels(named["y"], num_classes, imbalance_ratio, where)
    if "sample_weight" in named:
        for name, leaf in _named_leaves(named["sample_weight"], "sample_weight"):
            if np.issubdtype(leaf.dtype, np.number) and np.any(leaf < 0):
                findings.append(DataFinding("negative-weight", name, (
                    f"`{name}` holds {int(np.sum(leaf < 0))} negative weights{where} (min "
                    f"{leaf.min():g}); expected weights >= 0. Clip or fix them."), "error"))
    for name, leaf in _named_leaves(named["x"], "x"):
        if np.issubdtype(leaf.dtype, np.integer) or np.issubdtype(leaf.dtype, np.floating):
            findings += _check_features(name, leaf, scale_threshold, where)
    return findings


def _check_finite(name, leaf, where):
    if not np.issubdtype(leaf.dtype, np.inexact):
        return []
    bad = ~np.isfinite(leaf.reshape(len(leaf), -1)).all(axis=1)
    if not bad.any():
        return []
    row = int(np.flatnonzero(bad)[0])
    return [DataFinding("non-finite", name, (
        f"`{name}` holds NaN/Inf in {int(bad.sum())} of {len(leaf)} examples{where}, first at "
        f"row {row}; expected finite numbers. Drop or impute those rows before training."),
        "error")]


def _check_labels(y, num_classes, imbalance_ratio, where):
    if not isinstance(y, np.ndarray):
        return []  # A dict of heads: each head has its own number of classes.
    labels = y.reshape(len(y), -1)
    if labels.shape[1] == num_classes and num_classes > 1 and np.isin(labels, (0, 1)).all():
        labels = labels.argmax(axis=1)  # one-hot labels
    elif labels.shape[1] != 1:
        return [DataFinding("label-range", "y", (
            f"`y` has shape {y.shape}; expected one class index per example (shape "
            f"({len(y)},)) or one-hot rows of {num_classes}. Reshape `y`, or pass "
            f"num_classes=None for a regression target."), "error")]
    labels = labels.reshape(-1)
    if np.issubdtype(labels.dtype, np.inexact):
        finite = labels[np.isfinite(labels)]
        if np.any(finite != np.round(finite)):
            value = finite[finite != np.round(finite)][0]
            return [DataFinding("label-not-integer", "y", (
                f"`y` holds non-integer class labels{where}, e.g. {value!r}; expected integers in "
                f"[0, {num_classes}). Use integer class indices, or num_classes=None for "
                f"regression."), "error")]
        labels = finite
    outside = (labels < 0) | (labels >= num_classes)
    if outside.any():
        return [DataFinding("label-range", "y", (
            f"`y` holds labels outside [0, {num_classes}): {int(outside.sum())} of {len(labels)} "
            f"examples{where}, e.g. {labels[outside][0].item()!r} (labels span "
            f"[{labels.min().item()!r}, {labels.max().item()!r}]). Remap the labels to "
            f"0..{num_classes - 1} or set num_classes to the head's size."), "error")]
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


def _check_features(name, leaf, scale_threshold, where):
    if len(leaf) < 2:
        return []
    flat = leaf.reshape(len(leaf), -1).astype(np.float64)
    finite = np.where(np.isfinite(flat), flat, np.nan)
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


def _named_leaves(part: Any, prefix: str):
    if isinstance(part, dict):
        return [leaf for key in sorted(part)
                for leaf in _named_leaves(part[key], f"{prefix}[{key!r}]")]
    if isinstance(part, (list, tuple)):
        return [leaf for i, sub in enumerate(part) for leaf in _named_leaves(sub, f"{prefix}[{i}]")]
    return [(prefix, np.asarray(part))]
