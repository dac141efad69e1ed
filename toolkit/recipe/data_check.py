"""`data.check`: `toolkit.data.check` on a recipe's data, once, under the recipe's policy.

A recipe's data is value-checked in one place. `build_inputs` builds the training sources with
value checks off (`ArraySource(..., check="off")`), so neither they nor `toolkit.data.endless`
report a fault a second time; then `check_recipe_data(inputs, policy)` runs right after the data
is loaded, before the model is built (and adapted on it). It checks every head's training data
(the arrays, or the sample read from a random-access or shard source) and test split:

- `data.check = "error"` (the default): the first error (NaN/Inf, empty data, negative weights)
  stops the run as a one-line `DataError` naming the dataset, the split, the array, the row and
  the fix.
- `"warn"`: every finding, errors included, is given once to `warnings.warn` and to `report.md`;
  the data reaches training as it is (NaN rows included).
- `"off"`: nothing is checked.

Warnings (constant features, features calling for `InputScaling`, class imbalance, missing
classes) are warned about and listed in `report.md` under `"error"` and `"warn"`.

Class labels are checked against the head instead, by `check_head_labels` when the model is built:
the head's width (`model.num_outputs`) may differ from the dataset's class count, and labels
outside it (NaN included) would crash the loss, so they stop the run whatever `data.check` says,
with one message that names the recipe key to fix. Regression targets are values like any other:
their NaN/Inf follow `data.check`.

Example:

>>> from toolkit.recipe import load_recipe
>>> from toolkit.recipe.inputs import build_inputs
>>> inputs = build_inputs(load_recipe("digits_mlp"), run_dir=None)
>>> import warnings
>>> with warnings.catch_warnings():
...     warnings.simplefilter("ignore")
...     lines = check_recipe_data(inputs, "error")
>>> lines[0].startswith("digits, train split: warning constant-feature")
True
"""

import warnings
from typing import Any, List

from toolkit.errors import DataError

__all__ = ["check_head_labels", "check_recipe_data"]

_DERIVED_FIX = " (`model.num_outputs` = 0 derives it from the dataset.)"
_NOT_INTEGER_FIX = " (For a continuous target, the data function returns task='regression'.)"


def check_recipe_data(inputs: Any, policy: str, input_scaling: str = "auto") -> List[str]:
    """Runs `toolkit.data.check` on every head's train and test data under `policy`.

    Args:
        inputs: The recipe's `toolkit.recipe.inputs.RecipeInputs`.
        policy: `"error"`, `"warn"` or `"off"` (the recipe's `data.check`).
        input_scaling: The recipe's `model.input_scaling`; with `"tanh"` the model already
            scales wide features (S2.8), so `feature-scale` findings are dropped. Defaults to
            `"auto"`.

    Returns:
        One line per finding that did not stop the run, `"<dataset>, <split> split: <finding>"`,
        each also given once to `warnings.warn`; empty when all is well or with `"off"`.

    Raises:
        DataError: With `"error"`, for the first error found.

    Example:

    >>> check_recipe_data(None, "off")
    []
    """
    if policy == "off":
        return []
    from toolkit.data import check

    lines, seen = [], set()
    for head, data in inputs.heads.items():
        where = f"{data.name}" + (f" (head {head!r})" if head else "")
        num_classes = data.num_classes if data.task == "classification" else None
        for split in ("train", "test"):
            arrays = (getattr(data, f"x_{split}"), getattr(data, f"y_{split}"))
            for finding in check(arrays, num_classes=num_classes):
                if finding.feature == "y" and finding.severity == "error" and num_classes:
                    continue  # class labels: checked against the head, by check_head_labels
                if finding.code == "feature-scale" and input_scaling == "tanh":
                    continue  # the model's InputScaling layer is the fix the finding asks for
                if finding.severity == "error" and policy == "error":
                    raise DataError(
                        f"Data check, {where}, {split} split: {finding.message} (To train anyway, "
                        f'set data.check = "warn".)'
                    )
                # The test split repeats most warnings of the train split: report each once.
                # Errors are distinct faults (their own array, split and rows): each is kept.
                key = (head, finding.code)
                if finding.severity == "error":
                    key += (split, finding.feature)
                if key in seen:
                    continue
                seen.add(key)
                lines.append(f"{where}, {split} split: {finding}")
    for line in lines:
        warnings.warn(line, stacklevel=2)
    return lines


def check_head_labels(data: Any, num_outputs: int, head: str = "") -> None:
    """Raises a `DataError` if `data`'s class labels do not fit a head of `num_outputs`.

    It runs whatever `data.check` says: labels outside the head, NaN included, crash the loss
    (or, on GPU, silently corrupt it). The message is `toolkit.data.check.check_labels`'s, with
    the dataset and split in front and the recipe key that sets the head's width as the fix.

    Args:
        data: A classification `toolkit.data.BuiltinData` (its `y_train` and `y_test`).
        num_outputs: The width of the head the labels index.
        head: The head's name for a `[data.sources.<head>]` table; `""` for a one-head recipe
            (whose width is `model.num_outputs`). Defaults to `""`.

    Raises:
        DataError: For labels out of range, NaN/Inf, not integers, or of the wrong shape.

    Example:

    >>> from toolkit.data import load
    >>> check_head_labels(load("digits"), 4)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    toolkit.errors.DataError: Dataset 'digits', train split: `y`: label 9 is out of range ...
    """
    from toolkit.data.check import check_labels

    # What sets the head's width: the recipe key the message tells the user to change.
    if head:
        width_name = f"the `num_classes` of the [data.sources.{head}] dataset"
    else:
        width_name = "`model.num_outputs`"
    fixes = {"label-not-integer": _NOT_INTEGER_FIX, "label-range": "" if head else _DERIVED_FIX}
    for split in ("train", "test"):
        y = getattr(data, f"y_{split}")
        for finding in check_labels(y, num_outputs, width_name=width_name):
            if finding.severity == "error":
                raise DataError(f"Dataset {data.name!r}, {split} split: {finding.message}"
                                f"{fixes.get(finding.code, '')}")
