"""`lint`: checks a Keras model and its compile settings against the conventions (S2.1-S2.8).

Example:

>>> import keras
>>> from toolkit.lint import lint
>>> inputs = keras.Input((4,))
>>> hidden = keras.layers.Dense(8, activation="sigmoid", name="hidden")(inputs)
>>> model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="out")(hidden))
>>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> sorted({finding.code for finding in lint(model)})  # doctest: +NORMALIZE_WHITESPACE
['hidden-saturating-activation', 'non-variance-scaling-init', 'optimizer-not-adam',
 'output-activation', 'probabilities-with-from-logits']
"""

import dataclasses
import functools

import keras
import numpy as np

from toolkit.keras_compat import keras_history, node_input_tensors, outbound_operations, sublayers
from toolkit.layers.input_scaling import InputScaling

__all__ = ["Finding", "lint"]

_WEIGHTED = (
    keras.layers.Dense,
    keras.layers.EinsumDense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
)
_KERNEL_INITIALIZERS = ("kernel_initializer", "depthwise_initializer", "pointwise_initializer")
_SATURATING = ("sigmoid", "tanh", "hard_sigmoid", "hard_tanh", "softsign")
_PROBABILITIES = ("softmax", "sigmoid", "hard_sigmoid")
# Layers that reshape or drop values but apply no activation: look through them for the output.
_PASS_THROUGH = (
    keras.layers.Reshape,
    keras.layers.Flatten,
    keras.layers.Dropout,
    keras.layers.Permute,
    keras.layers.Identity,
)
# A normalization with a learned shift right after a layer makes that layer's bias redundant.
_CENTERING = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
)
_ADAM = (keras.optimizers.Adam, keras.optimizers.AdamW)

