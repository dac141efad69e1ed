"""`data.check`: `toolkit.data.check` on a recipe's data before training starts.

`check_recipe_data(inputs, policy)` runs right after the data is loaded, before the model is built
(and adapted on it). It checks every head's training data (the arrays, or the sample read from a
random-access or shard source) and test split. Errors make training meaningless (NaN/Inf, empty
data, negative weights): with `data.check = "error"` (the default) the first one stops the run as
a `DataError`; with `"warn"` errors are warned about like the rest. Warnings (constant features,
features calling for `InputScaling`, class imbalance, missing classes) go to `warnings.warn` and
to `report.md`. `"off"` skips the check.

Class labels outside the head are not reported here: building the model checks them against the
head's actual width (`model.num_outputs` may differ from the dataset's class count) whatever
`data.check` says, since they would crash the loss, and its message names the recipe key to fix.

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

__all__ = ["check_recipe_data"]

_LABEL_ERRORS = ("label-range", "label-not-integer")


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
        each also given to `warnings.warn`; empty when all is well or with `"off"`.

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
                if finding.code in _LABEL_ERRORS:
                    continue  # checked against the head when the model is built
                if finding.code == "feature-scale" and input_scaling == "tanh":
                    continue  # the model's InputScaling layer is the fix the finding asks for
                if finding.severity == "error" and policy == "error":
                    raise DataError(
                        f"Data check, {where}, {split} split: {finding.message} (To train anyway, "
                        f'set data.check = "warn".)'
                    )
                # The test split repeats most warnings of the train split: report each once.
                if (head, finding.code) in seen:
                    continue
                seen.add((head, finding.code))
                lines.append(f"{where}, {split} split: {finding}")
    for line in lines:
        warnings.warn(line, stacklevel=2)
    return lines
