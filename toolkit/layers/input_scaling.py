"""`InputScaling`: tanh(x / C) per feature, then standardization, learned by `adapt()`."""

import itertools

import keras
import numpy as np
import tensorflow as tf

from toolkit.errors import DataError

__all__ = ["InputScaling"]

# Where the `quantile`-th |x| lands on tanh's argument. tanh(2) = 0.964 and tanh'(2) = 0.07: values
# up to that quantile keep at least 7% of the linear slope; only values beyond 3.8 C (at least
# 1.9x that quantile) reach |tanh| > 0.999, where tanh' < 0.002 and values become indistinct.
_QUANTILE_ARGUMENT = 2.0
# Statistics below this variance are treated as a constant feature (output 0): float32 cannot
# resolve differences of tanh values much finer than this.
_MIN_VARIANCE = 1e-12
# Log-bucket sketch of |x|: one zero bucket, then `_SUBBUCKETS` linear buckets per power of two
# over every float32 exponent. The midpoint of a bucket is within 6.25% of any value in it.
_SUBBUCKETS = 8
_MIN_EXPONENT, _MAX_EXPONENT = -149, 129
_NUM_BUCKETS = 1 + (_MAX_EXPONENT - _MIN_EXPONENT + 1) * _SUBBUCKETS
# Arrays and tensors are streamed in chunks of about this many values.
_CHUNK_VALUES = 1 << 20


