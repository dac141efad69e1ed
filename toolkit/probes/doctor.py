"""`doctor`: why a network does not learn, checked step by step (S2.12).

The checklist, in order, each step on copies of the model:

(a) conventions (`toolkit.lint`) and data (`toolkit.data.check`); errors in the data stop here;
(b) initialization: activation scale, gradient norm and dead units per layer on one batch;
(c) overfit two examples, then one batch: the loss must fall by orders of magnitude;
(d) with batch normalization, (b) and (c) again without it: does it hide exploding gradients?
(e) a few steps at the compiled learning rate on one batch: does the loss rise or turn NaN?

Every finding has a stable code (`toolkit.probes.doctor_findings.CODES`), the layer where it
applies, the evidence in numbers and the fix. The user's model and optimizer are never trained:
the probes train clones (`keras.models.clone_model`), so weights, batch-norm statistics, optimizer
slots and iteration count stay bit-identical.

Example:

>>> import keras, numpy as np
>>> from toolkit.models import mlp
>>> x = np.random.default_rng(0).normal(size=(16, 8))
>>> model = mlp((8,), 3, hidden_units=(16,), adapt_data=x, seed=0)
>>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> report = doctor(model, (x, np.arange(16) % 3))
>>> report.healthy, [finding.code for finding in report.findings]
(True, ['healthy'])
"""

import dataclasses
import time
from typing import Any, Dict, List, Tuple

import keras

from toolkit.errors import ModelError
from toolkit.probes.doctor_batch import read_batches
from toolkit.probes.doctor_batchnorm import batchnorm_findings, check_without_batchnorm
from toolkit.probes.doctor_clone import clone_for_probe, compile_clone
from toolkit.probes.doctor_conventions import (convention_findings, data_findings,
                                               infer_num_classes)
from toolkit.probes.doctor_findings import PROBLEM_SEVERITIES, DoctorFinding, make_finding
from toolkit.probes.doctor_init import initialization_findings, measure_initialization
from toolkit.probes.doctor_learning_rate import check_learning_rate, learning_rate_findings
from toolkit.probes.doctor_learning_rate import LearningRateCheck
from toolkit.probes.doctor_overfit import overfit_findings, overfit_tiny_batch

__all__ = ["DoctorReport", "DoctorStep", "doctor"]

# Examples per probe batch taken from arrays: enough for dead-unit and scale statistics, few
# enough that a CPU overfits them in seconds.
BATCH_SIZE = 32


@dataclasses.dataclass(frozen=True)
class DoctorStep:
    """One step of the checklist: its name, `"ok"`/`"problems"`/`"skipped"`, one line."""

    name: str
    status: str
    summary: str


@dataclasses.dataclass(frozen=True)
class DoctorReport:
    """What `doctor` found.

    Args:
        findings: Every finding, in checklist order; only `healthy` when nothing is wrong.
        steps: The checklist steps run.
        overfit_losses: The loss curve of each overfitting stage (two examples, one batch).
        seconds: Wall time of the run.
    """

    findings: Tuple[DoctorFinding, ...]
    steps: Tuple[DoctorStep, ...]
    overfit_losses: Tuple[Tuple[float, ...], ...]
    seconds: float

    @property
    def healthy(self) -> bool:
        """Whether no finding is an error or a warning."""
        return not any(f.severity in PROBLEM_SEVERITIES for f in self.findings)

    @property
    def codes(self) -> List[str]:
        """The findings' codes, in order."""
        return [finding.code for finding in self.findings]

    def format(self) -> str:
        """The checklist and the findings as text for a terminal."""
        problems = sum(f.severity in PROBLEM_SEVERITIES for f in self.findings)
        verdict = "healthy" if self.healthy else f"{problems} problem(s) found"
        lines = [f"Doctor: {verdict} ({self.seconds:.1f} s)", ""]
        lines += [f"  [{step.status:^8}] {step.name}: {step.summary}" for step in self.steps]
        for finding in self.findings:
            where = f" [{finding.layer}]" if finding.layer else ""
            lines += ["", f"{finding.severity} {finding.code}{where}", f"  {finding.message}"]
            if finding.evidence:
                lines.append(f"  evidence: {finding.evidence}")
            lines.append(f"  fix: {finding.fix}")
        return "\n".join(lines)

    def to_dict(self) -> Dict[str, Any]:
        """The report as a JSON-ready dict."""
        return {
            "healthy": self.healthy,
            "seconds": self.seconds,
            "findings": [finding.to_dict() for finding in self.findings],
            "steps": [dataclasses.asdict(step) for step in self.steps],
            "overfit_losses": [list(losses) for losses in self.overfit_losses],
        }


