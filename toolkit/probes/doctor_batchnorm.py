"""The doctor's step (d): repeat steps (b) and (c) without batch normalization (S2.12).

Batch normalization rescales every activation it sees, so a badly initialized layer in front of
it looks harmless: the loss is finite and falls. S2.12's network, once its batch normalization
was removed, produced NaN after one or two steps: batch norm had hidden exploding gradients
caused by a bad initialization. `check_without_batchnorm` copies the model with every
`BatchNormalization` replaced by identity, measures its initialization, overfits two examples
and runs a few steps at the compiled learning rate; `batchnorm_findings` reports
`batchnorm-hides-exploding-gradients` when the copy explodes where the model did not.

Example:

>>> import keras, numpy as np
>>> from toolkit.probes.doctor_batch import Batch
>>> inputs = keras.Input((8,))
>>> hidden = inputs
>>> for index in range(3):
...     hidden = keras.layers.Dense(16, kernel_initializer=keras.initializers.RandomNormal(
...         stddev=10.0, seed=index), name=f"dense_{index}")(hidden)
...     hidden = keras.layers.ReLU()(keras.layers.BatchNormalization()(hidden))
>>> model = keras.Model(inputs, keras.layers.Dense(3, name="head")(hidden))
>>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> x = np.random.default_rng(0).normal(size=(16, 8))
>>> checked = check_without_batchnorm(model, Batch(x, np.arange(16) % 3))
>>> [(f.code, f.layer) for f in batchnorm_findings(checked)]
[('batchnorm-hides-exploding-gradients', 'dense_0')]
"""

import dataclasses
from typing import List, Optional, Tuple

import keras
import numpy as np

from toolkit.keras_compat import sublayers
from toolkit.probes.doctor_batch import Batch
from toolkit.probes.doctor_clone import clone_for_probe, compile_clone, copy_optimizer
from toolkit.probes.doctor_findings import DoctorFinding, make_finding
from toolkit.probes.doctor_init import (EXPLODING_BACKWARD_GAIN, InitMeasurement,
                                        initialization_findings, measure_initialization)
from toolkit.probes.doctor_learning_rate import LearningRateCheck, check_learning_rate
from toolkit.probes.doctor_overfit import OverfitStage, overfit_tiny_batch

__all__ = ["BatchNormCheck", "batchnorm_layers", "check_without_batchnorm",
           "batchnorm_findings"]

_BATCHNORM = (keras.layers.BatchNormalization,)
# Steps of the compiled optimizer on the copy: S2.12's copy was NaN after 1-2.
WITHOUT_BATCHNORM_STEPS = 5
# Overfitting two examples is enough to see the copy blow up, at a tenth of the full step cost.
WITHOUT_BATCHNORM_OVERFIT_STEPS = 30


@dataclasses.dataclass(frozen=True)
class BatchNormCheck:
    """Steps (b), (c) and (e) on a copy of the model without batch normalization.

    Args:
        removed: Names of the batch-normalization layers removed.
        measured: Step (b) on the copy.
        overfit: Step (c) on the copy, two examples only.
        learning_rate: A few steps of the compiled optimizer on the copy.
    """

    removed: Tuple[str, ...]
    measured: InitMeasurement
    overfit: Tuple[OverfitStage, ...]
    learning_rate: LearningRateCheck


def batchnorm_layers(model) -> List[str]:
    """Names of every `BatchNormalization` layer of `model`, nested ones included."""
    found = []
    for layer in sublayers(model):
        if isinstance(layer, _BATCHNORM):
            found.append(layer.name)
        found += batchnorm_layers(layer)
    return found


def check_without_batchnorm(model: keras.Model, batch: Batch) -> Optional[BatchNormCheck]:
    """Runs steps (b), (c) and (e) on a copy of `model` without batch normalization.

    Args:
        model: A compiled Sequential or functional model (left untouched).
        batch: The batch.

    Returns:
        A `BatchNormCheck`, or `None` when the model has no batch normalization.
    """
    removed = batchnorm_layers(model)
    if not removed:
        return None
    copy = clone_for_probe(model, remove=_BATCHNORM)
    compile_clone(copy, model, keras.optimizers.Adam())
    measured = measure_initialization(copy, batch)
    # `overfit_tiny_batch` and `check_learning_rate` copy what they get: give them the copy.
    compile_clone(copy, model, copy_optimizer(model.optimizer))
    overfit = overfit_tiny_batch(copy, batch.pair(), max_steps=WITHOUT_BATCHNORM_OVERFIT_STEPS)
    checked = check_learning_rate(copy, batch, num_steps=WITHOUT_BATCHNORM_STEPS)
    return BatchNormCheck(tuple(removed), measured, tuple(overfit[:1]), checked)


def batchnorm_findings(checked: Optional[BatchNormCheck]) -> List[DoctorFinding]:
    """`batchnorm-hides-exploding-gradients` when the copy without batch norm explodes.

    Args:
        checked: The result of `check_without_batchnorm` (`None`: no batch normalization).

    Returns:
        One finding naming the worst-initialized layer, or none.
    """
    if checked is None:
        return []
    measured = checked.measured
    signs = []
    if not np.isfinite(measured.loss) or not measured.gradients_finite:
        signs.append("the loss or the gradients of the first batch are NaN/Inf")
    elif measured.backward_gain is not None and measured.backward_gain > EXPLODING_BACKWARD_GAIN:
        signs.append(f"the gradient norm grows {measured.backward_gain:.3g}x from the output "
                     f"back to the first layer")
    losses = np.asarray(checked.learning_rate.losses)
    if not np.all(np.isfinite(losses)):
        signs.append(f"at the compiled learning rate the loss was NaN/Inf after "
                     f"{int(np.argmin(np.isfinite(losses)))} step(s)")
    if not signs:
        return []
    if checked.overfit:
        signs.append(f"overfitting {checked.overfit[0].describe()}")
    bad = [f.layer for f in initialization_findings(measured) if f.code == "bad-initialization"]
    gains = [m for m in measured.layers if m.gain is not None and np.isfinite(m.gain)]
    worst = max(gains, key=lambda m: abs(np.log(max(m.gain, 1e-30))), default=None)
    # Name where the blow-up starts: the first badly initialized layer, else the worst gain.
    layer = bad[0] if bad else (worst.name if worst is not None else None)
    removed = ", ".join(f"`{name}`" for name in checked.removed)
    evidence = f"without {removed}: " + "; ".join(signs)
    if bad:
        evidence += f"; badly initialized: {', '.join(f'`{n}`' for n in bad)}"
    return [make_finding("batchnorm-hides-exploding-gradients", layer, evidence)]
