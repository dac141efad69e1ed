"""The doctor's step (e): a few steps at the compiled learning rate, on one repeated batch.

A learning rate that is far too high shows at once (S3.2): on a batch seen again and again the
loss should only fall, so a loss that rises, jumps or turns NaN within `LEARNING_RATE_STEPS`
steps of the user's own optimizer (a fresh copy, same configuration) means the steps are too
large. Overfitting (step c) used Adam at a safe rate on the same batch: when that fell and this
did not, the learning rate is to blame, not the model.

Example:

>>> import keras, numpy as np
>>> from toolkit.models import mlp
>>> from toolkit.probes.doctor_batch import Batch
>>> model = mlp((8,), 3, hidden_units=(16,), input_scaling="none", seed=0)
>>> model.compile(keras.optimizers.Adam(10.0),
...               keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> x = np.random.default_rng(0).normal(size=(16, 8))
>>> checked = check_learning_rate(model, Batch(x, np.arange(16) % 3))
>>> [finding.code for finding in learning_rate_findings(checked)]
['learning-rate-too-high']
"""

import dataclasses
from typing import List, Optional, Tuple

import keras
import numpy as np

from toolkit.probes.doctor_batch import Batch
from toolkit.probes.doctor_clone import REGULARIZERS, clone_for_probe, compile_clone
from toolkit.probes.doctor_clone import copy_optimizer
from toolkit.probes.doctor_findings import DoctorFinding, make_finding
from toolkit.probes.doctor_overfit import train_steps

__all__ = ["LearningRateCheck", "check_learning_rate", "learning_rate_findings"]

# Steps at the compiled learning rate. Too high shows within a few steps (the first steps of an
# oversized Adam step move every weight by the learning rate); 20 also lets a warmup-free
# optimizer's moments settle.
LEARNING_RATE_STEPS = 20
# The loss of a batch seen again should never jump this far above its start.
LOSS_JUMP_RATIO = 3.0
# The last steps averaged to call the loss rising (above its start), smoothing Adam's wobble.
FINAL_STEPS = 5


@dataclasses.dataclass(frozen=True)
class LearningRateCheck:
    """The loss over a few steps of the user's optimizer on one batch.

    Args:
        learning_rate: The compiled learning rate at step 0.
        losses: The loss before each step.
    """

    learning_rate: Optional[float]
    losses: Tuple[float, ...]

    @property
    def too_high(self) -> bool:
        """Whether the loss turned non-finite, jumped or ended above its start."""
        losses = np.asarray(self.losses)
        if not np.all(np.isfinite(losses)):
            return True
        start = losses[0]
        return bool(losses.max() > LOSS_JUMP_RATIO * start
                    or losses[-FINAL_STEPS:].mean() > start)


def check_learning_rate(model: keras.Model, batch: Batch, *,
                        num_steps: int = LEARNING_RATE_STEPS) -> LearningRateCheck:
    """Trains a copy of `model` with a fresh copy of its optimizer for `num_steps` on `batch`.

    Args:
        model: A compiled Sequential or functional model (left untouched).
        batch: The batch.
        num_steps: Steps. Defaults to `LEARNING_RATE_STEPS`.

    Returns:
        A `LearningRateCheck`.
    """
    optimizer = copy_optimizer(model.optimizer)
    clone = compile_clone(clone_for_probe(model, remove=REGULARIZERS), model, optimizer)
    try:
        learning_rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except (TypeError, ValueError):
        learning_rate = None
    return LearningRateCheck(learning_rate, tuple(train_steps(clone, batch, num_steps)))


def learning_rate_findings(checked: LearningRateCheck,
                           safe_losses: Tuple[float, ...] = ()) -> List[DoctorFinding]:
    """`learning-rate-too-high` when the check's loss rose, jumped or turned NaN.

    Args:
        checked: The result of `check_learning_rate`.
        safe_losses: The loss on the same batch under Adam at the safe rate (step c), for the
            evidence. Defaults to `()`.

    Returns:
        One finding, or none.
    """
    if not checked.too_high:
        return []
    losses = np.asarray(checked.losses)
    rate = f"{checked.learning_rate:g}" if checked.learning_rate is not None else "compiled"
    if not np.all(np.isfinite(losses)):
        what = f"turned NaN/Inf at step {int(np.argmin(np.isfinite(losses)))}"
    else:
        peak = int(np.argmax(losses))
        what = (f"went {losses[0]:.3g} -> {losses[-1]:.3g} in {len(losses)} steps, up to "
                f"{losses[peak]:.3g} ({losses[peak] / losses[0]:.3g}x its start) at step {peak}")
    evidence = f"at learning rate {rate} the loss of one repeated batch {what}"
    if len(safe_losses) >= len(losses) and np.all(np.isfinite(safe_losses[:len(losses)])):
        evidence += (f"; Adam at a safe rate took it to {safe_losses[len(losses) - 1]:.3g} in "
                     f"as many steps")
    return [make_finding("learning-rate-too-high", None, evidence)]
