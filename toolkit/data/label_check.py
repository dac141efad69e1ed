"""`check_labels`: class labels against a head of `num_classes` outputs.

A label a head cannot index crashes the loss (or, on GPU, silently corrupts it), so labels are
checked against the head's width: errors are `non-finite` (a NaN/Inf label indexes no class),
`label-range` (a label outside `[0, num_classes)`, or `y` neither one class index nor one one-hot
row per example) and `label-not-integer`; warnings are `missing-class` and `class-imbalance`.
`toolkit.data.check` reports class labels through it, and a recipe runs it on every head whatever
its `data.check` says, naming `model.num_outputs` in the fix.

Example:

>>> import numpy as np
>>> [f.code for f in check_labels(np.array([0, 1, 1, 0]), 3)]
['missing-class']
>>> findings = check_labels(np.array([0, 1, 2, 9]), 4, width_name="`model.num_outputs`")
>>> print(findings[0].message)  # doctest: +ELLIPSIS
`y`: label 9 is out of range for a head of 4 outputs ... or set `model.num_outputs` to at least 10.
"""

from typing import Any, List

import numpy as np

from toolkit.data.finding import DataFinding, _listed
from toolkit.data.value_check import _is_real, _non_finite

__all__ = ["check_labels"]


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


def _label(value: Any) -> Any:
    """A label as the user wrote it: `9`, not `9.0` or `np.int64(9)`."""
    value = value.item()
    return int(value) if float(value).is_integer() else value
