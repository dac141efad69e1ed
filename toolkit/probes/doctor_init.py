"""The doctor's step (b): how the initialized network treats one batch, before any step.

`measure_initialization` runs one forward and backward pass (training mode) through a copy of
the model and records, for each top-level layer that maps its input with weights (Dense, Conv,
`toolkit.layers.ConvBlock`, ...): the RMS of its input and output and their ratio (the *gain*),
the ratio of the gradient norm at its input to the one at its output (the *backward gain*), and
for ReLU and saturating layers how many units are dead or saturated. `initialization_findings`
turns these into findings: `bad-initialization`, `exploding-gradients`, `vanishing-gradients`,
`dead-relu`, `unscaled-inputs`, `non-finite-loss`.

Why these numbers: variance scaling over the fan-in (S2.6) keeps both the RMS of the activations
and the norm of the gradient nearly constant from layer to layer (for ReLU, He's scale 2 makes
up for the half of the units that are off). A layer far from gain 1 is badly initialized; a
gradient that grows or shrinks by orders of magnitude between the output and the first layer
explodes or vanishes, whatever the optimizer.

Example:

>>> import keras, numpy as np
>>> from toolkit.models import mlp
>>> from toolkit.probes.doctor_batch import Batch
>>> model = mlp((8,), 3, hidden_units=(16,), input_scaling="none", seed=0)
>>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> x = np.random.default_rng(0).normal(size=(16, 8))
>>> measured = measure_initialization(model, Batch(x, np.arange(16) % 3))
>>> [layer.name for layer in measured.layers], initialization_findings(measured)
(['dense_block_0', 'head'], [])
"""

import dataclasses
from typing import List, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from toolkit.keras_compat import keras_history, node_input_tensors, sublayers
from toolkit.probes.doctor_batch import Batch
from toolkit.probes.doctor_findings import DoctorFinding, make_finding

__all__ = ["LayerMeasurement", "InitMeasurement", "measure_initialization",
           "initialization_findings", "activation_name", "is_linear_map"]

# Per-layer RMS gain allowed. Variance scaling keeps it between about 0.7 (Glorot under ReLU)
# and 1.4 (He before its ReLU; max pooling and dropout in training add a little); 4x (16x in
# variance) is beyond any of these, and two such layers already move the output 16x.
GAIN_HIGH = 4.0
GAIN_LOW = 1.0 / GAIN_HIGH
# End-to-end ratio of gradient norms, first layer's input over the output. Variance scaling keeps
# it near 1 (0.5-2 measured on the shipped recipes); 100x means the first and last layers need
# learning rates two orders of magnitude apart, and plain SGD steps overflow.
EXPLODING_BACKWARD_GAIN = 100.0
VANISHING_BACKWARD_GAIN = 1.0 / EXPLODING_BACKWARD_GAIN
# A ReLU layer with at least half its units silent on every example of the batch. At He init
# with zero biases a unit is active on about half the examples, so silence over a whole batch is
# rare; half the units dead is half the layer's capacity and gradient gone.
DEAD_FRACTION = 0.5
# Dead units are only counted on batches this large: on a few examples silence means little.
DEAD_MIN_EXAMPLES = 8
# The first layer's inputs are unscaled above this RMS: variance scaling assumes about 1, and
# 10x (100x in variance) puts the first pre-activations and the initial loss orders off.
INPUT_RMS_MAX = 10.0
# A sigmoid output within this of 0 or 1, a tanh output within it of +-1, is saturated: its
# derivative is below 1% of its peak.
SATURATION_MARGIN = 0.01
_LINEAR_MAPS = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.Conv1D,
                keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Conv1DTranspose,
                keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose,
                keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D,
                keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_RELUS = ("relu", "relu6", "ReLU")
# Activations whose output scale is set by the activation, not the weights: no gain check.
_BOUNDED = ("sigmoid", "tanh", "hard_sigmoid", "hard_tanh", "softsign", "softmax")


@dataclasses.dataclass(frozen=True)
class LayerMeasurement:
    """What one layer did to the first batch (see the module doc); `None` where it does not apply.

    Args:
        name: Layer name.
        activation: Its activation's name, or `None`.
        input_rms: RMS of its input.
        output_rms: RMS of its output.
        gain: `output_rms / input_rms`, for layers with weights and an unbounded activation.
        backward_gain: Gradient norm at its input over the one at its output.
        dead_fraction: Fraction of units that output 0 on every example (ReLU layers).
        saturated_fraction: Fraction of outputs that are saturated (sigmoid/tanh layers).
    """

    name: str
    activation: Optional[str]
    input_rms: Optional[float]
    output_rms: float
    gain: Optional[float]
    backward_gain: Optional[float]
    dead_fraction: Optional[float]
    saturated_fraction: Optional[float]


