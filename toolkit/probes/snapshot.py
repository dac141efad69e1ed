"""ModelSnapshot: every variable of a model and its optimizer, to put back after a probe.

A probe (the learning-rate range test, the doctor's overfit-a-batch, the batch-size finder) trains
or perturbs the model it measures. Its contract is to leave the model as it found it: weights,
non-trainable state (batch-norm statistics, seed-generator states), the optimizer's slots (Adam's
moments), its iteration count and its learning rate, bit for bit. `ModelSnapshot.take` builds the
optimizer first when it is not built yet, so the variables a probe's training creates exist and
are captured at their initial values (zeros, iteration 0): a fresh optimizer and a restored one
then behave identically.

Example:

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
>>> model.compile("adam", "mse")
>>> snapshot = ModelSnapshot.take(model)
>>> _ = model.fit(np.ones((8, 3)), np.ones(8), verbose=0)
>>> int(model.optimizer.iterations)
1
>>> snapshot.restore()
>>> int(model.optimizer.iterations), snapshot.matches(model)
(0, True)
"""

import dataclasses
from typing import Any, List

import numpy as np

__all__ = ["ModelSnapshot"]


def _variables(model: Any) -> List[Any]:
    variables = list(model.variables)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        variables += list(optimizer.variables)
    return variables


@dataclasses.dataclass
class ModelSnapshot:
    """Copies of a model's and its optimizer's variables (see the module doc).

    Args:
        model: The model the values belong to.
        values: One NumPy copy per variable, in the order of `model.variables` then
            `model.optimizer.variables`.
    """

    model: Any
    values: List[np.ndarray]

    @classmethod
    def take(cls, model: Any) -> "ModelSnapshot":
        """Copies every variable of `model` and of its optimizer (built first if needed).

        Args:
            model: A built Keras model, compiled or not.

        Returns:
            The snapshot.
        """
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            optimizer.build(model.trainable_variables)
        return cls(model=model, values=[np.array(v.numpy(), copy=True)
                                        for v in _variables(model)])

    def restore(self) -> None:
        """Assigns the copied values back to every variable.

        Raises:
            RuntimeError: If the model gained or lost variables since the snapshot (a probe bug).
        """
        variables = _variables(self.model)
        if len(variables) != len(self.values):
            raise RuntimeError(
                f"The model has {len(variables)} variables, the snapshot {len(self.values)}: "
                f"a probe changed the model's structure and cannot restore it."
            )
        for variable, value in zip(variables, self.values):
            variable.assign(value)

    def matches(self, model: Any) -> bool:
        """Whether every variable of `model` equals the snapshot bit for bit (NaNs included)."""
        variables = _variables(model)
        return len(variables) == len(self.values) and all(
            np.array_equal(v.numpy(), value, equal_nan=True)
            for v, value in zip(variables, self.values)
        )
