"""Endless random augmentation with stateless seeds (S0.4, "ERA").

Every function here returns an augmentation `fn(batch, seed) -> batch` for
`endless(..., augment=fn)`. `endless` hands it a `[2]` int64 stateless seed keyed by (seed, step);
the augmentation draws one random value per example (position) from it, so every batch is a fresh
random variant and a pipeline rebuilt at `start_step=k` reproduces batch `k` exactly.

Augmentations act on `x` only: `batch` may be `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`,
and `y` and the weights pass through untouched. Shapes and dtypes are preserved; integer inputs
(uint8 images) are computed in float32 and cast back with saturation.

- 1-D signals, `x` of shape `[batch, length]` or `[batch, length, channels]`:
  `random_shift`, `random_scale`, `gaussian_noise`.
- Images, `x` of shape `[batch, height, width, channels]`: `random_flip`, `random_crop`
  (pad then crop, i.e. a random translation), `random_brightness`.
- `compose(*fns)` chains augmentations, each with its own independent sub-seed.

Example:

>>> import numpy as np
>>> from toolkit.data import endless
>>> x = np.random.default_rng(0).normal(size=(64, 40)).astype("float32")
>>> y = np.zeros(64, "int64")
>>> fn = compose(random_shift(4), random_scale(0.9, 1.1), gaussian_noise(0.05))
>>> first = next(iter(endless((x, y), 8, seed=1, augment=fn).skip(3)))
>>> again = next(iter(endless((x, y), 8, seed=1, augment=fn, start_step=3)))
>>> bool(np.array_equal(first[0], again[0]))
True
"""

from typing import Any, Callable

import tensorflow as tf

from toolkit.errors import DataError

__all__ = [
    "compose",
    "gaussian_noise",
    "random_brightness",
    "random_crop",
    "random_flip",
    "random_scale",
    "random_shift",
]

Augmentation = Callable[[Any, tf.Tensor], Any]
_PAD_MODES = ("circular", "zeros", "reflect")


def random_shift(max_shift: int, *, mode: str = "circular") -> Augmentation:
    """Shifts each 1-D signal along its length by a random integer in `[-max_shift, max_shift]`.

    Args:
        max_shift: Largest shift, in samples.
        mode: `"circular"` (what leaves one end re-enters at the other), `"zeros"` (zero padded)
            or `"reflect"` (mirrored at the ends). Defaults to `"circular"`.

    Returns:
        An augmentation `fn(batch, seed) -> batch` for `x` of shape `[batch, length(, channels)]`.

    Example:

    >>> x = tf.reshape(tf.range(10.0), (2, 5))
    >>> shifted = random_shift(2)(x, tf.constant([1, 2], tf.int64))
    >>> sorted(shifted[0].numpy().tolist()) == [0.0, 1.0, 2.0, 3.0, 4.0]
    True
    """
    max_shift = _check_int("random_shift", "max_shift", max_shift)
    mode = _check_mode(mode)

    def shift(x, seed):
        _check_rank("random_shift", x, (2, 3), "[batch, length] or [batch, length, channels]")
        offsets = _uniform_ints(seed, tf.shape(x)[0], 0, 2 * max_shift + 1)
        length = tf.shape(x)[1]
        padded = _pad_axis(x, axis=1, amount=max_shift, mode=mode)
        # Output position i reads padded[offset + i]: offset == max_shift is no shift.
        positions = offsets[:, None] + tf.range(length)[None, :]
        return tf.gather(padded, positions, axis=1, batch_dims=1)

    return _on_x(shift, "random_shift")


def random_scale(min_factor: float, max_factor: float) -> Augmentation:
    """Multiplies each example by a random factor drawn uniformly from `[min_factor, max_factor]`.

    Args:
        min_factor: Smallest factor.
        max_factor: Largest factor.

    Returns:
        An augmentation `fn(batch, seed) -> batch`.

    Example:

    >>> x = tf.ones((3, 4))
    >>> scaled = random_scale(0.5, 2.0)(x, tf.constant([0, 7], tf.int64))
    >>> bool(tf.reduce_all((scaled >= 0.5) & (scaled <= 2.0)))
    True
    """
    if not 0 <= min_factor <= max_factor:
        raise DataError(
            f"`random_scale` needs 0 <= min_factor <= max_factor. Received: "
            f"min_factor={min_factor!r}, max_factor={max_factor!r}. E.g. random_scale(0.9, 1.1)."
        )

    def scale(x, seed):
        factors = tf.random.stateless_uniform(
            [tf.shape(x)[0]], seed, min_factor, max_factor, dtype=tf.float32, alg="philox"
        )
        return _as_float(x) * _per_example(factors, x)

    return _on_x(scale, "random_scale")


