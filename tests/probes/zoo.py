"""A zoo of broken models, each with one known fault, for `toolkit.probes.doctor`.

Each entry builds a small compiled model and its data and says which codes the doctor must
report (`expected`, and the layer where one applies) and which others it may report as
consequences of the same fault (`allowed`: a model with exploding gradients also cannot overfit).
Every model is built from `toolkit.layers` like the rest of the project, so that lint reports
only the fault under test. `ZOO` maps a name to its builder; `benchmarks/bench_doctor.py` and
`tests/probes/test_doctor.py` use it.

Example:

>>> case = ZOO["dead_relu"]()
>>> case.expected, case.layer
(('dead-relu',), 'dense_0')
"""

import dataclasses
from typing import Any, Callable, Dict, Optional, Tuple

import keras
import numpy as np

from toolkit import initializers
from toolkit.layers import DenseBlock, LinearHead
from toolkit.models import mlp

NUM_FEATURES = 8
NUM_CLASSES = 4
NUM_EXAMPLES = 16
HIDDEN_UNITS = 16


@dataclasses.dataclass(frozen=True)
class Case:
    """A compiled model, its data `(x, y)`, the codes it must get and those it may get."""

    model: keras.Model
    data: Tuple[np.ndarray, np.ndarray]
    expected: Tuple[str, ...]
    layer: Optional[str] = None
    allowed: Tuple[str, ...] = ()


def _data(scale: float = 1.0, shuffled: bool = False, seed: int = 0):
    """Features with labels that depend on them (the argmax of a fixed projection)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(NUM_EXAMPLES, NUM_FEATURES)).astype("float32")
    y = np.argmax(x @ rng.normal(size=(NUM_FEATURES, NUM_CLASSES)), axis=1)
    if shuffled:
        y = rng.permutation(y)
    return x * scale, y


def _loss(from_logits: bool = True):
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def _compile(model, learning_rate: float = 1e-3, from_logits: bool = True):
    model.compile(keras.optimizers.Adam(learning_rate), _loss(from_logits))
    return model


def _stack(hidden: int = 2, *, scale: float = 1.0, bias: float = 0.0, activation: str = "relu",
           head_activation=None, head_trainable: bool = True):
    """An MLP of `DenseBlock`s whose variance-scaling init is `scale` times He's std."""
    inputs = keras.Input((NUM_FEATURES,), name="inputs")
    h = inputs
    for index in range(hidden):
        init = keras.initializers.VarianceScaling(2.0 * scale ** 2, "fan_in", seed=index)
        h = DenseBlock(HIDDEN_UNITS, activation=activation, kernel_initializer=init,
                       bias_initializer=keras.initializers.Constant(bias if index == 0 else 0.0),
                       name=f"dense_{index}")(h)
    head_init = keras.initializers.VarianceScaling(scale ** 2, "fan_in", seed=hidden)
    if head_activation is None:
        outputs = LinearHead(NUM_CLASSES, kernel_initializer=head_init, name="head")(h)
    else:
        outputs = keras.layers.Dense(NUM_CLASSES, activation=head_activation,
                                     kernel_initializer=head_init, name="head")(h)
    return keras.Model(inputs, outputs)


def healthy() -> Case:
    x, y = _data()
    model = mlp((NUM_FEATURES,), NUM_CLASSES, hidden_units=(HIDDEN_UNITS, HIDDEN_UNITS),
                adapt_data=x, seed=0)
    return Case(_compile(model), (x, y), ("healthy",))


def shuffled_labels() -> Case:
    """Labels independent of the inputs: a model still memorizes one batch (not its fault)."""
    x, y = _data(shuffled=True)
    model = mlp((NUM_FEATURES,), NUM_CLASSES, hidden_units=(HIDDEN_UNITS, HIDDEN_UNITS),
                adapt_data=x, seed=0)
    return Case(_compile(model), (x, y), ("healthy",))


def probabilities_with_from_logits() -> Case:
    model = _compile(_stack(head_activation="softmax"))
    return Case(model, _data(), ("probabilities-with-from-logits", "output-activation"), "head",
                allowed=("cannot-overfit-tiny-batch",))


def output_activation() -> Case:
    model = _compile(_stack(head_activation="softmax"), from_logits=False)
    return Case(model, _data(), ("output-activation",), "head")


