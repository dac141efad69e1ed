"""Sharpness: the largest eigenvalue of the Hessian of the training loss on a fixed batch.

Keskar et al. (SEEDS S1.2) call a minimum *sharp* when the Hessian of the loss has large positive
eigenvalues there, and find that large batches end in sharper minima that generalize worse. The
largest eigenvalue λ also bounds the stable learning rate: gradient descent with step η on a
quadratic diverges along the top eigenvector once λ > 2/η, and full-batch training tends to rise
until λ ≈ 2/η and hover there, the "edge of stability" (Cohen et al. 2021, arXiv 2103.00065).

`sharpness(model, batch)` computes λ of the loss `model.compute_loss` (the compiled losses plus
`model.losses`, e.g. weight regularizers) with respect to `model.trainable_variables`, on the
fixed batch, by Lanczos iteration (`toolkit.probes.lanczos`) on exact Hessian-vector products
(double backward: the gradient of g·v, with nested `tf.GradientTape`s, in a `tf.function`). The
forward pass runs with `training=False`: dropout off and batch norm on its moving statistics, so
the operator is deterministic, a fixed symmetric matrix on which Lanczos converges; it is the
Hessian of the function the model computes at inference, not of the noisy training-mode loss.
"""

import dataclasses
import warnings
from typing import Any, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from toolkit.errors import ModelError
from toolkit.keras_compat import unscaled_loss
from toolkit.probes.lanczos import largest_eigenvalue

__all__ = ["HessianVectorProduct", "SharpnessResult", "sharpness"]

# Lanczos usually settles the top eigenvalue within 10-30 products on the shipped recipes; 100
# leaves room for a small spectral gap. A relative change of 1e-3 is far below the change that
# matters (λ against 2/η), and above the float32 noise of the products (about 1e-6).
DEFAULT_NUM_ITERATIONS = 100
DEFAULT_TOLERANCE = 1e-3


@dataclasses.dataclass(frozen=True)
class SharpnessResult:
    """The largest Hessian eigenvalue and how the iteration that found it ended.

    Args:
        eigenvalue: The largest *algebraic* eigenvalue λ_max of the Hessian (the most positive
            one; a dominant negative eigenvalue is not returned in its place). Lanczos
            approaches it from below.
        converged: Whether `relative_change` fell below the tolerance (or the Krylov space
            became invariant, which makes `eigenvalue` exact up to rounding).
        iterations: Hessian-vector products computed.
        relative_change: The estimate's relative change at the last iteration.
        eigenvalues_history: The estimate after each iteration.
    """

    eigenvalue: float
    converged: bool
    iterations: int
    relative_change: float
    eigenvalues_history: Tuple[float, ...]


