"""Dense layers that follow the conventions: ReLU hidden blocks and linear heads (S2.3-S2.6)."""

import keras

from toolkit import initializers

__all__ = ["DenseBlock", "LinearHead"]

_LINEAR = (None, "linear")


@keras.saving.register_keras_serializable(package="toolkit")
class DenseBlock(keras.layers.Dense):
    """A hidden `Dense` layer with the conventions as defaults: ReLU, a bias, He initialization.

    ReLU keeps gradients from vanishing (S2.3), the bias lets every unit shift its threshold
    (S2.5), and variance scaling with scale 2 over the fan-in keeps the signal's variance constant
    through ReLU layers (S2.6). It is a `keras.layers.Dense`, so every `Dense` argument works and
    overrides the default; `toolkit.lint` reports the ones that break a convention.

    Args:
        units: Number of output units.
        seed: Seed of the default kernel initializer (`toolkit.initializers.relu`). Give each layer
            its own seed. Defaults to `None` (Keras's global random state).
        **kwargs: Any `keras.layers.Dense` argument (`activation`, `kernel_initializer`, `name`,
            regularizers, ...). Defaults: `activation="relu"`, `use_bias=True`,
            `kernel_initializer=toolkit.initializers.relu(seed)`, `bias_initializer="zeros"`.

    Call arguments:
        inputs: Tensor of shape `(batch, ..., input_dim)`.

    Input shape:
        `(batch, ..., input_dim)`.

    Output shape:
        `(batch, ..., units)`.

    Example:

    >>> import keras
    >>> from toolkit.layers import DenseBlock
    >>> block = DenseBlock(16, seed=0)
    >>> block(keras.ops.ones((2, 8))).shape
    TensorShape([2, 16])
    """

    def __init__(self, units: int, seed: int | None = None, **kwargs):
        kwargs.setdefault("activation", "relu")
        kwargs.setdefault("use_bias", True)
        kwargs.setdefault("kernel_initializer", initializers.relu(seed))
        super().__init__(units, **kwargs)


@keras.saving.register_keras_serializable(package="toolkit")
class LinearHead(keras.layers.Dense):
    """An output `Dense` layer without activation, with a bias and LeCun initialization.

    A model's output should be raw logits or raw regression values (S2.4): pair it with a loss
    built with `from_logits=True` (`keras.losses.SparseCategoricalCrossentropy(from_logits=True)`,
    `BinaryCrossentropy(from_logits=True)`), which is also more stable numerically than a softmax
    followed by a log. Apply `keras.activations.softmax` to predictions when you need
    probabilities. Variance scaling with scale 1 over the fan-in suits a layer with no activation.

    Args:
        units: Number of outputs (classes, or regression targets).
        seed: Seed of the default kernel initializer (`toolkit.initializers.linear`). Defaults to
            `None` (Keras's global random state).
        **kwargs: Any `keras.layers.Dense` argument except a non-linear `activation`. Defaults:
            `use_bias=True`, `kernel_initializer=toolkit.initializers.linear(seed)`.

    Call arguments:
        inputs: Tensor of shape `(batch, ..., input_dim)`.

    Input shape:
        `(batch, ..., input_dim)`.

    Output shape:
        `(batch, ..., units)`.

    Raises:
        ValueError: A non-linear `activation` was passed.

    Example:

    >>> import keras
    >>> from toolkit.layers import LinearHead
    >>> head = LinearHead(10, seed=0)
    >>> head(keras.ops.ones((2, 8))).shape
    TensorShape([2, 10])
    """

    def __init__(self, units: int, seed: int | None = None, **kwargs):
        activation = kwargs.pop("activation", None)
        if activation not in _LINEAR:
            raise ValueError(
                f"LinearHead has no activation (S2.4). Received: activation={activation!r}. "
                "Drop it and use a from_logits=True loss, or use keras.layers.Dense(..., "
                "activation=...) if you need one."
            )
        kwargs.setdefault("use_bias", True)
        kwargs.setdefault("kernel_initializer", initializers.linear(seed))
        super().__init__(units, activation=None, **kwargs)