def gaussian_noise(stddev: float) -> Augmentation:
    """Adds independent normal noise of standard deviation `stddev` to every value.

    Args:
        stddev: Standard deviation of the noise, in the units of `x`.

    Returns:
        An augmentation `fn(batch, seed) -> batch`.

    Example:

    >>> x = tf.zeros((256, 100))
    >>> noisy = gaussian_noise(0.1)(x, tf.constant([0, 3], tf.int64))
    >>> round(float(tf.math.reduce_std(noisy)), 2)
    0.1
    """
    if not stddev >= 0:
        raise DataError(
            f"`gaussian_noise` needs stddev >= 0. Received: stddev={stddev!r}. E.g. "
            f"gaussian_noise(0.05) for signals of unit scale."
        )

    def noise(x, seed):
        values = _as_float(x)
        noise = tf.random.stateless_normal(tf.shape(values), seed, stddev=stddev, alg="philox")
        return values + tf.cast(noise, values.dtype)

    return _on_x(noise, "gaussian_noise")


def random_flip(*, horizontal: bool = True, vertical: bool = False) -> Augmentation:
    """Flips each image left-right (and/or upside-down) with probability 1/2 per example.

    Args:
        horizontal: Flip along the width. Defaults to `True`.
        vertical: Flip along the height. Defaults to `False`.

    Returns:
        An augmentation `fn(batch, seed) -> batch` for images `[batch, height, width, channels]`.

    Example:

    >>> x = tf.reshape(tf.range(2 * 1 * 3 * 1), (2, 1, 3, 1))
    >>> flipped = random_flip()(x, tf.constant([0, 1], tf.int64))
    >>> flipped.shape, flipped.dtype
    (TensorShape([2, 1, 3, 1]), tf.int32)
    """

    def flip(x, seed):
        _check_rank("random_flip", x, (4,), "[batch, height, width, channels]")
        seeds = tf.random.experimental.stateless_split(seed, 2)
        for axis, enabled, axis_seed in ((2, horizontal, seeds[0]), (1, vertical, seeds[1])):
            if enabled:
                coins = tf.random.stateless_uniform([tf.shape(x)[0]], axis_seed, alg="philox") < 0.5
                x = tf.where(coins[:, None, None, None], tf.reverse(x, [axis]), x)
        return x

    return _on_x(flip, "random_flip")


def random_crop(padding: int, *, mode: str = "zeros") -> Augmentation:
    """Pads each image by `padding` pixels on every side, then crops it back at a random offset.

    This is the usual random translation of CIFAR training: up to `padding` pixels in each
    direction, independently per example.

    Args:
        padding: Pixels added on each side before cropping (the largest translation).
        mode: `"zeros"`, `"reflect"` or `"circular"`. Defaults to `"zeros"`.

    Returns:
        An augmentation `fn(batch, seed) -> batch` for images `[batch, height, width, channels]`.

    Example:

    >>> x = tf.ones((2, 8, 8, 3))
    >>> random_crop(2)(x, tf.constant([0, 5], tf.int64)).shape
    TensorShape([2, 8, 8, 3])
    """
    padding = _check_int("random_crop", "padding", padding)
    mode = _check_mode(mode)

    def crop(x, seed):
        _check_rank("random_crop", x, (4,), "[batch, height, width, channels]")
        seeds = tf.random.experimental.stateless_split(seed, 2)
        batch = tf.shape(x)[0]
        for axis, axis_seed in ((1, seeds[0]), (2, seeds[1])):
            offsets = _uniform_ints(axis_seed, batch, 0, 2 * padding + 1)
            positions = offsets[:, None] + tf.range(tf.shape(x)[axis])[None, :]
            x = tf.gather(_pad_axis(x, axis, padding, mode), positions, axis=axis, batch_dims=1)
        return x

    return _on_x(crop, "random_crop")


def random_brightness(max_delta: float) -> Augmentation:
    """Adds a random offset drawn uniformly from `[-max_delta, max_delta]` to each image.

    Args:
        max_delta: Largest offset, in the units of `x` (e.g. `0.1` for images in `[0, 1]`,
            `25` for uint8 images; uint8 results saturate at 0 and 255).

    Returns:
        An augmentation `fn(batch, seed) -> batch`.

    Example:

    >>> x = tf.fill((2, 4, 4, 1), tf.constant(250, tf.uint8))
    >>> random_brightness(20)(x, tf.constant([0, 1], tf.int64)).dtype
    tf.uint8
    """
    if not max_delta >= 0:
        raise DataError(
            f"`random_brightness` needs max_delta >= 0. Received: max_delta={max_delta!r}. E.g. "
            f"random_brightness(0.1) for images in [0, 1]."
        )

    def brightness(x, seed):
        deltas = tf.random.stateless_uniform(
            [tf.shape(x)[0]], seed, -max_delta, max_delta, dtype=tf.float32, alg="philox"
        )
        return _as_float(x) + _per_example(deltas, x)

    return _on_x(brightness, "random_brightness")