class HessianVectorProduct:
    """`v -> H v` for the Hessian of `model`'s loss on a batch, v flat over the trainable weights.

    Build it once and pass it to every `sharpness` call on the same model: its `tf.function` is
    traced once per batch shape. It writes no model or optimizer variable; the compiled loss's
    per-output trackers that `compute_loss` updates are put back by `sharpness`.

    Args:
        model: A built, compiled Keras model (or one whose `compute_loss` needs no `compile`).

    Example:

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False)])
    >>> model.compile("sgd", "mse")
    >>> x, y = np.array([[1.0, 0.0], [0.0, 1.0]], "float32"), np.zeros((2, 1), "float32")
    >>> product = HessianVectorProduct(model)
    >>> product(_as_tensors((x, y)), np.array([1.0, 0.0]))  # H = 2/n XᵀX = I
    array([1., 0.])
    """

    def __init__(self, model: keras.Model):
        self.model = model
        if not getattr(model, "compiled", False):
            raise ModelError(
                f"Model {model.name!r} is not compiled: `sharpness` differentiates the loss of "
                f"`model.compute_loss`. Call `model.compile(optimizer, loss)` first.")
        self.variables = list(model.trainable_variables)
        if not self.variables:
            raise ModelError(
                f"`sharpness` needs trainable weights; model {model.name!r} has none (is it "
                f"built and not frozen?). Build the model, or set `trainable=True` on its layers."
            )
        self.num_parameters = int(sum(np.prod(v.shape) for v in self.variables))
        self._function = tf.function(self._product)

    def matches(self, model: keras.Model) -> bool:
        """Whether this product is for `model` and its current trainable weights."""
        return model is self.model and [id(v) for v in model.trainable_variables] == [
            id(v) for v in self.variables]

    def __call__(self, batch: Tuple[Any, Any, Any], vector: np.ndarray) -> np.ndarray:
        """H v as a float64 vector, for `batch = (x, y, sample_weight)` of tensors."""
        result = self._function(*batch, tf.constant(vector, tf.float32))
        return result.numpy().astype(np.float64)

    def _product(self, x, y, sample_weight, vector):
        parts = tf.split(vector, [int(np.prod(v.shape)) for v in self.variables])
        directions = [tf.cast(tf.reshape(p, v.shape), v.dtype)
                      for p, v in zip(parts, self.variables)]
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                loss = self._loss(x, y, sample_weight)
            grads = inner.gradient(loss, self.variables,
                                   unconnected_gradients=tf.UnconnectedGradients.ZERO)
            dot = tf.add_n([tf.reduce_sum(tf.cast(g * d, tf.float32))
                            for g, d in zip(grads, directions)])
        products = outer.gradient(dot, self.variables,
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return tf.concat([tf.reshape(tf.cast(p, tf.float32), [-1]) for p in products], 0)

    def _loss(self, x, y, sample_weight):
        y_pred = self.model(x, training=False)
        loss = self.model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
        if loss is None:
            raise ModelError(
                f"Model {self.model.name!r} computes no loss. Compile it with a `loss` before "
                f"measuring sharpness."
            )
        return tf.cast(unscaled_loss(loss), tf.float32)


def sharpness(
    model: keras.Model,
    batch: Any,
    *,
    num_iterations: int = DEFAULT_NUM_ITERATIONS,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
    hessian_vector_product: Optional[HessianVectorProduct] = None,
) -> SharpnessResult:
    """The largest eigenvalue of the Hessian of `model`'s loss on `batch` (see the module doc).

    Nothing of the model or its optimizer changes: weights, batch-norm statistics, seed
    generators, Adam's moments and `iterations` stay bit for bit (no variable is written).

    Args:
        model: A built, compiled Keras model.
        batch: `(x, y)` or `(x, y, sample_weight)`: arrays or tensors (`x` may be a dict or
            list of them). Keep it fixed to compare values over training.
        num_iterations: Most Hessian-vector products (each costs about two backward passes).
            Defaults to `100`.
        tolerance: Stop when the estimate changes by less than this, relatively, between two
            iterations. Defaults to `1e-3`.
        seed: Seed of Lanczos's random start vector. Defaults to `0`.
        hessian_vector_product: A `HessianVectorProduct(model)` to reuse, which saves tracing
            its `tf.function` again at each call. Defaults to `None` (one is built).

    Returns:
        A `SharpnessResult`. When the estimate does not settle within `num_iterations`, a
        warning gives the numbers and `converged` is `False`.

    Raises:
        ValueError: If `num_iterations` or `tolerance` is not positive, or `batch` is no
            `(x, y[, sample_weight])` tuple.
        toolkit.errors.ModelError: If the model has no trainable weights or computes no loss.

    Example:

    >>> x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> result = sharpness(model, (x, x.sum(axis=1)))
    >>> exact = np.linalg.eigvalsh(2 / 32 * np.c_[x, np.ones(32)].T @ np.c_[x, np.ones(32)])
    >>> result.converged, bool(abs(result.eigenvalue - exact[-1]) < 1e-3 * exact[-1])
    (True, True)
    """
    validate_settings(num_iterations, tolerance)
    tensors = _as_tensors(batch)
    product = hessian_vector_product or HessianVectorProduct(model)
    saved = _save_loss_trackers(model, tensors)
    try:
        found = largest_eigenvalue(lambda v: product(tensors, v), product.num_parameters,
                                   num_iterations=num_iterations, tolerance=float(tolerance),
                                   seed=seed)
    finally:
        _restore_loss_trackers(model, saved)
    if not found.converged:
        warnings.warn(
            f"`sharpness` did not converge in num_iterations={num_iterations}: the top "
            f"eigenvalue estimate {found.eigenvalue:.6g} still changed by "
            f"{found.relative_change:.3g} (relative) at the last iteration, above "
            f"tolerance={tolerance}. Raise `num_iterations` or `tolerance`.",
            stacklevel=2,
        )
    return SharpnessResult(**dataclasses.asdict(found))


def validate_settings(num_iterations: Any, tolerance: Any) -> None:
    """Raises `ValueError` unless `num_iterations` is a positive integer and `tolerance` a
    positive number (shared with `toolkit.callbacks.Sharpness`, which checks them early)."""
    if isinstance(num_iterations, bool) or not isinstance(num_iterations, int) \
            or num_iterations < 1:
        raise ValueError(f"`sharpness` needs a positive integer `num_iterations`. Received: "
                         f"num_iterations={num_iterations!r}. Pass e.g. num_iterations=100.")
    if not isinstance(tolerance, (int, float)) or not tolerance > 0:
        raise ValueError(f"`sharpness` needs a positive `tolerance`. Received: "
                         f"tolerance={tolerance!r}. Pass e.g. tolerance=1e-3.")


def _as_tensors(batch: Any) -> Tuple[Any, Any, Any]:
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise ValueError(
            f"`sharpness` needs a batch `(x, y)` or `(x, y, sample_weight)`. Received: "
            f"{_describe(batch)}. "
            f"Pass e.g. `(x_train[:256], y_train[:256])`."
        )
    x, y, weight = keras.utils.unpack_x_y_sample_weight(tuple(batch))
    convert = lambda a: tf.convert_to_tensor(a)  # noqa: E731
    return (tf.nest.map_structure(convert, x), tf.nest.map_structure(convert, y),
            None if weight is None else tf.convert_to_tensor(weight))


def _describe(batch: Any) -> str:
    if isinstance(batch, (tuple, list)):
        return f"a {type(batch).__name__} of length {len(batch)}"
    return f"a {type(batch).__name__}"


def _save_loss_trackers(model: keras.Model, tensors) -> dict:
    """Keras's compiled loss updates its per-output loss trackers inside `compute_loss`; they
    are metric state, put back afterwards. One eager loss first builds what is not built yet
    (trackers created in the trace would escape the restore)."""
    before = {id(v): np.array(v.numpy(), copy=True) for v in model.metrics_variables}
    x, y, weight = tensors
    model.compute_loss(x=x, y=y, y_pred=model(x, training=False), sample_weight=weight)
    return before


def _restore_loss_trackers(model: keras.Model, before: dict) -> None:
    for variable in model.metrics_variables:
        value = before.get(id(variable))
        # A tracker built by the eager loss above starts from its fresh (zero) state.
        variable.assign(value if value is not None else np.zeros(variable.shape,
                                                                  variable.dtype))