def doctor(model: keras.Model, data: Any, *, batch_size: int = BATCH_SIZE) -> DoctorReport:
    """Runs the checklist of the module doc on `model` and returns what it found.

    Args:
        model: A compiled, built Sequential or functional Keras model. It is not modified.
        data: A `tf.data.Dataset` of `(x, y[, sample_weight])` batches, or a tuple of arrays.
        batch_size: Examples per probe batch (a dataset's batches are cut to it). Defaults to
            `32`.

    Returns:
        A `DoctorReport`.

    Raises:
        ModelError: The model is not compiled or built, or cannot be cloned.
        DataError: `data` is not labelled data, or holds fewer than 2 examples per batch.
    """
    start = time.perf_counter()
    _require_compiled(model)
    batch, sample = read_batches(data, batch_size)
    findings = convention_findings(model)
    data_found = data_findings(sample, infer_num_classes(model))
    findings += [f for f in data_found if f.code != "feature-scale"]
    steps = [_step("(a) conventions and data", findings, "toolkit.lint and toolkit.data.check")]
    if any(f.severity == "error" for f in data_found):
        skipped = "skipped: fix the data errors first"
        steps += [DoctorStep(name, "skipped", skipped) for name in _LATER_STEPS]
        return _report(findings, steps, (), start)

    probe = compile_clone(clone_for_probe(model), model, keras.optimizers.Adam())
    measured = measure_initialization(probe, batch)
    found = _with_data_evidence(initialization_findings(measured), data_found)
    findings = _with_saturation(findings, measured) + found
    ratio = measured.backward_gain
    steps.append(_step("(b) initialization", found, f"loss {measured.loss:.3g}, gradient ratio "
                       f"first/last layer {ratio:.3g}x" if ratio else f"loss {measured.loss:.3g}"))

    stages = overfit_tiny_batch(model, batch)
    found = overfit_findings(stages, model, findings)
    findings += found
    steps.append(_step("(c) overfit a tiny batch", found,
                       "; ".join(stage.describe() for stage in stages)))

    without = check_without_batchnorm(model, batch)
    found = batchnorm_findings(without)
    if any(f.code == "exploding-gradients" for f in findings):
        found = []  # Visible with batch norm already: nothing is hidden.
    findings += found
    steps.append(_step("(d) without batch normalization", found, _describe_without(without)))

    checked = check_learning_rate(model, batch)
    safe = LearningRateCheck(None, stages[-1].losses)
    found = learning_rate_findings(checked, stages[-1].losses) if not safe.too_high else []
    findings += found
    steps.append(_step("(e) learning rate", found, f"{len(checked.losses)} steps at "
                       f"{checked.learning_rate:g}: loss {checked.losses[0]:.3g} -> "
                       f"{checked.losses[-1]:.3g}" if checked.learning_rate is not None
                       else f"{len(checked.losses)} steps"))
    return _report(findings, steps, tuple(stage.losses for stage in stages), start)


_LATER_STEPS = ("(b) initialization", "(c) overfit a tiny batch",
                "(d) without batch normalization", "(e) learning rate")


def _require_compiled(model) -> None:
    if not isinstance(model, keras.Model) or getattr(model, "optimizer", None) is None:
        raise ModelError(
            f"The doctor needs a compiled Keras model; received {type(model).__name__} "
            f"{getattr(model, 'name', '')!r} without an optimizer. Call model.compile(optimizer, "
            f"loss) first.")
    if not model.built or not getattr(model, "inputs", None):
        raise ModelError(
            f"The doctor needs a built model with known inputs; {model.name!r} is not built. "
            f"Start it with keras.Input(shape) (Sequential or functional).")


def _describe_without(without) -> str:
    if without is None:
        return "no batch normalization: nothing to remove"
    ratio = without.measured.backward_gain
    gradient = f"gradient ratio first/last layer {ratio:.3g}x" if ratio else "no gradient ratio"
    return (f"without {len(without.removed)} batch normalization layer(s): loss "
            f"{without.measured.loss:.3g}, {gradient}")


def _with_data_evidence(found: List[DoctorFinding], data_found) -> List[DoctorFinding]:
    """Adds the data check's widest feature to the measured `unscaled-inputs` finding."""
    scale = [f for f in data_found if f.code == "feature-scale"]
    if not scale:
        return found
    return [dataclasses.replace(f, evidence=f"{f.evidence}. {scale[0].message}")
            if f.code == "unscaled-inputs" else f for f in found]


def _with_saturation(findings: List[DoctorFinding], measured) -> List[DoctorFinding]:
    """Adds the measured fraction of saturated outputs to lint's `saturating-activation`."""
    saturated = {m.name: m.saturated_fraction for m in measured.layers
                 if m.saturated_fraction is not None}
    return [dataclasses.replace(f, evidence=(
        f"{f.evidence}; {saturated[f.layer]:.0%} of its outputs are saturated on the batch"))
        if f.code == "saturating-activation" and f.layer in saturated else f for f in findings]


def _step(name: str, found: List[DoctorFinding], summary: str) -> DoctorStep:
    problems = [f for f in found if f.severity in PROBLEM_SEVERITIES]
    if problems:
        codes = ", ".join(sorted({f.code for f in problems}))
        return DoctorStep(name, "problems", f"{codes}. {summary}")
    return DoctorStep(name, "ok", summary)


def _report(findings, steps, overfit_losses, start) -> DoctorReport:
    if not any(f.severity in PROBLEM_SEVERITIES for f in findings):
        findings = findings + [make_finding("healthy", None, "; ".join(
            f"{step.name}: {step.summary}" for step in steps[1:]))]
    return DoctorReport(tuple(findings), tuple(steps), overfit_losses,
                        time.perf_counter() - start)