@keras.saving.register_keras_serializable(package="toolkit")
class InputScaling(keras.layers.Layer):
    """Squashes each feature with tanh(x / C), then standardizes it; both learned by `adapt()`.

    Plain standardization (`keras.layers.Normalization`) fails on heavy-tailed features: on values
    spanning [0, 1.4e8] the few largest values dominate the standard deviation, so almost every
    example lands in a tiny interval near one point and the network cannot tell them apart. This
    layer first maps each feature through tanh(x / C) (S2.8), which bounds the tail, and then
    subtracts the mean and divides by the standard deviation of tanh(x / C) (S2.7). The statistics
    are weights of the layer, so a saved model applies exactly the training transform to new data.

    **How C is chosen.** For each feature, C = q / 2 where q is the `quantile` (default 99%) of
    |x| over the adapt data. The `quantile`-th value then lands at tanh(2) = 0.96, where tanh still
    has 7% of its linear slope, so the bulk of the data stays distinguishable; only values above
    3.8 C (at least 1.9 q) reach |tanh| > 0.999, at most `1 - quantile` of the adapt data (1%). A
    quantile, unlike the maximum or the standard deviation, ignores the handful of extreme values
    that make heavy tails hard. Using |x| makes the rule work for negative values (tanh is odd).
    The transform is not centred: a feature far from zero compared with its spread (e.g. calendar
    years) lands on a narrow piece of tanh; standardization restores its spread, but subtracting
    an offset before the model is better. If more than `quantile` of a feature is exactly 0, C is
    half its largest |x|; a feature that is all zeros gets C = 1. A constant feature (variance of
    tanh(x / C) below 1e-12) is output as 0, never divided by zero.

    **Streaming.** `adapt()` reads the data twice, batch by batch: the first pass fills a
    log-bucket sketch of |x| per feature (8 buckets per power of two, so quantiles are exact
    to 6.25%, plenty for a scale constant, in 2,233 counters per feature whatever the data size)
    and checks for NaN/Inf; the second pass accumulates the mean and variance of tanh(x / C) with
    Chan's parallel update in float64. Re-iterable data (arrays, tensors, finite `tf.data`
    datasets, lists) is read twice; a one-shot iterator (a generator) is kept in memory between
    the passes.

    Args:
        axis: The axis or axes that have their own statistics, like `keras.layers.Normalization`:
            `-1` gives one C, mean and variance per index of the last axis; a tuple keeps several
            axes; `None` gives a single scalar for all values. The batch axis cannot be kept.
            Defaults to `-1`.
        quantile: Quantile of |x| that lands at tanh(2); must be in (0, 1]. Lower it if more than
            1% of values are extreme outliers. Defaults to `0.99`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`). The dtype defaults to `"float32"`
            even under a mixed-precision policy, because raw inputs such as 1.4e8 overflow float16.

    Call arguments:
        inputs: Tensor of raw features.

    Input shape:
        Any shape `(batch, ...)` whose kept axes match the adapt data.

    Output shape:
        Same as the input.

    Example:

    >>> import numpy as np
    >>> from toolkit.layers import InputScaling
    >>> x = np.random.default_rng(0).lognormal(10.0, 2.5, size=(2000, 3)).clip(0, 1.4e8)
    >>> layer = InputScaling()
    >>> layer.adapt(x)
    >>> y = np.asarray(layer(x))
    >>> bool(np.all(abs(y.mean(axis=0)) < 1e-3)), bool(np.all(abs(y.std(axis=0) - 1) < 1e-3))
    (True, True)
    """

    def __init__(self, axis: int | tuple[int, ...] | None = -1, quantile: float = 0.99, **kwargs):
        # Raw inputs can exceed float16's range (65504); compute this layer in float32.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not 0.0 < float(quantile) <= 1.0:
            raise ValueError(
                f"InputScaling requires 0 < quantile <= 1. Received: quantile={quantile!r}. "
                "Pass a fraction such as 0.99."
            )
        self.axis = () if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
        self.quantile = float(quantile)
        self._build_input_shape = None

    def build(self, input_shape):
        ndim = len(input_shape)
        if any(not -ndim <= a < ndim for a in self.axis):
            raise ValueError(
                f"InputScaling axis={self.axis!r} is out of range for inputs of rank {ndim} "
                f"(shape {tuple(input_shape)!r}). Pass axes in [-{ndim}, {ndim})."
            )
        self._keep_axis = tuple(sorted(a % ndim for a in self.axis))
        if 0 in self._keep_axis:
            raise ValueError(
                f"InputScaling cannot keep statistics per index of the batch axis 0. Received: "
                f"axis={self.axis!r} for inputs of shape {tuple(input_shape)!r}. For inputs of "
                "shape (batch,), pass axis=None."
            )
        if any(input_shape[a] is None for a in self._keep_axis):
            raise ValueError(
                f"InputScaling needs a known size on every kept axis. Received: axis={self.axis!r}"
                f", input shape {tuple(input_shape)!r}. Give the model input a fixed shape."
            )
        self._reduce_axis = tuple(a for a in range(ndim) if a not in self._keep_axis)
        self._stats_shape = tuple(int(input_shape[a]) for a in self._keep_axis)
        self._broadcast_shape = [
            int(input_shape[a]) if a in self._keep_axis else 1 for a in range(ndim)
        ]
        self._build_input_shape = tuple(input_shape)
        weight = dict(shape=self._stats_shape, trainable=False)
        self.scale = self.add_weight(name="scale", initializer="ones", **weight)
        self.mean = self.add_weight(name="mean", initializer="zeros", **weight)
        self.variance = self.add_weight(name="variance", initializer="ones", **weight)
        self.count = self.add_weight(
            name="count", shape=(), dtype="int64", initializer="zeros", trainable=False
        )

    def adapt(self, data, steps: int | None = None) -> None:
        """Learns C, then the mean and variance of tanh(x / C), for each kept index.

        Args:
            data: The inputs `x`: a NumPy array, a tensor, a batched `tf.data.Dataset` or any
                iterable of batches; `(x, y)` or `(x, y, sample_weight)` elements use `x`.
            steps: Number of batches to read per pass; required for an endless dataset, such as
                one from `toolkit.data.endless`. Defaults to `None` (all batches).

        Raises:
            DataError: The data holds NaN or Inf (the message names the feature), is empty, is
                endless without `steps`, or does not match the layer's shape.

        Example:

        >>> import numpy as np
        >>> layer = InputScaling()
        >>> layer.adapt(np.array([[1.0, -6.0], [2.0, 6.0], [4.0, 0.0]]))
        >>> np.asarray(layer.scale).tolist()  # Half the 99% quantile of |x|: here the maximum.
        [2.0, 3.0]
        """
        batches = _BatchStream(data, steps)
        if not self.built:
            self.build((None,) + batches.first.shape[1:])
        sketch = np.zeros((self._num_features(), _NUM_BUCKETS), np.int64)
        max_abs = np.zeros(self._num_features())
        for index, batch in enumerate(batches):
            values = self._features(batch, index)
            np.maximum(max_abs, np.abs(values).max(axis=0, initial=0.0), out=max_abs)
            sketch += _bucket_counts(values)
        scale = _scale_from_sketch(sketch, max_abs, self.quantile)
        count, mean, m2 = 0, 0.0, 0.0
        for batch in batches:
            squashed = np.tanh(self._features(batch) / scale)
            n = squashed.shape[0]
            if n == 0:
                continue
            batch_mean = squashed.mean(axis=0)
            delta = batch_mean - mean
            total = count + n
            mean = mean + delta * n / total
            m2 = m2 + ((squashed - batch_mean) ** 2).sum(axis=0) + delta**2 * count * n / total
            count = total
        if count == 0:
            raise DataError("InputScaling.adapt() received only empty batches. Pass some data.")
        self.scale.assign(scale.reshape(self._stats_shape))
        self.mean.assign(np.broadcast_to(mean, scale.shape).reshape(self._stats_shape))
        self.variance.assign((np.broadcast_to(m2, scale.shape) / count).reshape(self._stats_shape))
        self.count.assign(count)
        self.finalize_state()

    def finalize_state(self) -> None:
        """Checks the statistics after `adapt()` or loading; `call` reads the weights directly.

        Reading the weights in `call` (rather than caching tensors here) keeps the layer correct
        when its weights are restored another way, e.g. by `tf.train.Checkpoint`.
        """
        if not self.built:
            return
        scale = keras.ops.convert_to_numpy(self.scale)
        if not np.all(np.isfinite(scale) & (scale > 0)):
            raise DataError(
                f"InputScaling `{self.name}` holds a non-positive or non-finite scale C "
                f"({scale.ravel()[:5].tolist()}...). Expected C > 0. Re-run adapt() on finite data."
            )

    def load_own_variables(self, store):
        super().load_own_variables(store)
        self.finalize_state()

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype)
        scale = keras.ops.reshape(self.scale, self._broadcast_shape)
        mean = keras.ops.reshape(self.mean, self._broadcast_shape)
        variance = keras.ops.reshape(self.variance, self._broadcast_shape)
        # Constant features have no spread to restore: output 0 instead of dividing by ~0.
        inverse_std = keras.ops.where(
            variance > _MIN_VARIANCE,
            keras.ops.rsqrt(keras.ops.maximum(variance, _MIN_VARIANCE)),
            keras.ops.zeros_like(variance),
        )
        return (keras.ops.tanh(x / scale) - mean) * inverse_std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"axis": self.axis, "quantile": self.quantile})
        return config

    def get_build_config(self):
        if self._build_input_shape is not None:
            return {"input_shape": self._build_input_shape}
        return None

    def build_from_config(self, config):
        if config:
            self.build(config["input_shape"])

    def _num_features(self) -> int:
        return int(np.prod(self._stats_shape, dtype=np.int64))

    def _features(self, batch: np.ndarray, index: int | None = None) -> np.ndarray:
        """Returns `batch` as float64 of shape (values, features); checks shape (and finiteness)."""
        same_rank = batch.ndim == len(self._build_input_shape)
        if not same_rank or tuple(batch.shape[a] for a in self._keep_axis) != self._stats_shape:
            raise DataError(
                f"InputScaling `{self.name}` was built for inputs of shape "
                f"{self._build_input_shape!r} but adapt() received a batch of shape "
                f"{tuple(batch.shape)!r}. Pass data whose axes {self._keep_axis!r} match."
            )
        if index is not None and not np.all(np.isfinite(batch)):
            position = tuple(int(i) for i in np.argwhere(~np.isfinite(batch))[0])
            feature = tuple(position[a] for a in self._keep_axis)
            feature = feature[0] if len(feature) == 1 else feature
            raise DataError(
                f"InputScaling.adapt() found {batch[position]} in feature {feature!r} (example "
                f"{position[0]} of batch {index}). Expected finite values. Drop or impute the "
                "rows holding NaN/Inf before adapt() and training."
            )
        order = self._reduce_axis + self._keep_axis
        return np.transpose(batch, order).reshape(-1, self._num_features()).astype(np.float64)


