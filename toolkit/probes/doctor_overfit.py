"""The doctor's step (c): overfit two examples, then one batch (S2.12).

A network that can learn at all memorizes two examples, and then one small batch, in a few
hundred steps: its loss falls by orders of magnitude. `overfit_tiny_batch` trains a copy of the
model (dropout and noise layers off, Adam at a safe learning rate, so that neither the user's
regularization nor their learning rate is under test here) with `Model.train_on_batch` on the
same examples over and over (at a second, lower rate if the first fails), and stops as soon
as the loss reached `OVERFIT_LOSS_RATIO` of its start. `overfit_findings` reports `cannot-overfit-tiny-batch` with the likely causes, earliest
first, when a stage fails.

Example:

>>> import keras, numpy as np
>>> from toolkit.models import mlp
>>> from toolkit.probes.doctor_batch import Batch
>>> model = mlp((8,), 3, hidden_units=(16,), input_scaling="none", seed=0)
>>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> x = np.random.default_rng(0).normal(size=(8, 8))
>>> stages = overfit_tiny_batch(model, Batch(x, np.arange(8) % 3))
>>> [(stage.num_examples, stage.reached) for stage in stages]
[(2, True), (8, True)]
"""

import dataclasses
from typing import List, Sequence, Tuple

import keras
import numpy as np

from toolkit.probes.doctor_batch import Batch
from toolkit.probes.doctor_clone import REGULARIZERS, clone_for_probe, compile_clone
from toolkit.probes.doctor_findings import DoctorFinding, make_finding
from toolkit.probes.doctor_init import is_linear_map

__all__ = ["OverfitStage", "overfit_tiny_batch", "overfit_findings", "OVERFIT_LEARNING_RATES"]

# Adam at 1e-2 first, then at 1e-3 for a stage that failed. Measured on the zoo and on 32
# examples of the digits_mlp and mnist1d_cnn recipes: 1e-2 reached the ratio in 3-96 steps
# everywhere; 3e-2 left the convnet at 0.61x after 600 steps; 3e-3 needed 2-4x more steps than
# 1e-2. The retry at 1e-3 covers models larger than these, for which 1e-2 may already be too
# much. The user's own learning rate is checked separately, in step (e).
OVERFIT_LEARNING_RATES = (1e-2, 1e-3)
# "Orders of magnitude": the loss must fall to 1% of its start. S2.12's repaired network fell by
# almost 4 orders; a network that learns reaches 2 orders on two examples in tens of steps.
OVERFIT_LOSS_RATIO = 0.01
# Or below this absolute value, for a loss that starts small already (a near-perfect init).
OVERFIT_LOSS_FLOOR = 1e-4
# Step budget per stage and learning rate: 3x the slowest healthy stage seen (96 steps, a
# one-hidden-layer MLP on 16 examples with random labels), still seconds on a CPU.
OVERFIT_MAX_STEPS = 300
_CAUSES = {
    "probabilities-with-from-logits": "the loss applies softmax/sigmoid a second time",
    "output-activation": "the output activation caps the predictions",
    "saturating-activation": "saturating sigmoid/tanh layers",
    "bad-initialization": "a bad initialization",
    "exploding-gradients": "exploding gradients",
    "vanishing-gradients": "vanishing gradients",
    "dead-relu": "dead ReLU units",
    "unscaled-inputs": "unscaled inputs",
    "logits-with-probability-loss": "a loss that reads logits as probabilities",
}


@dataclasses.dataclass(frozen=True)
class OverfitStage:
    """One stage of overfitting.

    Args:
        num_examples: Examples trained on (2, then the batch).
        losses: The loss before each step.
        reached: Whether the loss fell to `OVERFIT_LOSS_RATIO` of its start (or the floor).
        learning_rate: Adam's learning rate of the run kept (the first that reached, or the
            last tried).
    """

    num_examples: int
    losses: Tuple[float, ...]
    reached: bool
    learning_rate: float

    @property
    def ratio(self) -> float:
        """Lowest loss over the first one (NaN when non-finite)."""
        finite = [loss for loss in self.losses if np.isfinite(loss)]
        if len(finite) < len(self.losses) or not self.losses[0]:
            return float("nan") if len(finite) < len(self.losses) else 0.0
        return min(finite) / self.losses[0]

    def describe(self) -> str:
        """One line: the loss's start, lowest value and steps taken."""
        start, steps = self.losses[0], len(self.losses)
        if not np.all(np.isfinite(self.losses)):
            bad = int(np.argmin(np.isfinite(self.losses)))
            return f"{self.num_examples} examples: loss {start:.3g}, NaN/Inf at step {bad}"
        return (f"{self.num_examples} examples: loss {start:.3g} -> {min(self.losses):.3g} "
                f"({self.ratio:.2g}x) in {steps} steps of Adam at {self.learning_rate:g}")


