"""non_trainable_kept: a training-mode pass outside the train step that changes no state."""

import contextlib
from typing import Iterator

import keras
import numpy as np

__all__ = ["non_trainable_kept"]


@contextlib.contextmanager
def non_trainable_kept(model: keras.Model) -> Iterator[None]:
    """Puts every non-trainable variable back after the block, even when it raises.

    A forward pass with `training=True` moves batch-norm moving statistics and advances the
    dropout layers' seed generators; a probe that runs one outside the train step (to see the
    loss or gradients the optimizer sees) must not change what training does next.

    Args:
        model: The model whose non-trainable variables are kept.

    Example:

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.BatchNormalization()])
    >>> with non_trainable_kept(model):
    ...     _ = model(np.full((4, 2), 5.0), training=True)
    >>> float(np.asarray(model.layers[0].moving_mean)[0])
    0.0
    """
    saved = [np.array(keras.ops.convert_to_numpy(v)) for v in model.non_trainable_variables]
    try:
        yield
    finally:
        for variable, value in zip(model.non_trainable_variables, saved):
            variable.assign(value)
