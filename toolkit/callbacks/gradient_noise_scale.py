"""GradientNoiseScale: the simple noise scale B_simple = tr(Σ)/|G|², measured during training.

B_simple (McCandlish et al. 2018, arXiv 1812.06162) is the batch size at which a batch
gradient's noise is as large as the gradient: below it a larger batch saves steps almost
proportionally, above it a larger batch mostly costs examples. With E|G_B|² = |G|² + tr(Σ)/B,
Appendix A's unbiased estimators from two batch sizes are

    |G|²  ≈ (B_big |G_big|² − B_small |G_small|²) / (B_big − B_small)
    tr(Σ) ≈ (|G_small|² − |G_big|²) / (1/B_small − 1/B_big)

A probe draws B_big = `num_batches` × B_small examples (with replacement: unbiased on a finite
dataset too) as `num_batches` small batches; |G_small|² is the mean of their squared gradient
norms, G_big the mean of their gradients. Numerator and denominator are smoothed separately
and B_simple is the ratio of the smoothed values: one probe's |G|² is noisy and may be negative,
so a mean of ratios would follow its worst probes.
"""
import os
from typing import Any, Dict, List, Mapping, Optional

import keras
import numpy as np
import tensorflow as tf

from toolkit.callbacks.log_points import LogPoints, optimizer_step
from toolkit.callbacks.periodic_probe import PeriodicProbe
from toolkit.callbacks.scalar_writer import ScalarWriter
from toolkit.callbacks.training_pass import non_trainable_kept
from toolkit.keras_compat import unscaled_loss

__all__ = ["GradientNoiseScale", "noise_scale_estimates"]

TAG = "gradient_noise"
# A probe costs about `num_batches` training steps (4 ms, ~9 steps of `digits_mlp`), plus a
# one-time trace (~0.2 s): 8 batches every 250 steps measured +3.1% on a 6000-step
# `digits_mlp` run (benchmarks/bench_gradient_noise_scale.py). B_big = 8 x the training batch
# resolves |G|² while B_simple is within a few times B_big.
DEFAULT_EVERY_STEPS = 250
DEFAULT_NUM_BATCHES = 8


def noise_scale_estimates(small_norm_squared: float, big_norm_squared: float,
                          small_batch_size: int, big_batch_size: int) -> Dict[str, float]:
    """McCandlish et al.'s unbiased estimates of |G|² and tr(Σ) from two batch sizes.

    Args:
        small_norm_squared: |G_small|², the squared norm of a gradient over `small_batch_size`
            examples (or the mean of several).
        big_norm_squared: |G_big|², the same over `big_batch_size` examples.
        small_batch_size: B_small.
        big_batch_size: B_big (larger than B_small).

    Returns:
        `{"gradient_norm_squared": ..., "trace_sigma": ...}` (a single estimate of |G|² may be
        negative: smooth over probes before dividing).

    Example:

    >>> estimates = noise_scale_estimates(3.0, 1.25, 8, 64)  # |G|² = 1, tr(Σ) = 16
    >>> {name: round(value, 6) for name, value in estimates.items()}
    {'gradient_norm_squared': 1.0, 'trace_sigma': 16.0}
    """
    small, big = float(small_batch_size), float(big_batch_size)
    return {
        "gradient_norm_squared": (big * big_norm_squared - small * small_norm_squared)
        / (big - small),
        "trace_sigma": (small_norm_squared - big_norm_squared) / (1.0 / small - 1.0 / big),
    }