def overfit_tiny_batch(model: keras.Model, batch: Batch, *,
                       max_steps: int = OVERFIT_MAX_STEPS) -> List[OverfitStage]:
    """Trains copies of `model` on two examples of `batch`, then on all of it.

    The second stage runs only when the first succeeded.

    Args:
        model: A compiled Sequential or functional model (left untouched).
        batch: The batch.
        max_steps: Step budget per stage. Defaults to `OVERFIT_MAX_STEPS`.

    Returns:
        The stages run, in order.
    """
    stages = []
    for examples in (batch.pair(), batch):
        tried = []
        for learning_rate in OVERFIT_LEARNING_RATES:
            clone = clone_for_probe(model, remove=REGULARIZERS)
            compile_clone(clone, model, keras.optimizers.Adam(learning_rate))
            losses = train_steps(clone, examples, max_steps, stop_ratio=OVERFIT_LOSS_RATIO)
            reached = bool(np.all(np.isfinite(losses))) and (
                min(losses) <= losses[0] * OVERFIT_LOSS_RATIO
                or min(losses) <= OVERFIT_LOSS_FLOOR)
            tried.append(OverfitStage(examples.size, tuple(losses), reached, learning_rate))
            if reached:
                break
        # Report the run that got furthest (NaN ratios last).
        stages.append(min(tried, key=lambda stage: (not stage.reached, np.nan_to_num(
            stage.ratio, nan=np.inf))))
        if not stages[-1].reached:
            break
    return stages


def train_steps(model: keras.Model, batch: Batch, num_steps: int, *,
                stop_ratio: float = 0.0) -> List[float]:
    """Runs up to `num_steps` `train_on_batch` steps on `batch`; returns the loss before each.

    Stops early at a non-finite loss, or once the loss is below `stop_ratio` of the first.
    """
    losses = []
    for _ in range(num_steps):
        logs = model.train_on_batch(batch.x, batch.y, batch.sample_weight, return_dict=True)
        losses.append(float(logs["loss"]))
        if not np.isfinite(losses[-1]) or losses[-1] <= losses[0] * stop_ratio:
            break
        if losses[-1] <= OVERFIT_LOSS_FLOOR and stop_ratio:
            break
    return losses


def overfit_findings(stages: Sequence[OverfitStage], model: keras.Model,
                     earlier: Sequence[DoctorFinding]) -> List[DoctorFinding]:
    """`cannot-overfit-tiny-batch` when a stage failed, with the likely causes.

    Args:
        stages: The result of `overfit_tiny_batch`.
        model: The model (read for frozen and narrow layers).
        earlier: Findings of the earlier steps: their faults come first among the causes.

    Returns:
        One finding, or none.
    """
    if all(stage.reached for stage in stages):
        return []
    frozen = [layer.name for layer in model.layers
              if is_linear_map(layer) and layer.weights and not layer.trainable]
    causes = []
    for finding in earlier:
        cause = _CAUSES.get(finding.code)
        if cause and cause not in causes:
            causes.append(cause)
    if frozen:
        causes.append(f"frozen layers (trainable=False): {', '.join(f'`{n}`' for n in frozen)}")
    if model.losses:
        causes.append("regularization losses added by the model (model.losses)")
    causes += ["a layer too narrow for the outputs (a bottleneck)",
               "a loss that does not match the targets (e.g. sparse vs one-hot labels)",
               "a stop_gradient or custom layer that cuts the gradient"]
    evidence = "; ".join(stage.describe() for stage in stages)
    rates = " or ".join(f"{rate:g}" for rate in OVERFIT_LEARNING_RATES)
    evidence += (f"; needed {OVERFIT_LOSS_RATIO:g}x within {OVERFIT_MAX_STEPS} steps of Adam "
                 f"at {rates}. Likely causes: " + "; ".join(causes))
    return [make_finding("cannot-overfit-tiny-batch", frozen[0] if frozen else None, evidence)]
