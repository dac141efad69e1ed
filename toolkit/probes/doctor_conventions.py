"""The doctor's step (a): the model's conventions (`toolkit.lint`) and the data (`toolkit.data`).

Lint and data findings keep their own codes and messages, with three exceptions: lint's
`hidden-saturating-activation` becomes `saturating-activation` and `unadapted-input-scaling`
becomes `unscaled-inputs` (the doctor's codes for the same faults), and the findings that do not
by themselves stop a network from learning become `"info"`: lint's `missing-bias`,
`non-variance-scaling-init` (steps b-d measure what an initializer actually does) and
`optimizer-not-adam`, and the data's `constant-feature`, `class-imbalance`, `missing-class` and
`feature-scale` (step b measures what reaches the first layer).

Example:

>>> import keras
>>> inputs = keras.Input((4,))
>>> outputs = keras.layers.Dense(3, activation="softmax", name="out")(inputs)
>>> model = keras.Model(inputs, outputs)
>>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> [(f.code, f.severity) for f in convention_findings(model)]  # doctest: +NORMALIZE_WHITESPACE
[('non-variance-scaling-init', 'info'), ('output-activation', 'warning'),
 ('probabilities-with-from-logits', 'error')]
>>> infer_num_classes(model)
3
"""

from typing import Any, List, Optional

import keras

from toolkit.data.check import check
from toolkit.lint import lint
from toolkit.probes.doctor_findings import CODES, DoctorFinding

__all__ = ["convention_findings", "data_findings", "infer_num_classes"]

_RENAMED = {
    "hidden-saturating-activation": "saturating-activation",
    "unadapted-input-scaling": "unscaled-inputs",
}
_INFO = ("missing-bias", "non-variance-scaling-init", "optimizer-not-adam", "constant-feature",
         "class-imbalance", "missing-class", "feature-scale")
_SPARSE = ("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy")


def convention_findings(model: keras.Model) -> List[DoctorFinding]:
    """`toolkit.lint(model)` as doctor findings (see the module doc).

    Args:
        model: A built Keras model, compiled or not.

    Returns:
        The findings.
    """
    findings = []
    for found in lint(model):
        code = _RENAMED.get(found.code, found.code)
        severity = "info" if code in _INFO else found.severity
        fix = CODES[code][2] if code in CODES else "See the message."
        findings.append(DoctorFinding(code, found.layer, found.message, "toolkit.lint", fix,
                                      severity))
    return findings


def data_findings(sample: Any, num_classes: Optional[int]) -> List[DoctorFinding]:
    """`toolkit.data.check(sample)` as doctor findings (see the module doc).

    Args:
        sample: `(x, y[, sample_weight])` arrays.
        num_classes: Classes of a sparse classification head, or `None`.

    Returns:
        The findings, errors first.
    """
    findings = []
    for found in check(sample, num_classes=num_classes):
        severity = "info" if found.code in _INFO else found.severity
        findings.append(DoctorFinding(found.code, None, found.message,
                                      f"toolkit.data.check: {found.feature}",
                                      "See the message.", severity))
    return findings


def infer_num_classes(model: keras.Model) -> Optional[int]:
    """Outputs of a single-output model compiled with a sparse categorical cross-entropy."""
    loss = getattr(model, "loss", None)
    name = loss if isinstance(loss, str) else getattr(getattr(loss, "fn", None), "__name__",
                                                      type(loss).__name__)
    outputs = getattr(model, "outputs", None) or []
    if name not in _SPARSE or len(outputs) != 1:
        return None
    units = outputs[0].shape[-1]
    return int(units) if units and units > 1 else None