def compose(*fns: Augmentation) -> Augmentation:
    """Chains augmentations, applied left to right, each with an independent sub-seed.

    Sub-seed `i` is `stateless_fold_in(seed, i)`, so adding an augmentation at the end leaves the
    random draws of the earlier ones unchanged.

    Args:
        *fns: Augmentations `fn(batch, seed) -> batch`.

    Returns:
        An augmentation `fn(batch, seed) -> batch`.

    Example:

    >>> fn = compose(random_flip(), random_crop(4), random_brightness(0.1))
    >>> fn(tf.zeros((2, 32, 32, 3)), tf.constant([0, 1], tf.int64)).shape
    TensorShape([2, 32, 32, 3])
    """
    for i, fn in enumerate(fns):
        if not callable(fn):
            raise DataError(
                f"`compose` takes augmentations `fn(batch, seed) -> batch`. Received a "
                f"{type(fn).__name__} at position {i}: {fn!r}. Pass augmentations such as "
                f"`random_shift(4)`."
            )

    def composed(batch, seed):
        seed = tf.cast(seed, tf.int64)
        for i, fn in enumerate(fns):
            sub_seed = tf.random.experimental.stateless_fold_in(seed, i, alg="philox")
            batch = fn(batch, sub_seed)
        return batch

    return composed


def _on_x(transform: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], name: str) -> Augmentation:
    """Lifts `transform(x, seed)` to batches `x`, `(x,)`, `(x, y)`, `(x, y, w)`; keeps the dtype."""

    def augment(batch, seed):
        seed = tf.cast(seed, tf.int64)
        x, rest = (batch[0], tuple(batch[1:])) if isinstance(batch, tuple) else (batch, None)
        if isinstance(x, (dict, list, tuple)):
            raise DataError(
                f"`{name}` augments a single input tensor `x`. Received x as a "
                f"{type(x).__name__} (a multi-input model). Augment that input before building "
                f"the source, or write `fn(batch, seed)` that applies `{name}` to one input."
            )
        x = tf.convert_to_tensor(x)
        out = _restore_dtype(transform(x, seed), x.dtype)
        return out if rest is None else (out,) + rest

    augment.__name__ = name
    return augment


def _as_float(x: tf.Tensor) -> tf.Tensor:
    return x if x.dtype.is_floating else tf.cast(x, tf.float32)


def _restore_dtype(values: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    if values.dtype == dtype:
        return values
    if dtype.is_integer:
        return tf.saturate_cast(tf.round(values), dtype)
    return tf.cast(values, dtype)


def _per_example(values: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """Reshapes `[batch]` values to broadcast over the example dimensions of `x`."""
    shape = tf.concat([tf.shape(values), tf.ones([tf.rank(x) - 1], tf.int32)], axis=0)
    return tf.cast(tf.reshape(values, shape), _as_float(x).dtype)


def _uniform_ints(seed: tf.Tensor, size: tf.Tensor, low: int, high: int) -> tf.Tensor:
    return tf.random.stateless_uniform(
        [size], seed, minval=low, maxval=high, dtype=tf.int32, alg="philox"
    )


def _pad_axis(x: tf.Tensor, axis: int, amount: int, mode: str) -> tf.Tensor:
    if amount == 0:
        return x
    if mode == "circular":
        size = tf.shape(x)[axis]
        # Works for any amount, even larger than the axis: index modulo its length.
        indices = tf.math.floormod(tf.range(-amount, size + amount), size)
        return tf.gather(x, indices, axis=axis)
    paddings = [[0, 0]] * x.shape.rank
    paddings[axis] = [amount, amount]
    return tf.pad(x, paddings, mode="REFLECT" if mode == "reflect" else "CONSTANT")


def _check_rank(name: str, x: tf.Tensor, ranks: tuple, expected: str) -> None:
    if x.shape.rank not in ranks:
        raise DataError(
            f"`{name}` expects x of shape {expected}. Received x of shape {tuple(x.shape)}. "
            f"Use the 1-D augmentations for signals and the image ones for images."
        )


def _check_int(name: str, argument: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DataError(
            f"`{name}` needs a non-negative integer `{argument}`. Received: "
            f"{argument}={value!r}. E.g. {name}(4)."
        )
    return value


def _check_mode(mode: str) -> str:
    if mode not in _PAD_MODES:
        raise DataError(f"`mode` must be one of {_PAD_MODES!r}. Received: mode={mode!r}.")
    return mode
