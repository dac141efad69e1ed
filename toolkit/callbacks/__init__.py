"""Keras callbacks, one per module, each usable in a plain `model.fit(callbacks=[...])`.

Callbacks count in optimizer steps (`model.optimizer.iterations`), never in batches or epochs,
so they work with any `steps_per_execution` and continue across `fit` calls and resumed runs.
They read values from the device only every `every_steps` steps, never at every step.

- `Axes`: TensorBoard scalars against steps, examples seen, wall time and epoch-equivalents.
- `Progress`: one progress bar over the whole step budget.
- `Checkpoint`: a resumable checkpoint (model, Adam state, clock) every N steps.
- `NanGuard`: rolls back non-finite steps, lowers the learning rate, or explains the divergence.
- `Preemption`: SIGTERM / Ctrl-C write a checkpoint at the next step boundary, then stop.
- `IntervalMetrics`: Keras's running metric state survives a checkpoint inside an epoch.
- `GradientNoiseScale`: the gradient noise scale B_simple (about the critical batch size) every
  N steps, from probe batches outside the train step.
- `Sharpness`: the top Hessian eigenvalue of the loss on a probe batch next to 2/lr (edge of
  stability).
- `LossCurveDiagnosis`: learning rate too low or too high, plateau, overfitting and
  memorization, read from the loss curves (`toolkit.callbacks.loss_curve_rules`).
- `EarlyStopping`: patience in optimizer steps, a minimum improvement from the evaluation
  metric's measured noise, the best weights restored and kept across a resumed run.

Example:

>>> import tempfile
>>> import keras, numpy as np
>>> from toolkit.callbacks import Axes, Progress
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
>>> model.compile("adam", "mse")
>>> callbacks = [Axes(tempfile.mkdtemp(), every_steps=4), Progress(every_steps=8)]
>>> _ = model.fit(np.ones((64, 4)), np.ones(64), batch_size=8, epochs=3, verbose=0,
...               callbacks=callbacks)  # doctest: +ELLIPSIS
8/24 [========................]  33% ...
24/24 [========================] 100% ...
"""

from toolkit.callbacks.axes import Axes
from toolkit.callbacks.checkpoint import Checkpoint
from toolkit.callbacks.early_stopping import EarlyStopping
from toolkit.callbacks.gradient_noise_scale import GradientNoiseScale
from toolkit.callbacks.interval_metrics import IntervalMetrics
from toolkit.callbacks.loss_curve_diagnosis import LossCurveDiagnosis
from toolkit.callbacks.loss_curve_rules import CurveFinding, diagnose_curve
from toolkit.callbacks.nan_guard import NanGuard
from toolkit.callbacks.preemption import Preemption
from toolkit.callbacks.progress import Progress
from toolkit.callbacks.sharpness import Sharpness

__all__ = [
    "Axes",
    "Progress",
    "Checkpoint",
    "NanGuard",
    "Preemption",
    "IntervalMetrics",
    "LossCurveDiagnosis",
    "GradientNoiseScale",
    "Sharpness",
    "EarlyStopping",
    "CurveFinding",
    "diagnose_curve",
]
