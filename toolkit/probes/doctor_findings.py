"""`DoctorFinding`: one problem the doctor found, and the catalogue of its stable codes.

Each code has one meaning and one fix, written once here (`CODES`), so the same fault reads the
same wherever it is found and the docs table is this table. A finding adds what was measured
(`evidence`) and where (`layer`). Severities: `"error"` (this stops the network from learning),
`"warning"` (it hurts learning or breaks a convention that matters here) and `"info"` (worth
knowing, not a fault); a model is healthy when it has no error and no warning.

Example:

>>> finding = make_finding("dead-relu", "dense_0", "16 of 16 units output 0 on all 32 examples")
>>> print(finding)  # doctest: +ELLIPSIS
error dead-relu [dense_0]: Most units of a ReLU layer ... (16 of 16 units output 0 ...)
>>> finding.fix.split(".")[0]
'Initialize biases to 0 (the Keras default) and weights with variance scaling'
"""

import dataclasses
from typing import Any, Dict, Optional, Tuple

__all__ = ["DoctorFinding", "CODES", "make_finding", "PROBLEM_SEVERITIES"]

# Severities that make a model unhealthy (exit status 1 of `toolkit doctor`).
PROBLEM_SEVERITIES = ("error", "warning")

# code: (severity, what it means, what to do). The docs table of `docs/diagnosis.md` is this.
CODES: Dict[str, Tuple[str, str, str]] = {
    "probabilities-with-from-logits": (
        "error",
        "The output applies softmax/sigmoid and the loss has from_logits=True, so the loss "
        "applies it a second time: the gradients are wrong and training stalls without an error.",
        "Remove the output activation and keep from_logits=True (toolkit.layers.LinearHead)."),
    "logits-with-probability-loss": (
        "error",
        "The output is linear (logits) but the cross-entropy has from_logits=False, so it reads "
        "logits as probabilities, clipped to [eps, 1 - eps].",
        "Build the loss with from_logits=True."),
    "output-activation": (
        "warning",
        "The output layer applies an activation: a squashing output caps what the model can "
        "predict and saturates where it is most wrong (S2.4).",
        "Keep the output linear and use a from_logits=True loss; apply softmax/sigmoid to "
        "predictions when you need probabilities."),
    "saturating-activation": (
        "warning",
        "A hidden layer uses sigmoid or tanh: their gradient vanishes for large inputs and "
        "shrinks layer after layer (S2.3).",
        "Use activation='relu' (toolkit.layers.DenseBlock, ConvBlock)."),
    "bad-initialization": (
        "error",
        "A layer's initial weights change the scale of the signal passing through it far from "
        "what variance scaling keeps (about 1): the activations grow or shrink layer by layer.",
        "Initialize with variance scaling over the fan-in: kernel_initializer="
        "toolkit.initializers.relu() for ReLU layers, toolkit.initializers.linear() for linear "
        "ones (S2.6)."),
    "exploding-gradients": (
        "error",
        "The gradient grows by orders of magnitude from the output back to the first layers: no "
        "single learning rate suits both ends, and large steps turn the loss into NaN.",
        "Fix the initialization (variance scaling, S2.6) of the layers named; gradient "
        "clipping only hides it."),
    "vanishing-gradients": (
        "error",
        "The gradient shrinks by orders of magnitude from the output back to the first layers: "
        "the first layers barely learn.",
        "Use ReLU hidden layers and variance-scaling initialization (S2.3, S2.6)."),
    "dead-relu": (
        "error",
        "Most units of a ReLU layer output 0 for every example, so no gradient flows through "
        "them and they never recover.",
        "Initialize biases to 0 (the Keras default) and weights with variance scaling. Lower "
        "the learning rate if units die during training."),
    "batchnorm-hides-exploding-gradients": (
        "error",
        "Batch normalization rescales activations that a bad initialization blows up: with it "
        "the model seems to train, without it the gradients explode (S2.12).",
        "Initialize the layers named with variance scaling (toolkit.initializers.relu()); keep "
        "batch normalization only if it still helps then."),
    "unscaled-inputs": (
        "warning",
        "The first layer receives values far from unit scale, so its outputs, the loss and the "
        "gradients start orders of magnitude off (S2.7-S2.8).",
        "Put toolkit.layers.InputScaling (tanh(x/C) then standardize) first and adapt it on the "
        "training inputs (toolkit.models.mlp(..., adapt_data=x))."),
    "non-finite-loss": (
        "error",
        "The loss of the first batch is NaN or infinite before any training step.",
        "Check the data for NaN/Inf (toolkit.data.check) and the loss for log(0): use a "
        "from_logits=True loss on a linear output."),
    "cannot-overfit-tiny-batch": (
        "error",
        "Even on two examples or one batch the loss did not fall by orders of magnitude: the "
        "model cannot learn what it is shown (S2.12).",
        "Work through the likely causes listed in the evidence, the earliest first."),
    "learning-rate-too-high": (
        "error",
        "At the compiled learning rate the loss on one repeated batch rises or becomes NaN "
        "within a few steps (S3.2).",
        "Lower the learning rate 10x (or run `toolkit find-lr`)."),
    "healthy": (
        "info",
        "Every check passed: conventions, data, initialization, overfitting a tiny batch and the "
        "learning rate.",
        "Train; if the full run still goes wrong, read its loss-curve diagnosis."),
}


@dataclasses.dataclass(frozen=True)
class DoctorFinding:
    """One problem (or the `healthy` verdict) found by `toolkit.probes.doctor`.

    Args:
        code: Stable identifier, e.g. `"exploding-gradients"` (see `CODES`).
        layer: Name of the layer concerned, or `None` for model-wide findings.
        message: What it means.
        evidence: What was measured, in numbers.
        fix: What to do.
        severity: `"error"`, `"warning"` or `"info"`.
    """

    code: str
    layer: Optional[str]
    message: str
    evidence: str
    fix: str
    severity: str

    def __str__(self) -> str:
        where = f" [{self.layer}]" if self.layer is not None else ""
        evidence = f" ({self.evidence})" if self.evidence else ""
        return f"{self.severity} {self.code}{where}: {self.message}{evidence}"

    def to_dict(self) -> Dict[str, Any]:
        """The finding as a JSON-ready dict."""
        return dataclasses.asdict(self)


def make_finding(code: str, layer: Optional[str], evidence: str, *,
                 message: Optional[str] = None, severity: Optional[str] = None) -> DoctorFinding:
    """A `DoctorFinding` whose message, fix and severity come from `CODES` unless given.

    Args:
        code: A code of `CODES`, or another stable code when `message` and `severity` are given.
        layer: Layer name or `None`.
        evidence: The measured numbers.
        message: Overrides the catalogue's meaning. Defaults to `None`.
        severity: Overrides the catalogue's severity. Defaults to `None`.

    Returns:
        The finding.
    """
    default_severity, meaning, fix = CODES.get(code, ("warning", "", ""))
    return DoctorFinding(code=code, layer=layer, message=message or meaning, evidence=evidence,
                         fix=fix, severity=severity or default_severity)