class _BatchStream:
    """Iterates over the `x` batches of `data` as NumPy arrays, any number of times."""

    def __init__(self, data, steps: int | None):
        if isinstance(data, (tuple, dict)):
            raise DataError(
                f"InputScaling.adapt() received a {type(data).__name__}; it takes the inputs `x` "
                "only. Pass the feature array (e.g. adapt(x), not adapt((x, y)))."
            )
        if isinstance(data, tf.data.Dataset) and steps is None:
            if int(data.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
                raise DataError(
                    "InputScaling.adapt() received an endless tf.data.Dataset and would never "
                    "finish. Pass steps=N to read N batches."
                )
        if isinstance(data, np.ndarray) or tf.is_tensor(data) or keras.ops.is_tensor(data):
            array = np.asarray(keras.ops.convert_to_numpy(data))
            if array.ndim == 0:
                raise DataError("InputScaling.adapt() received a scalar. Pass a batch of inputs.")
            rows = max(1, _CHUNK_VALUES // max(1, array[:1].size))
            data = [array[i : i + rows] for i in range(0, len(array), rows)]
        if not hasattr(data, "__iter__"):
            raise DataError(
                f"InputScaling.adapt() cannot read a {type(data).__name__}. Pass a NumPy array, "
                "a tensor, a batched tf.data.Dataset or an iterable of batches."
            )
        self._steps = steps
        if iter(data) is data:
            # A one-shot iterator: keep its batches for the second pass.
            data = list(itertools.islice(data, steps))
        self._data = data
        self.first = next(iter(self), None)
        if self.first is None:
            raise DataError("InputScaling.adapt() received no data. Pass at least one batch.")

    def __iter__(self):
        for batch in itertools.islice(self._data, self._steps):
            if isinstance(batch, tuple):
                batch = batch[0]
            yield np.asarray(keras.ops.convert_to_numpy(batch))


def _bucket_counts(values: np.ndarray) -> np.ndarray:
    """Counts |values| (shape (n, features)) per feature in the log-bucket sketch."""
    mantissa, exponent = np.frexp(np.abs(values))
    exponent = np.clip(exponent, _MIN_EXPONENT, _MAX_EXPONENT)
    sub = np.floor((2.0 * mantissa - 1.0) * _SUBBUCKETS).astype(np.int64)
    bucket = np.where(values == 0, 0, 1 + (exponent - _MIN_EXPONENT) * _SUBBUCKETS + sub)
    flat = bucket + _NUM_BUCKETS * np.arange(values.shape[1])
    counts = np.bincount(flat.ravel(), minlength=_NUM_BUCKETS * values.shape[1])
    return counts.reshape(values.shape[1], _NUM_BUCKETS)


def _scale_from_sketch(sketch: np.ndarray, max_abs: np.ndarray, quantile: float) -> np.ndarray:
    """C per feature: the `quantile` of |x| (bucket midpoint, at most max |x|) over 2."""
    cumulative = np.cumsum(sketch, axis=1)
    rank = np.maximum(1, np.ceil(quantile * cumulative[:, -1]))
    bucket = np.argmax(cumulative >= rank[:, None], axis=1)
    exponent = (bucket - 1) // _SUBBUCKETS + _MIN_EXPONENT
    sub = (bucket - 1) % _SUBBUCKETS
    midpoint = np.ldexp(0.5 * (1.0 + (sub + 0.5) / _SUBBUCKETS), exponent)
    magnitude = np.where(bucket == 0, max_abs, np.minimum(midpoint, max_abs))
    return np.where(magnitude > 0, magnitude / _QUANTILE_ARGUMENT, 1.0)
