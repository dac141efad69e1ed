"""Keras layers that carry the training conventions (S2.3-S2.11).

- `InputScaling`: learns tanh(x / C) and standardization per feature with `adapt()`, so raw
  heavy-tailed inputs (e.g. spanning [0, 1.4e8]) arrive in a useful range (S2.7-S2.8).
- `DenseBlock`: a `Dense` layer with ReLU, a bias and He (variance-scaling) initialization.
- `LinearHead`: an output `Dense` layer with no activation, for `from_logits=True` losses.
- `ConvBlock`: a 1-D or 2-D convolution with the same conventions, then 2x max pooling.

Every layer is registered with Keras (`package="toolkit"`), so models using them save to and load
from `.keras` files once `toolkit.layers` is imported.

Example:

>>> import keras
>>> import numpy as np
>>> from toolkit.layers import DenseBlock, InputScaling, LinearHead
>>> x = np.random.default_rng(0).lognormal(8.0, 2.0, size=(256, 4))
>>> y = (x[:, 0] > np.median(x[:, 0])).astype("int32")
>>> scaling = InputScaling()
>>> scaling.adapt(x)
>>> inputs = keras.Input((4,))
>>> hidden = DenseBlock(32, seed=0)(scaling(inputs))
>>> model = keras.Model(inputs, LinearHead(2, seed=1)(hidden))
>>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> history = model.fit(x, y, epochs=1, verbose=0)
"""

from toolkit.layers.conv import ConvBlock
from toolkit.layers.dense import DenseBlock, LinearHead
from toolkit.layers.input_scaling import InputScaling

__all__ = ["InputScaling", "DenseBlock", "LinearHead", "ConvBlock"]