@keras.saving.register_keras_serializable(package="toolkit")
class GradientNoiseScale(PeriodicProbe):
    """Estimates the gradient noise scale B_simple every `every_steps` optimizer steps.

    Use it to answer "which batch size?" with a measurement: B_simple ≈ the critical batch
    size, beyond which a larger batch stops saving steps (SEEDS S1). Each probe runs outside the
    train step on `num_batches` fresh batches of `batch_size` examples drawn from `data`: arrays
    are sampled with `numpy.random.default_rng(seed + step)`, so each probe has its own fixed
    seed and a resumed run draws the same probes; a `tf.data.Dataset` of equal batches is read
    on, `num_batches` batches per probe. Gradients are those of `model.compute_loss` in training
    mode (dropout and batch-norm batch statistics as the optimizer sees them; the noise that
    matters is the noise of the training gradient); batch-norm statistics and dropout seeds are
    put back afterwards and nothing else is written, so the model is left bit for bit as it was.

    It writes `gradient_noise/simple_noise_scale`, `gradient_noise/trace_sigma`,
    `gradient_noise/gradient_norm_squared` (smoothed) and `gradient_noise/batch_size` into
    `log_dir/train` at the optimizer step, and keeps `history` (one dict per probe) and
    `noise_scale` (the current B_simple). Between probes it reads nothing from the device (see
    `toolkit.callbacks.log_points`), and it works with any `steps_per_execution`.

    Args:
        data: Probe data: `(x, y)` or `(x, y, sample_weight)` arrays (or dicts/lists of arrays
            in `x`), or a `tf.data.Dataset` of batches of one size. Data, not configuration: not
            saved by `get_config`. Defaults to `None` (must be given before training).
        log_dir: Run directory for TensorBoard scalars, or `None`. Defaults to `None`.
        batch_size: The training batch size, B_small for array data (a dataset's batches are
            B_small); logged and quoted by `summary()`. Defaults to `None` (needed with arrays).
        num_batches: Small batches per probe: B_big = num_batches × B_small; at least `2`.
            Defaults to `8`.
        every_steps: Optimizer steps between probes. Defaults to `250` (≤ 5% of training time
            at `num_batches=8`).
        smoothing: Decay of the moving averages per probe, in [0, 1). Where gradient norms
            fall by orders of magnitude between probes (early training), the averages are
            dominated by the older, larger probes: lower it, or probe more often, to follow a
            changing B_simple. Defaults to `0.9`.
        seed: Base seed of the probes drawn from arrays. Defaults to `0`.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(256, 4)).astype("float32")
    >>> y = (x.sum(axis=1, keepdims=True) + rng.normal(size=(256, 1))).astype("float32")
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> noise = GradientNoiseScale((x, y), batch_size=8, every_steps=4)
    >>> _ = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[noise])
    >>> len(noise.history), noise.noise_scale > 0
    (16, True)
    >>> noise.summary()  # doctest: +ELLIPSIS
    'critical batch size ≈ ... (B_simple); you train at 8'

    References:
        McCandlish, Kaplan, Amodei et al., An Empirical Model of Large-Batch Training
        (https://arxiv.org/abs/1812.06162), Appendix A.
    """

    def __init__(
        self,
        data: Any = None,
        *,
        log_dir: Optional[str] = None,
        batch_size: Optional[int] = None,
        num_batches: int = DEFAULT_NUM_BATCHES,
        every_steps: int = DEFAULT_EVERY_STEPS,
        smoothing: float = 0.9,
        seed: int = 0,
    ):
        super().__init__()
        self._points = LogPoints(every_steps)  # Validates it with the same message as others.
        _require(batch_size is None or _is_int(batch_size) and batch_size >= 1, "batch_size",
                 batch_size, "a positive integer (the training batch size), e.g. batch_size=64")
        _require(_is_int(num_batches) and num_batches >= 2, "num_batches", num_batches,
                 "an integer of at least 2 (B_big = num_batches * batch_size), e.g. 8")
        _require(isinstance(smoothing, (int, float)) and 0.0 <= smoothing < 1.0, "smoothing",
                 smoothing, "a number in [0, 1), e.g. 0.9 (0 keeps no average)")
        _require(_is_int(seed), "seed", seed, "an integer, e.g. seed=0")
        self.log_dir = os.fspath(log_dir) if log_dir is not None else None
        self.batch_size = batch_size
        self.num_batches = num_batches
        self.every_steps = every_steps
        self.smoothing = float(smoothing)
        self.seed = seed
        self.data = data
        self._arrays = _check_data(data, batch_size)
        self._reset()

    def _reset(self) -> None:
        self.history: List[Dict[str, float]] = []
        self._ema = {"trace_sigma": 0.0, "gradient_norm_squared": 0.0}
        self._count = 0
        self._writer: Optional[ScalarWriter] = None
        self._iterator = None

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self) -> Dict[str, Any]:
        """The constructor arguments (`data` is data, not configuration)."""
        return {"log_dir": self.log_dir, "batch_size": self.batch_size,
                "num_batches": self.num_batches, "every_steps": self.every_steps,
                "smoothing": self.smoothing, "seed": self.seed}

    # Results ------------------------------------------------------------------------------------

    def smoothed(self) -> Dict[str, Optional[float]]:
        """The bias-corrected moving averages of tr(Σ) and |G|², and their ratio B_simple
        (`None` before the first probe, or while the smoothed |G|² is not positive)."""
        if self._count == 0:
            return {"trace_sigma": None, "gradient_norm_squared": None,
                    "simple_noise_scale": None}
        correction = 1.0 - self.smoothing ** self._count
        trace = self._ema["trace_sigma"] / correction
        norm = self._ema["gradient_norm_squared"] / correction
        ratio = trace / norm if norm > 0 else None
        return {"trace_sigma": trace, "gradient_norm_squared": norm,
                "simple_noise_scale": ratio}

    @property
    def noise_scale(self) -> Optional[float]:
        """The current estimate of B_simple, or `None` (see `smoothed`)."""
        return self.smoothed()["simple_noise_scale"]

    def summary(self) -> str:
        """One line: the critical batch size B_simple next to the training batch size."""
        at = f"; you train at {self.batch_size:,}" if self.batch_size else ""
        value = self.noise_scale
        if value is None:
            why = "no probe yet" if self._count == 0 else "gradient noise dominates |G|²"
            return f"critical batch size not measured yet ({why}){at}"
        return f"critical batch size ≈ {_round(value):,} (B_simple){at}"

    # Resume (the callback-state protocol of `toolkit.checkpoint.Checkpointer`) ----------------

    def get_state(self) -> Dict[str, Any]:
        """The moving averages, the probe count, the grid position and the history."""
        return {"ema": dict(self._ema), "count": self._count,
                "next_step": self._points.next_step, "history": [dict(h) for h in self.history]}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Continues the estimate that `get_state` describes."""
        self._ema = {name: float(value) for name, value in state["ema"].items()}
        self._count = int(state["count"])
        self._points.next_step = int(state["next_step"])
        self.history = [dict(h) for h in state["history"]]

    # Keras hooks --------------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        if self.data is None:
            raise ValueError(
                "GradientNoiseScale has no probe data. Received: data=None. Pass "
                "`GradientNoiseScale((x_train, y_train), batch_size=...)` or a `tf.data.Dataset` "
                "of training batches.")
        self._reset()
        self._points.start(optimizer_step(self.model))
        if getattr(self, "_traced_for", None) is not self.model:  # Trace once per model.
            self._norms = tf.function(self._norms_of, autograph=False)
            self._traced_for = self.model

    # Probing ------------------------------------------------------------------------------------

    def probe(self, step: int) -> Dict[str, float]:
        """Measures the gradient norms once at `step`, updates the averages and logs them.

        Args:
            step: The optimizer step (the probe's seed is `seed + step` for array data).

        Returns:
            This probe's entry of `history`.
        """
        batch, small = self._draw(step)
        model = self.model
        with non_trainable_kept(model):  # training-mode passes: batch norm, dropout seeds
            small_sq, big_sq = self._norms(*batch)
        estimates = noise_scale_estimates(float(small_sq), float(big_sq), small,
                                          small * self.num_batches)
        self._count += 1
        for name, value in estimates.items():
            self._ema[name] = self.smoothing * self._ema[name] + (1 - self.smoothing) * value
        smoothed = self.smoothed()
        entry = {"step": int(step), **{f"probe_{k}": v for k, v in estimates.items()},
                 **smoothed}
        self.history.append(entry)
        self._log(step, smoothed, small)
        return entry

    def _norms_of(self, x, y, sample_weight):
        # A while loop over the small batches traces the model once, not `num_batches` times:
        # the trace is the probe's main cost on a short run.
        model, k = self.model, self.num_batches
        variables = model.trainable_variables
        split = lambda t: tf.reshape(t, tf.concat([[k, -1], tf.shape(t)[1:]], 0))  # noqa: E731
        chunks = tf.nest.map_structure(lambda t: None if t is None else split(t),
                                       (x, y, sample_weight))

        def body(i, small_sq, total):
            pick = lambda t: None if t is None else t[i]  # noqa: E731
            xi, yi, wi = tf.nest.map_structure(pick, chunks)
            with tf.GradientTape() as tape:
                y_pred = model(xi, training=True)
                loss = model.compute_loss(x=xi, y=yi, y_pred=y_pred, sample_weight=wi)
                loss = tf.cast(unscaled_loss(loss), tf.float32)
            grads = [tf.zeros(v.shape, tf.float32) if g is None
                     else tf.cast(tf.convert_to_tensor(g), tf.float32)
                     for v, g in zip(variables, tape.gradient(loss, variables))]
            small_sq += tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads])
            return i + 1, small_sq, [t + g for t, g in zip(total, grads)]

        start = (tf.constant(0), tf.constant(0.0), [tf.zeros(v.shape, tf.float32)
                                                    for v in variables])
        _, small_sq, total = tf.while_loop(lambda i, *_: i < k, body, start)
        big_sq = tf.add_n([tf.reduce_sum(tf.square(t / k)) for t in total])
        return small_sq / k, big_sq

    def _draw(self, step: int):
        """`(x, y, sample_weight)` of B_big examples and B_small."""
        if self._arrays is not None:
            x, y, weight = self._arrays
            rows = len(tf.nest.flatten(x)[0])
            index = np.random.default_rng(self.seed + step).integers(
                0, rows, size=self.batch_size * self.num_batches)
            pick = lambda a: None if a is None else a[index]  # noqa: E731
            return tuple(tf.nest.map_structure(pick, part) for part in (x, y, weight)), \
                self.batch_size
        batches = [self._next_batch() for _ in range(self.num_batches)]
        sizes = {int(tf.shape(tf.nest.flatten(b[0])[0])[0]) for b in batches}
        _require(len(sizes) == 1, "data", f"a dataset with batch sizes {sorted(sizes)}",
                 "a dataset of equal batches: batch it with drop_remainder=True")
        joined = tuple(
            tf.nest.map_structure(lambda *parts: tf.concat(parts, 0), *[b[i] for b in batches])
            if batches[0][i] is not None else None for i in range(3))
        return joined, sizes.pop()

    def _next_batch(self):
        if self._iterator is None:
            self._iterator = iter(self.data)
        try:
            batch = next(self._iterator)
        except StopIteration:  # A finite dataset is read again from its start.
            self._iterator = iter(self.data)
            batch = next(self._iterator)
        return keras.utils.unpack_x_y_sample_weight(batch)

    def _log(self, step: int, smoothed: Mapping[str, Optional[float]], small: int) -> None:
        if self.log_dir is None:
            return
        if self._writer is None:
            self._writer = ScalarWriter(os.path.join(self.log_dir, "train"))
        values = {f"{TAG}/{name}": value for name, value in smoothed.items()
                  if value is not None}
        values[f"{TAG}/batch_size"] = float(self.batch_size or small)
        self._writer.write(values, step)
        self._writer.flush()


def _check_data(data: Any, batch_size: Optional[int]):
    """Array data as `(x, y, sample_weight)` of NumPy arrays; `None` for a dataset or none."""
    if data is None or isinstance(data, tf.data.Dataset):
        return None
    _require(isinstance(data, tuple) and len(data) in (2, 3), "data", type(data).__name__,
             "`(x, y)` or `(x, y, sample_weight)` arrays, or a `tf.data.Dataset` of batches")
    _require(batch_size is not None, "batch_size", None,
             "the training batch size, e.g. batch_size=64 (array data is drawn in batches of it)")
    x, y, weight = keras.utils.unpack_x_y_sample_weight(data)
    to_numpy = lambda a: np.asarray(a)  # noqa: E731
    x, y = tf.nest.map_structure(to_numpy, x), tf.nest.map_structure(to_numpy, y)
    weight = None if weight is None else np.asarray(weight)
    rows = {len(a) for a in tf.nest.flatten((x, y, weight)) if a is not None}
    _require(len(rows) == 1, "data", f"arrays with row counts {sorted(rows)}",
             "arrays with one row per example each (the same first dimension)")
    return x, y, weight


def _require(condition: bool, name: str, received: Any, expected: str) -> None:
    if not condition:
        raise ValueError(
            f"GradientNoiseScale got a bad `{name}`. Received: {received!r}. Pass {expected}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _round(value: float) -> int:
    """Two significant figures: the estimate is not more precise than that."""
    return int(float(f"{value:.2g}")) if value >= 1 else 1
