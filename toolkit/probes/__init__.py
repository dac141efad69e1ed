"""Probes: one-off measurements that leave the model as they found them.

- `doctor(model, data)`: the S2.12 checklist for a network that does not learn (conventions,
  data, initialization, overfitting a tiny batch, batch norm, learning rate); returns a
  `DoctorReport` of findings with stable codes.
- `find_learning_rate(model, data)`: the learning-rate range test; returns a
  `LearningRateSearch` (the curve, one suggested rate with the rule that chose it, a PNG).
- `sharpness(model, batch)`: the largest Hessian eigenvalue of the loss on a fixed batch (Lanczos
  on exact Hessian-vector products); returns a `SharpnessResult`.
- `ModelSnapshot`: every model and optimizer variable, restored bit for bit after a probe.

Example:

>>> import keras, numpy as np
>>> from toolkit.models import mlp
>>> x, y = np.random.default_rng(0).normal(size=(16, 8)), np.arange(16) % 3
>>> model = mlp((8,), 3, hidden_units=(16,), adapt_data=x, seed=0)
>>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> doctor(model, (x, y)).codes
['healthy']
"""

from toolkit.probes.batch_size_finder import find_batch_size
from toolkit.probes.batch_size_search import BatchSizePoint, BatchSizeSearch
from toolkit.probes.doctor import DoctorReport, doctor
from toolkit.probes.lr_range import LearningRateSearch, find_learning_rate
from toolkit.probes.sharpness import SharpnessResult, sharpness
from toolkit.probes.snapshot import ModelSnapshot

__all__ = ["BatchSizePoint", "BatchSizeSearch", "DoctorReport", "LearningRateSearch",
           "ModelSnapshot", "SharpnessResult", "doctor", "find_batch_size",
           "find_learning_rate", "sharpness"]
