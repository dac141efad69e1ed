"""Variance-scaling initializer presets (S2.6).

Each weight is drawn with variance `scale / fan_in`, so the variance of a layer's output matches its
input whatever the layer's width: signals and gradients reach deep layers without clipping or batch
normalization hiding an exploding start. The scale depends on what follows the layer:

- `relu()`: scale 2 (He et al.): ReLU zeroes half of its input, so it keeps half the variance;
  doubling the weights' variance compensates.
- `linear()`: scale 1 (LeCun): for layers with no activation, such as output heads.

Both return plain `keras.initializers.VarianceScaling` instances, so they serialize with the model.
Keras's own default, Glorot/Xavier uniform, averages fan-in and fan-out and under-scales ReLU
layers; `toolkit.lint` reports it.

Example:

>>> import keras
>>> from toolkit import initializers
>>> layer = keras.layers.Dense(64, activation="relu", kernel_initializer=initializers.relu(seed=0))
>>> initializers.relu().get_config()["scale"]
2.0
"""

import keras

__all__ = ["relu", "linear"]


def relu(seed: int | None = None) -> keras.initializers.VarianceScaling:
    """He initializer for layers followed by ReLU: variance `2 / fan_in`, truncated normal.

    Args:
        seed: Integer seed for reproducible weights. A seeded Keras initializer returns the same
            values on every call, so give each layer its own seed. Defaults to `None` (drawn from
            Keras's global random state, see `keras.utils.set_random_seed`).

    Returns:
        A `keras.initializers.VarianceScaling(2.0, "fan_in", "truncated_normal")`.

    Example:

    >>> init = relu(seed=1)
    >>> (init.scale, init.mode, init.distribution)
    (2.0, 'fan_in', 'truncated_normal')
    """
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_in", distribution="truncated_normal", seed=seed
    )


def linear(seed: int | None = None) -> keras.initializers.VarianceScaling:
    """LeCun initializer for layers without activation: variance `1 / fan_in`, truncated normal.

    Use it for linear output heads (logits, regression outputs) and other linear projections.

    Args:
        seed: Integer seed for reproducible weights; give each layer its own seed. Defaults to
            `None` (drawn from Keras's global random state).

    Returns:
        A `keras.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal")`.

    Example:

    >>> init = linear(seed=1)
    >>> (init.scale, init.mode)
    (1.0, 'fan_in')
    """
    return keras.initializers.VarianceScaling(
        scale=1.0, mode="fan_in", distribution="truncated_normal", seed=seed
    )