def saturating_activation() -> Case:
    """A deep sigmoid MLP (S2.3)."""
    model = _compile(_stack(5, activation="sigmoid"))
    return Case(model, _data(), ("saturating-activation",), "dense_0",
                allowed=("vanishing-gradients", "cannot-overfit-tiny-batch"))


def exploding_init() -> Case:
    """Every layer's initial weights 100x variance scaling's."""
    return Case(_compile(_stack(scale=100.0)), _data(),
                ("bad-initialization", "exploding-gradients"), "dense_0",
                allowed=("cannot-overfit-tiny-batch", "learning-rate-too-high"))


def vanishing_init() -> Case:
    """Every layer's initial weights 0.01x variance scaling's."""
    return Case(_compile(_stack(scale=0.01)), _data(),
                ("bad-initialization", "vanishing-gradients"), "dense_0",
                allowed=("cannot-overfit-tiny-batch",))


def dead_relu() -> Case:
    """A first layer whose biases start at -10: every ReLU unit is off for every input."""
    return Case(_compile(_stack(bias=-10.0)), _data(), ("dead-relu",), "dense_0",
                allowed=("cannot-overfit-tiny-batch",))


def batchnorm_hides_exploding_gradients() -> Case:
    """Weights drawn with a fixed std of 10, each layer followed by batch normalization."""
    inputs = keras.Input((NUM_FEATURES,), name="inputs")
    h = inputs
    for index in range(3):
        init = keras.initializers.RandomNormal(stddev=10.0, seed=index)
        h = keras.layers.Dense(HIDDEN_UNITS, use_bias=False, kernel_initializer=init,
                               name=f"dense_{index}")(h)
        h = keras.layers.BatchNormalization(name=f"batch_norm_{index}")(h)
        h = keras.layers.ReLU(name=f"relu_{index}")(h)
    model = keras.Model(inputs, LinearHead(NUM_CLASSES, seed=3, name="head")(h))
    return Case(_compile(model), _data(), ("batchnorm-hides-exploding-gradients",), "dense_0",
                allowed=("bad-initialization", "cannot-overfit-tiny-batch"))


def unscaled_inputs() -> Case:
    """Features 1e4 times larger than unit scale, fed to a model without input scaling."""
    x, y = _data(scale=1e4)
    model = mlp((NUM_FEATURES,), NUM_CLASSES, hidden_units=(HIDDEN_UNITS, HIDDEN_UNITS),
                input_scaling="none", seed=0)
    return Case(_compile(model), (x, y), ("unscaled-inputs",), "dense_block_0",
                allowed=("cannot-overfit-tiny-batch",))


def frozen_bottleneck() -> Case:
    """A frozen one-unit projection in front of the head: nothing can learn to separate."""
    inputs = keras.Input((NUM_FEATURES,), name="inputs")
    h = keras.layers.Dense(1, trainable=False, name="frozen_projection",
                           kernel_initializer=initializers.linear(0))(inputs)
    model = keras.Model(inputs, LinearHead(NUM_CLASSES, seed=1, name="head")(h))
    return Case(_compile(model), _data(), ("cannot-overfit-tiny-batch",), "frozen_projection")


def learning_rate_too_high() -> Case:
    """Adam at 10, as in the issue (the recipes use 1e-3 to 5e-3)."""
    case = healthy()
    model = _compile(case.model, learning_rate=10.0)
    return Case(model, case.data, ("learning-rate-too-high",))


def learning_rate_1000x() -> Case:
    """Adam at 1.0, 1000x the 1e-3 default."""
    case = healthy()
    return Case(_compile(case.model, learning_rate=1.0), case.data, ("learning-rate-too-high",))


ZOO: Dict[str, Callable[[], Case]] = {builder.__name__: builder for builder in (
    healthy, shuffled_labels, probabilities_with_from_logits, output_activation,
    saturating_activation, exploding_init, vanishing_init, dead_relu,
    batchnorm_hides_exploding_gradients, unscaled_inputs, frozen_bottleneck,
    learning_rate_too_high, learning_rate_1000x,
)}


def describe(case: Any) -> str:
    """`expected (+ allowed)` for test ids and benchmark tables."""
    extra = f" (+ {', '.join(case.allowed)})" if case.allowed else ""
    return ", ".join(case.expected) + extra