@dataclasses.dataclass(frozen=True)
class InitMeasurement:
    """One batch through the initialized network.

    Args:
        loss: The compiled loss of the batch.
        layers: One `LayerMeasurement` per probed layer, in graph order.
        backward_gain: End to end: gradient norm at the first probed layer's input over the
            one at the last probed layer's output; `None` if undefined.
        gradients_finite: Whether every gradient was finite.
        first_layers: Names of the probed layers fed by the model's inputs directly.
        input_max_abs: Largest |value| entering each of `first_layers`.
    """

    loss: float
    layers: Tuple[LayerMeasurement, ...]
    backward_gain: Optional[float]
    gradients_finite: bool
    first_layers: Tuple[str, ...]
    input_max_abs: Tuple[float, ...]


def measure_initialization(model: keras.Model, batch: Batch) -> InitMeasurement:
    """Measures activation and gradient scales layer by layer on one batch (training mode).

    Args:
        model: A compiled Sequential or functional model. It is called in training mode, which
            updates batch-normalization statistics: pass a copy (the doctor does).
        batch: The batch.

    Returns:
        An `InitMeasurement`.
    """
    probed = [layer for layer in model.layers if _probed(layer)]
    # A Sequential model has one input and one output but no `input`/`output` of its own.
    sequential = isinstance(model, keras.Sequential)
    inputs = model.inputs[0] if sequential else model.input
    output = model.outputs[0] if sequential else model.output
    taps = keras.Model(inputs, [output, [(l.input, l.output) for l in probed]])
    x = tf.nest.map_structure(tf.convert_to_tensor, batch.x)
    with tf.GradientTape() as tape:
        tape.watch([t for t in tf.nest.flatten(x) if t.dtype.is_floating])
        outputs, pairs = taps(x, training=True)
        loss = model.compute_loss(x, batch.y, outputs, batch.sample_weight, training=True)
    sources = [tensor for pair in pairs for tensor in pair]
    gradients = tape.gradient(loss, sources, unconnected_gradients="zero")
    norms = [_norm(g) for g in gradients]
    finite = all(np.isfinite(n) for n in norms)
    layers = []
    for index, (layer, (inputs, out)) in enumerate(zip(probed, pairs)):
        layers.append(_measure_layer(layer, inputs, out, norms[2 * index], norms[2 * index + 1],
                                     batch.size))
    weighted = [(i, m) for i, m in enumerate(layers) if is_linear_map(probed[i])]
    end_to_end = None
    if weighted:
        first, last = weighted[0][0], weighted[-1][0]
        start = norms[2 * first] or norms[2 * first + 1]
        end_to_end = _ratio(start, norms[2 * last + 1])
    first_layers = [i for i, _ in weighted if _fed_by_inputs(probed[i], probed)]
    return InitMeasurement(
        loss=float(loss), layers=tuple(layers), backward_gain=end_to_end,
        gradients_finite=finite, first_layers=tuple(layers[i].name for i in first_layers),
        input_max_abs=tuple(float(np.max(np.abs(_numpy(pairs[i][0])))) for i in first_layers),
    )


def initialization_findings(measured: InitMeasurement) -> List[DoctorFinding]:
    """The findings of step (b) (see the module doc for the codes and thresholds).

    Args:
        measured: The result of `measure_initialization`.

    Returns:
        The findings, in the order dead units, scales, gradients.
    """
    if not np.isfinite(measured.loss):
        return [make_finding("non-finite-loss", None, f"loss of the first batch: {measured.loss}")]
    findings = []
    by_name = {layer.name: layer for layer in measured.layers}
    for name, max_abs in zip(measured.first_layers, measured.input_max_abs):
        rms = by_name[name].input_rms
        if rms is not None and rms > INPUT_RMS_MAX:
            findings.append(make_finding("unscaled-inputs", name, (
                f"`{name}` receives inputs of RMS {rms:.3g} (largest |x| {max_abs:.3g}); "
                f"variance scaling expects about 1, at most {INPUT_RMS_MAX:g}")))
    # A layer whose input is all zeros outputs zeros too: that is its input's fault, not its own.
    dead = [m for m in measured.layers
            if (m.dead_fraction or 0.0) >= DEAD_FRACTION and (m.input_rms or 0.0) > 0.0]
    for m in dead:
        findings.append(make_finding("dead-relu", m.name, (
            f"{m.dead_fraction:.0%} of the units of `{m.name}` output 0 on every example of "
            f"the batch; at most {DEAD_FRACTION:.0%} allowed")))
    for m in measured.layers:
        if m.gain is not None and m in dead:
            continue
        if m.gain is not None and not GAIN_LOW <= m.gain <= GAIN_HIGH:
            findings.append(make_finding("bad-initialization", m.name, (
                f"`{m.name}` multiplies the RMS of its input by {m.gain:.3g} (input "
                f"{m.input_rms:.3g}, output {m.output_rms:.3g}); variance scaling keeps it "
                f"within {GAIN_LOW:g}-{GAIN_HIGH:g}")))
    findings += _gradient_findings(measured, bool(dead))
    return findings


