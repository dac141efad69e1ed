"""Ready models built from `toolkit.layers`: `mlp` and `convnet`, following the conventions.

Both return an uncompiled functional `keras.Model` whose output is linear (logits or raw
regression values): compile it with a `from_logits=True` loss for classification.

Example:

>>> import keras
>>> import numpy as np
>>> from toolkit.models import mlp
>>> x = np.random.default_rng(0).lognormal(8.0, 2.0, size=(128, 10))
>>> model = mlp((10,), 3, hidden_units=(32,), adapt_data=x, seed=0)
>>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> model.output_shape
(None, 3)
"""

import warnings
from collections.abc import Sequence

import keras
import numpy as np

from toolkit.errors import DataError, ModelError
from toolkit.layers import ConvBlock, DenseBlock, InputScaling, LinearHead

__all__ = ["mlp", "convnet"]

_SCALINGS = ("tanh", "standardize", "none")
# A trailing axis this small is read as channels: (length, channels), not (height, width).
_MAX_CHANNELS = 4


def mlp(
    input_shape: Sequence[int],
    num_outputs: int,
    *,
    hidden_units: Sequence[int] = (128, 128),
    input_scaling: str = "tanh",
    adapt_data=None,
    seed: int | None = None,
    name: str = "mlp",
) -> keras.Model:
    """Builds a multilayer perceptron: input scaling, ReLU `DenseBlock`s, a `LinearHead`.

    Inputs with several axes are scaled per element and then flattened.

    Args:
        input_shape: Shape of one example, without the batch axis, e.g. `(40,)`.
        num_outputs: Number of outputs: classes (logits) or regression targets.
        hidden_units: Width of each hidden layer, in order; `()` gives a linear model.
            Defaults to `(128, 128)`.
        input_scaling: `"tanh"` (`toolkit.layers.InputScaling`: tanh(x / C) then standardize,
            for heavy-tailed features), `"standardize"` (`keras.layers.Normalization`) or
            `"none"`. The layer is named `"input_scaling"`. Defaults to `"tanh"`.
        adapt_data: Inputs `x` (array, tensor or batched `tf.data.Dataset`) to adapt the scaling
            layer on. Without it the layer is left unadapted, with a warning: call
            `model.get_layer("input_scaling").adapt(x)` before training. Ignored with
            `input_scaling="none"`. Defaults to `None`.
        seed: Seed for reproducible initial weights; each layer gets its own seed derived from
            it. Defaults to `None` (Keras's global random state).
        name: Model name. Defaults to `"mlp"`.

    Returns:
        An uncompiled `keras.Model` with linear outputs of shape `(batch, num_outputs)`.

    Raises:
        ModelError: An argument is invalid (the message names it).
        DataError: `adapt_data` holds NaN/Inf or does not match `input_shape`.

    Example:

    >>> import numpy as np
    >>> model = mlp((8,), 2, hidden_units=(16, 16), adapt_data=np.ones((4, 8)), seed=0)
    >>> [layer.name for layer in model.layers]
    ['inputs', 'input_scaling', 'dense_block_0', 'dense_block_1', 'head']
    """
    input_shape = _check_shape(input_shape)
    _check_count("num_outputs", num_outputs)
    hidden_units = _check_counts("hidden_units", hidden_units, allow_empty=True)
    inputs = keras.Input(input_shape, name="inputs")
    per_element = tuple(range(1, len(input_shape) + 1))
    x = _scale(inputs, input_scaling, per_element, adapt_data)
    if len(input_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    for index, units in enumerate(hidden_units):
        x = DenseBlock(units, seed=_layer_seed(seed, index), name=f"dense_block_{index}")(x)
    outputs = LinearHead(num_outputs, seed=_layer_seed(seed, len(hidden_units)), name="head")(x)
    return keras.Model(inputs, outputs, name=name)


def convnet(
    input_shape: Sequence[int],
    num_outputs: int,
    *,
    filters: Sequence[int] = (32, 32, 32),
    kernel_size: int = 5,
    pool: str | None = "max",
    dense_units: Sequence[int] = (128,),
    input_scaling: str = "standardize",
    adapt_data=None,
    seed: int | None = None,
    name: str = "convnet",
    rank: int | None = None,
) -> keras.Model:
    """Builds a 1-D or 2-D convolutional network: `ConvBlock`s, flatten, `DenseBlock`s, a head.

    `(length,)` and `(length, channels)` inputs give a 1-D network; `(height, width)` and
    `(height, width, channels)` a 2-D one. A two-axis shape is read as `(length, channels)` when
    its last axis is 4 or less, else as `(height, width)`; pass `rank` to decide yourself.
    Each block halves the spatial size with max pooling (S2.11); 32 filters per block is the
    default because 64-128 are often redundant in small networks (S2.10). The feature maps are
    flattened, not globally pooled, so the head still sees where a feature occurred.

    Args:
        input_shape: Shape of one example, without the batch axis, e.g. `(40,)` or `(28, 28)`.
        num_outputs: Number of outputs: classes (logits) or regression targets.
        filters: Filters of each `ConvBlock`, in order (at least one). Defaults to `(32, 32, 32)`.
        kernel_size: Convolution window size along each spatial axis. Defaults to `5`.
        pool: `"max"` (2x max pooling after each convolution) or `None`. Defaults to `"max"`.
        dense_units: Widths of the hidden dense layers after flattening. Defaults to `(128,)`.
        input_scaling: `"standardize"` (`keras.layers.Normalization`), `"tanh"`
            (`toolkit.layers.InputScaling`) or `"none"`; statistics are per channel (one set for
            inputs without a channel axis). Defaults to `"standardize"`.
        adapt_data: Inputs `x` to adapt the scaling layer on; see `mlp`. Defaults to `None`.
        seed: Seed for reproducible initial weights. Defaults to `None`.
        name: Model name. Defaults to `"convnet"`.
        rank: `1` or `2` to override the rank inferred from `input_shape`. Defaults to `None`.

    Returns:
        An uncompiled `keras.Model` with linear outputs of shape `(batch, num_outputs)`.

    Raises:
        ModelError: An argument is invalid (the message names it).
        DataError: `adapt_data` holds NaN/Inf or does not match `input_shape`.

    Example:

    >>> import numpy as np
    >>> model = convnet((40,), 10, adapt_data=np.random.default_rng(0).normal(size=(64, 40)))
    >>> model.output_shape
    (None, 10)
    """
    input_shape = _check_shape(input_shape)
    _check_count("num_outputs", num_outputs)
    filters = _check_counts("filters", filters, allow_empty=False)
    dense_units = _check_counts("dense_units", dense_units, allow_empty=True)
    _check_count("kernel_size", kernel_size)
    rank = _infer_rank(input_shape, rank)
    has_channels = len(input_shape) == rank + 1
    inputs = keras.Input(input_shape, name="inputs")
    x = _scale(inputs, input_scaling, -1 if has_channels else None, adapt_data)
    if not has_channels:
        x = keras.layers.Reshape(input_shape + (1,), name="add_channel_axis")(x)
    for index, count in enumerate(filters):
        x = ConvBlock(
            count, kernel_size, rank=rank, pool=pool, seed=_layer_seed(seed, index),
            name=f"conv_block_{index}",
        )(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for index, units in enumerate(dense_units, start=len(filters)):
        x = DenseBlock(units, seed=_layer_seed(seed, index), name=f"dense_block_{index}")(x)
    head_seed = _layer_seed(seed, len(filters) + len(dense_units))
    outputs = LinearHead(num_outputs, seed=head_seed, name="head")(x)
    return keras.Model(inputs, outputs, name=name)


def _scale(inputs, kind: str, axis, adapt_data):
    """Applies the input scaling layer `kind` (adapted on `adapt_data` when given) to `inputs`."""
    if kind not in _SCALINGS:
        raise ModelError(
            f"Unknown input_scaling={kind!r}. Expected one of {_SCALINGS!r}: 'tanh' for "
            "heavy-tailed features, 'standardize' for well-behaved ones."
        )
    if kind == "none":
        return inputs
    if kind == "tanh":
        layer = InputScaling(axis=axis, name="input_scaling")
    else:
        layer = keras.layers.Normalization(axis=axis, name="input_scaling")
    if adapt_data is None:
        warnings.warn(
            f"input_scaling={kind!r} without adapt_data leaves the `input_scaling` layer "
            "unadapted (identity statistics: raw values pass through). Pass adapt_data=x_train, "
            "or call model.get_layer('input_scaling').adapt(x_train) before training.",
            stacklevel=3,
        )
    else:
        layer.adapt(adapt_data)
        if kind == "standardize":
            _check_finite_statistics(layer)
    return layer(inputs)


def _check_finite_statistics(layer: keras.layers.Normalization) -> None:
    """`Normalization.adapt` turns NaN/Inf in the data into NaN statistics silently."""
    statistics = keras.ops.convert_to_numpy(layer.mean) + keras.ops.convert_to_numpy(layer.variance)
    bad = np.argwhere(~np.isfinite(np.reshape(statistics, (-1,))))
    if bad.size:
        raise DataError(
            f"adapt_data holds NaN or Inf (feature {int(bad[0][0])} got a non-finite mean or "
            "variance). Expected finite values. Drop or impute those rows before building the "
            "model."
        )


def _layer_seed(seed: int | None, index: int) -> int | None:
    """A distinct, reproducible seed per layer: a seeded Keras initializer repeats its values."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _infer_rank(input_shape: tuple[int, ...], rank: int | None) -> int:
    allowed = {1: (1, 2), 2: (2, 3)}
    if rank is None:
        if len(input_shape) == 2:
            return 1 if input_shape[-1] <= _MAX_CHANNELS else 2
        rank = {1: 1, 3: 2}.get(len(input_shape))
        if rank is None:
            raise ModelError(
                f"convnet needs input_shape (length,), (length, channels), (height, width) or "
                f"(height, width, channels). Received: input_shape={input_shape!r}."
            )
        return rank
    if rank not in allowed or len(input_shape) not in allowed[rank]:
        raise ModelError(
            f"convnet rank={rank!r} does not fit input_shape={input_shape!r}. Use rank=1 for "
            "(length,) or (length, channels), rank=2 for (height, width) or (height, width, "
            "channels)."
        )
    return rank


def _check_shape(input_shape) -> tuple[int, ...]:
    try:
        shape = tuple(int(size) for size in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(size <= 0 for size in shape) or shape != tuple(input_shape):
        raise ModelError(
            f"input_shape must be a non-empty tuple of positive ints (one example, no batch "
            f"axis). Received: input_shape={input_shape!r}. Example: input_shape=(40,)."
        )
    return shape


def _check_count(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ModelError(f"{name} must be a positive int. Received: {name}={value!r}.")


def _check_counts(name: str, values, *, allow_empty: bool) -> tuple[int, ...]:
    if isinstance(values, (int, np.integer)):
        values = (values,)
    values = tuple(values)
    if not values and not allow_empty:
        raise ModelError(f"{name} needs at least one entry. Received: {name}={values!r}.")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ModelError(
                f"{name} must hold positive ints. Received: {name}={values!r}. "
                f"Example: {name}=(32, 32)."
            )
    return tuple(int(value) for value in values)