_MESSAGES = {
    "hidden-saturating-activation": (
        "`{layer}` uses {activation} in a hidden layer. Sigmoid and tanh saturate: their gradient "
        "vanishes for large inputs and shrinks layer after layer, so deep networks learn slowly "
        "(S2.3). Use activation='relu' (toolkit.layers.DenseBlock, ConvBlock)."
    ),
    "output-activation": (
        "The output layer `{layer}` applies {activation}. Keep the output linear (S2.4): an "
        "activation shared by every layer often slips onto the last one, and a squashing output "
        "caps what the model can predict. Remove it (toolkit.layers.LinearHead), use a "
        "from_logits=True loss, and apply softmax/sigmoid to predictions when you need them."
    ),
    "probabilities-with-from-logits": (
        "The output `{layer}` applies {activation} but its loss {loss} has from_logits=True: the "
        "loss applies {activation} a second time, so the gradients are wrong and training stalls "
        "without any error. Remove the activation from `{layer}` and keep from_logits=True."
    ),
    "logits-with-probability-loss": (
        "The output `{layer}` is linear (logits) but its loss {loss} has from_logits=False, so "
        "the loss reads raw logits as probabilities (clipped to [eps, 1 - eps]) and is wrong. "
        "Build the loss with from_logits=True, e.g. "
        "keras.losses.SparseCategoricalCrossentropy(from_logits=True)."
    ),
    "missing-bias": (
        "`{layer}` has no bias. Give every layer a bias (S2.5): without one a unit cannot shift "
        "its threshold, so a ReLU unit only splits its inputs through the origin. Set "
        "use_bias=True; dropping it is right only when a normalization with center=True (e.g. "
        "BatchNormalization) follows directly."
    ),
    "non-variance-scaling-init": (
        "`{layer}` initializes its weights with {initializer}. Use variance scaling over the "
        "fan-in (S2.6): it sizes each layer's initial weights from its own fan-in, so signals "
        "keep their scale through deep and unequal layers; Keras's default GlorotUniform "
        "averages fan-in and fan-out and under-scales ReLU layers, and the exploding or vanishing "
        "signals of a bad init are only hidden by batch normalization. Pass "
        "kernel_initializer=toolkit.initializers.relu() (ReLU layers) or "
        "toolkit.initializers.linear() (linear layers)."
    ),
    "optimizer-not-adam": (
        "The model is compiled with {optimizer}. Adam (or AdamW) is the recommended default "
        "(S2.1): its per-weight step sizes make it forgiving of the learning rate and of badly "
        "scaled gradients. Compile with keras.optimizers.Adam() unless you measured that "
        "{optimizer} does better."
    ),
    "unadapted-input-scaling": (
        "`{layer}` was never adapted, so raw inputs pass through with identity statistics "
        "(S2.7-S2.8). Call model.get_layer('{layer}').adapt(x_train) before training, or build "
        "the model with adapt_data=x_train."
    ),
}
_SEVERITIES = {
    "probabilities-with-from-logits": "error",
    "logits-with-probability-loss": "error",
    "optimizer-not-adam": "info",
}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One broken convention found by `lint`.

    Args:
        code: Stable identifier of the check, e.g. `"missing-bias"`.
        layer: Name of the layer concerned, or `None` for model-wide findings (the optimizer).
        message: Why it matters and how to fix it, in one paragraph.
        severity: `"error"` (a silent bug), `"warning"` (a convention broken) or `"info"`.

    Example:

    >>> print(Finding("missing-bias", "dense", "Set use_bias=True.", "warning"))
    warning missing-bias [dense]: Set use_bias=True.
    """

    code: str
    layer: str | None
    message: str
    severity: str

    def __str__(self) -> str:
        where = f" [{self.layer}]" if self.layer is not None else ""
        return f"{self.severity} {self.code}{where}: {self.message}"


def lint(model: keras.Model) -> list[Finding]:
    """Checks `model` against the training conventions and returns what it breaks.

    Checks every layer, nested models and sublayers included: sigmoid/tanh hidden activations
    (S2.3), an activation on an output (S2.4), layers without bias (S2.5, unless a centering
    normalization follows), kernel initializers other than fan-in/fan-out variance scaling
    (S2.6; Keras's default Glorot included) and unadapted input-scaling layers (S2.7-S2.8). For a
    compiled model it also checks each output against its loss (softmax/sigmoid output with a
    `from_logits=True` loss, linear output with a `from_logits=False` cross-entropy) and the
    optimizer (S2.1). Outputs are found through the functional graph, so output checks apply to
    functional and `Sequential` models, not subclassed ones.

    Args:
        model: A built Keras model, compiled or not.

    Returns:
        The findings, in layer order, then the optimizer; empty when the model is conventional.

    Example:

    >>> import keras
    >>> from toolkit.models import mlp
    >>> model = mlp((4,), 3, hidden_units=(8,), input_scaling="none", seed=0)
    >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> lint(model)
    []
    """
    outputs = _output_layers(model)
    output_ids = {id(layer) for layer, _ in outputs}
    findings = []
    for layer in _sublayers(model, seen=set()):
        findings.extend(_check_layer(layer, is_output=id(layer) in output_ids))
    for index, (layer, key) in enumerate(outputs):
        activation = _activation_name(layer)
        if activation not in (None, "linear"):
            findings.append(_finding("output-activation", layer.name, activation=activation))
        if getattr(model, "compiled", False):
            loss = _loss_for(model.loss, key, index)
            findings.extend(_check_loss(layer.name, activation, loss))
    if getattr(model, "compiled", False) and model.optimizer is not None:
        optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)
        if not isinstance(optimizer, _ADAM):
            findings.append(
                _finding("optimizer-not-adam", None, optimizer=type(optimizer).__name__)
            )
    return findings


def _sublayers(layer, seen: set):
    """Every layer inside `layer` (nested models and composite layers too), depth first."""
    for sublayer in sublayers(layer):
        if id(sublayer) not in seen:
            seen.add(id(sublayer))
            yield sublayer
            yield from _sublayers(sublayer, seen)


def _finding(code: str, layer: str | None, **details) -> Finding:
    message = _MESSAGES[code].format(layer=layer, **details)
    return Finding(code, layer, message, _SEVERITIES.get(code, "warning"))


def _check_layer(layer, *, is_output: bool) -> list[Finding]:
    findings = []
    activation = _activation_name(layer)
    if not is_output and activation in _SATURATING and not isinstance(layer, keras.Model):
        findings.append(
            _finding("hidden-saturating-activation", layer.name, activation=activation)
        )
    if isinstance(layer, _WEIGHTED):
        has_bias = getattr(layer, "use_bias", getattr(layer, "bias_axes", None) is not None)
        if not has_bias and not _followed_by_centering(layer):
            findings.append(_finding("missing-bias", layer.name))
        for attribute in _KERNEL_INITIALIZERS:
            initializer = getattr(layer, attribute, None)
            if initializer is not None and not _is_variance_scaling(initializer):
                findings.append(
                    _finding(
                        "non-variance-scaling-init",
                        layer.name,
                        initializer=type(initializer).__name__,
                    )
                )
                break
    if _is_unadapted(layer):
        findings.append(_finding("unadapted-input-scaling", layer.name))
    return findings


def _activation_name(layer) -> str | None:
    """The activation a layer applies, `"linear"` for none, `None` if it has no such notion."""
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    if isinstance(layer, (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU)):
        return type(layer).__name__.lower()
    if isinstance(layer, _WEIGHTED + (keras.layers.Activation,)):
        function = getattr(layer, "activation", None)
        if function is None:
            return "linear"
        return getattr(function, "__name__", type(function).__name__)
    return None


def _is_variance_scaling(initializer) -> bool:
    # Glorot is a VarianceScaling subclass with mode "fan_avg": it is the case this check is for.
    return isinstance(initializer, keras.initializers.VarianceScaling) and initializer.mode in (
        "fan_in",
        "fan_out",
    )


def _followed_by_centering(layer) -> bool:
    consumers = outbound_operations(layer)
    return bool(consumers) and all(
        isinstance(consumer, _CENTERING) and getattr(consumer, "center", False)
        for consumer in consumers
    )


def _is_unadapted(layer) -> bool:
    if isinstance(layer, InputScaling):
        return layer.built and int(keras.ops.convert_to_numpy(layer.count)) == 0
    if isinstance(layer, keras.layers.Normalization) and layer.input_mean is None and layer.built:
        # Keras's Normalization keeps no adapt counter; its initial statistics are 0 and 1.
        mean = keras.ops.convert_to_numpy(layer.adapt_mean)
        variance = keras.ops.convert_to_numpy(layer.adapt_variance)
        return bool(np.all(mean == 0) and np.all(variance == 1))
    return False


def _output_layers(model) -> list[tuple[keras.layers.Layer, str]]:
    """(layer that produces each output, the key its loss is stored under) for graph models."""
    try:
        structure = model.output
    except (AttributeError, ValueError):
        structure = None
    if isinstance(structure, dict):
        tensors, keys = list(structure.values()), list(structure.keys())
    else:
        tensors = list(getattr(model, "outputs", None) or [])
        keys = list(getattr(model, "output_names", None) or [])
    found = []
    for index, tensor in enumerate(tensors):
        layer = _producer(tensor)
        if layer is not None:
            found.append((layer, keys[index] if index < len(keys) else layer.name))
    return found


def _producer(tensor):
    """The layer whose activation reaches `tensor`, looking through reshapes and nested models."""
    history = keras_history(tensor)
    layer = history[0] if history is not None else None
    while layer is not None:
        _, node_index, tensor_index = history
        if isinstance(layer, keras.Model) and getattr(layer, "outputs", None):
            layer = _producer(layer.outputs[tensor_index])
        elif isinstance(layer, _PASS_THROUGH):
            inbound = node_input_tensors(layer, node_index)
            if len(inbound) != 1:
                return layer
            history = keras_history(inbound[0])
            layer = history[0] if history is not None else None
        else:
            return layer
    return None


def _loss_for(loss, key: str, index: int):
    """The loss compiled for one output: `model.loss` may be one loss, a dict or a list."""
    if isinstance(loss, dict):
        return loss.get(key)
    if isinstance(loss, (list, tuple)):
        return loss[index] if index < len(loss) else None
    return loss


def _check_loss(layer: str, activation: str | None, loss) -> list[Finding]:
    """Findings for an output whose activation and loss disagree about logits."""
    described = _describe_loss(loss)
    if described is None or activation is None:
        return []
    name, from_logits = described
    if from_logits and activation in _PROBABILITIES:
        return [
            _finding("probabilities-with-from-logits", layer, activation=activation, loss=name)
        ]
    if not from_logits and activation == "linear":
        return [_finding("logits-with-probability-loss", layer, loss=name)]
    return []


def _describe_loss(loss) -> tuple[str, bool] | None:
    """(name, from_logits) of a loss that takes logits or probabilities, else `None`."""
    if isinstance(loss, str):
        return (loss, False) if "crossentropy" in loss.lower() else None
    if isinstance(loss, keras.losses.Loss):
        config = loss.get_config()
        if "from_logits" not in config:
            return None
        function = getattr(loss, "fn", None)
        name = getattr(function, "__name__", None) or type(loss).__name__
        return name, bool(config["from_logits"])
    if isinstance(loss, functools.partial):
        name = getattr(loss.func, "__name__", "")
        if "crossentropy" in name:
            return name, bool(loss.keywords.get("from_logits", False))
        return None
    name = getattr(loss, "__name__", "")
    return (name, False) if "crossentropy" in name else None