def _gradient_findings(measured: InitMeasurement, any_dead: bool) -> List[DoctorFinding]:
    gains = [m for m in measured.layers if m.backward_gain is not None]
    per_layer = ", ".join(f"{m.name} {m.backward_gain:.3g}x" for m in gains)
    if not measured.gradients_finite:
        return [make_finding("exploding-gradients", gains[0].name if gains else None,
                             "the gradients of the first batch hold NaN or Inf")]
    ratio = measured.backward_gain
    if ratio is None or not gains:
        return []
    if ratio > EXPLODING_BACKWARD_GAIN:
        worst = max(gains, key=lambda m: m.backward_gain)
        return [make_finding("exploding-gradients", worst.name, (
            f"the gradient norm grows {ratio:.3g}x from the output back to the first layer "
            f"(at most {EXPLODING_BACKWARD_GAIN:g}x); per layer: {per_layer}"))]
    if ratio < VANISHING_BACKWARD_GAIN and not any_dead:
        worst = min(gains, key=lambda m: m.backward_gain)
        return [make_finding("vanishing-gradients", worst.name, (
            f"the gradient norm shrinks to {ratio:.3g}x from the output back to the first "
            f"layer (at least {VANISHING_BACKWARD_GAIN:g}x); per layer: {per_layer}"))]
    return []


def _measure_layer(layer, inputs, outputs, input_gradient, output_gradient,
                   num_examples) -> LayerMeasurement:
    activation = activation_name(layer)
    out = _numpy(outputs)
    input_rms = _rms(_numpy(inputs)) if inputs is not None else None
    output_rms = _rms(out)
    gain = None
    if is_linear_map(layer) and activation not in _BOUNDED and input_rms:
        gain = output_rms / input_rms
    dead = saturated = None
    if activation in _RELUS and num_examples >= DEAD_MIN_EXAMPLES:
        dead = float(np.mean(np.all(out.reshape(len(out), -1) <= 0.0, axis=0)))
    if activation in ("sigmoid", "hard_sigmoid"):
        saturated = float(np.mean((out < SATURATION_MARGIN) | (out > 1 - SATURATION_MARGIN)))
    elif activation in ("tanh", "hard_tanh"):
        saturated = float(np.mean(np.abs(out) > 1 - SATURATION_MARGIN))
    backward = _ratio(input_gradient, output_gradient) if is_linear_map(layer) else None
    return LayerMeasurement(layer.name, activation, input_rms, output_rms, gain, backward,
                            dead, saturated)


def activation_name(layer) -> Optional[str]:
    """The activation a layer applies (looking into composite layers such as `ConvBlock`)."""
    if isinstance(layer, (keras.layers.ReLU, keras.layers.Softmax)):
        return "relu" if isinstance(layer, keras.layers.ReLU) else "softmax"
    function = getattr(layer, "activation", None)
    if function is not None:
        return getattr(function, "__name__", type(function).__name__)
    if isinstance(layer, keras.Model):
        return None
    for sublayer in sublayers(layer):
        name = activation_name(sublayer)
        if name is not None:
            return name
    return None


def is_linear_map(layer) -> bool:
    """Whether `layer` maps its input with weights (Dense, Conv, or a block holding one)."""
    if isinstance(layer, keras.Model):
        return False
    return isinstance(layer, _LINEAR_MAPS) or any(
        isinstance(sublayer, _LINEAR_MAPS) for sublayer in sublayers(layer))


def _probed(layer) -> bool:
    if not (is_linear_map(layer) or activation_name(layer) in _RELUS + _BOUNDED):
        return False
    try:  # A shared layer is probed at its first call (`layer.input`); a merge is not probed.
        return not isinstance(layer.input, (list, tuple, dict))
    except (AttributeError, ValueError):
        return False


def _fed_by_inputs(layer, probed) -> bool:
    """Whether no other probed linear map lies between the model's inputs and `layer`."""
    weighted = {id(other) for other in probed if is_linear_map(other) and other is not layer}
    pending, seen = [layer.input], set()
    while pending:
        history = keras_history(pending.pop())
        if history is None or id(history[0]) in seen:
            continue
        source, node_index, _ = history
        seen.add(id(source))
        if id(source) in weighted:
            return False
        pending.extend(node_input_tensors(source, node_index))
    return True


def _numpy(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values)))) if values.size else 0.0


def _norm(gradient) -> float:
    return 0.0 if gradient is None else float(tf.norm(tf.cast(gradient, tf.float64)))


def _ratio(numerator: float, denominator: float) -> Optional[float]:
    return numerator / denominator if denominator > 0 and np.isfinite(denominator) else None
