"""`ConvBlock`: convolution + ReLU + max pooling with the conventions as defaults (S2.3-S2.11)."""

import keras

from toolkit import initializers

__all__ = ["ConvBlock"]

_CONVOLUTIONS = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D}
_POOLINGS = {1: keras.layers.MaxPooling1D, 2: keras.layers.MaxPooling2D}


@keras.saving.register_keras_serializable(package="toolkit")
class ConvBlock(keras.layers.Layer):
    """A 1-D or 2-D convolution with ReLU, bias and He init, then optional 2x max pooling.

    The convolution follows the same conventions as `DenseBlock` (ReLU S2.3, bias S2.5,
    variance-scaling init with scale 2 over the fan-in S2.6) with `"same"` padding. Max pooling
    with window and stride 2 then halves each spatial size, keeping the strongest response in
    each window so that features survive small shifts (S2.11). Keep filter counts moderate: 32
    per block is a good start; 128 is usually redundant (S2.10).

    Args:
        filters: Number of convolution filters.
        kernel_size: Size of the convolution window (an int, or a tuple of `rank` ints).
        rank: `1` for sequences `(batch, length, channels)`, `2` for images
            `(batch, height, width, channels)`. Defaults to `1`.
        pool: `"max"` for 2x max pooling after the convolution, or `None`. Defaults to `"max"`.
        seed: Seed of the convolution's kernel initializer. Defaults to `None` (Keras's global
            random state).
        **kwargs: Base layer keyword arguments (`name`, `dtype`).

    Call arguments:
        inputs: Tensor of shape `(batch, *spatial, channels)` with `rank` spatial axes.

    Input shape:
        `(batch, length, channels)` for `rank=1`, `(batch, height, width, channels)` for `rank=2`.

    Output shape:
        Same rank; `filters` channels; each spatial size halved (rounded up) when `pool="max"`.

    Example:

    >>> import keras
    >>> from toolkit.layers import ConvBlock
    >>> block = ConvBlock(32, 5, rank=1, seed=0)
    >>> block(keras.ops.ones((2, 40, 1))).shape
    TensorShape([2, 20, 32])
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, ...],
        rank: int = 1,
        pool: str | None = "max",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if rank not in _CONVOLUTIONS:
            raise ValueError(
                f"ConvBlock supports rank 1 (sequences) or 2 (images). Received: rank={rank!r}. "
                "Pass rank=1 or rank=2."
            )
        if pool not in ("max", None):
            raise ValueError(
                f"ConvBlock supports pool='max' or pool=None. Received: pool={pool!r}. "
                "Max pooling keeps features under small shifts (S2.11)."
            )
        self.filters = filters
        self.kernel_size = kernel_size
        self.rank = rank
        self.pool = pool
        self.seed = seed
        self.convolution = _CONVOLUTIONS[rank](
            filters,
            kernel_size,
            padding="same",
            activation="relu",
            use_bias=True,
            kernel_initializer=initializers.relu(seed),
            dtype=self.dtype_policy,
            name="convolution",
        )
        self.pooling = (
            _POOLINGS[rank](pool_size=2, padding="same", dtype=self.dtype_policy, name="pooling")
            if pool == "max"
            else None
        )

    def build(self, input_shape):
        # Build the sublayers now so that saved weights can be loaded into them.
        self.convolution.build(input_shape)
        if self.pooling is not None:
            self.pooling.build(self.convolution.compute_output_shape(input_shape))

    def call(self, inputs):
        outputs = self.convolution(inputs)
        return outputs if self.pooling is None else self.pooling(outputs)

    def compute_output_shape(self, input_shape):
        shape = self.convolution.compute_output_shape(input_shape)
        return shape if self.pooling is None else self.pooling.compute_output_shape(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "rank": self.rank,
                "pool": self.pool,
                "seed": self.seed,
            }
        )
        return config
