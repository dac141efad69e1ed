"""Sharpness: the top Hessian eigenvalue during training, next to the stability threshold 2/η."""

import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

import keras
import numpy as np

from toolkit.callbacks.log_points import LogPoints, optimizer_step
from toolkit.callbacks.periodic_probe import PeriodicProbe
from toolkit.callbacks.scalar_writer import ScalarWriter
from toolkit.probes.sharpness import (DEFAULT_NUM_ITERATIONS, DEFAULT_TOLERANCE,
                                      HessianVectorProduct, SharpnessResult, sharpness,
                                      validate_settings)

__all__ = ["Sharpness"]

TAG = "sharpness"
# A probe costs one Hessian-vector product (about two backward passes of the probe batch) per
# Lanczos iteration, usually 5-15. On `digits_mlp` (batch 256) it took about 25 ms, as long as
# ~30 training steps (benchmarks/bench_sharpness.py): every 1000 steps costs ~3%. A probe that
# needs all 100 iterations costs ~10x that; λ moves slowly, so rarer probes lose little.
DEFAULT_EVERY_STEPS = 1000


@keras.saving.register_keras_serializable(package="toolkit")
class Sharpness(PeriodicProbe):
    """Logs the top Hessian eigenvalue λ of the loss on a fixed batch every `every_steps` steps.

    Use it to see sharpness (Keskar et al., SEEDS S1.2: large batches end in sharper minima)
    and whether training sits at the *edge of stability*: gradient descent with learning rate η
    is unstable along a direction of curvature λ > 2/η, and full-batch training tends to push λ
    up to about 2/η (Cohen et al. 2021). Each probe runs `toolkit.probes.sharpness` outside
    the train step on the fixed `batch` (inference mode: dropout off, batch norm on its moving
    statistics), leaving the model and optimizer bit for bit as they were.

    It writes into `log_dir/train`, at the optimizer step: `sharpness/top_eigenvalue` (λ),
    `sharpness/stability_threshold` (2/η, η the optimizer's current learning rate, schedules
    included) and `sharpness/edge_of_stability_ratio` (λ·η/2: 1 is the edge). The threshold
    is the one of plain (momentum-free) gradient descent. For Adam, RMSprop and momentum the
    stability limit applies to the *preconditioned* Hessian (and momentum β moves it to
    (2 + 2β)/η), so there the ratio is only indicative: compare its trend, not its value with 1.
    It keeps `history`, one `(step, eigenvalue, threshold)` per probe, and `result`, the last
    `SharpnessResult`. Between probes it reads nothing from the device (see
    `toolkit.callbacks.log_points`), and it works with any `steps_per_execution`.

    Args:
        batch: The probe batch `(x, y)` or `(x, y, sample_weight)`; keep it fixed so values are
            comparable over training (e.g. 256 training examples). Data, not configuration: not
            saved by `get_config`. Defaults to `None` (must be given before training).
        every_steps: Optimizer steps between probes. Defaults to `1000`.
        log_dir: Run directory for TensorBoard scalars, or `None`. Defaults to `None`.
        num_iterations: Most Hessian-vector products per probe. Defaults to `100`.
        tolerance: Relative change of the estimate that ends a probe. Defaults to `1e-3`.
        seed: Seed of the Lanczos start vector. Defaults to `0`.

    Example:

    >>> x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    >>> y = x.sum(axis=1, keepdims=True)
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(0.125), "mse")
    >>> probe = Sharpness((x, y), every_steps=4)
    >>> _ = model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[probe])
    >>> [(step, threshold) for step, _, threshold in probe.history]  # 2/η = 16
    [(4, 16.0), (8, 16.0)]
    >>> bool(probe.history[-1][1] < 16.0)  # λ below the edge: stable
    True

    References:
        Keskar et al., On Large-Batch Training for Deep Learning
        (https://arxiv.org/abs/1609.04836); Cohen et al., Gradient Descent on Neural Networks
        Typically Occurs at the Edge of Stability (https://arxiv.org/abs/2103.00065).
    """

    def __init__(
        self,
        batch: Any = None,
        *,
        every_steps: int = DEFAULT_EVERY_STEPS,
        log_dir: Optional[str] = None,
        num_iterations: int = DEFAULT_NUM_ITERATIONS,
        tolerance: float = DEFAULT_TOLERANCE,
        seed: int = 0,
    ):
        super().__init__()
        self._points = LogPoints(every_steps)  # Validates it with the same message as others.
        validate_settings(num_iterations, tolerance)
        if batch is not None and (not isinstance(batch, (tuple, list))
                                  or len(batch) not in (2, 3)):
            raise ValueError(
                f"Sharpness needs a probe batch `(x, y)` or `(x, y, sample_weight)`. Received: "
                f"a {type(batch).__name__}. Pass e.g. `Sharpness((x_train[:256], "
                f"y_train[:256]))`.")
        self.batch = batch
        self.every_steps = every_steps
        self.log_dir = os.fspath(log_dir) if log_dir is not None else None
        self.num_iterations = num_iterations
        self.tolerance = tolerance
        self.seed = seed
        self._product: Optional[HessianVectorProduct] = None
        self._reset()

    def _reset(self) -> None:
        self.history: List[Tuple[int, float, float]] = []
        self.result: Optional[SharpnessResult] = None
        self._writer: Optional[ScalarWriter] = None

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self) -> Dict[str, Any]:
        """The constructor arguments (the probe `batch` is data, not configuration)."""
        return {"every_steps": self.every_steps, "log_dir": self.log_dir,
                "num_iterations": self.num_iterations, "tolerance": self.tolerance,
                "seed": self.seed}

    # Resume (the callback-state protocol of `toolkit.checkpoint.Checkpointer`) ----------------

    def get_state(self) -> Dict[str, Any]:
        """The probes so far and the grid position."""
        return {"next_step": self._points.next_step,
                "history": [[step, value, threshold] for step, value, threshold in self.history]}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Continues the run that `get_state` describes."""
        self._points.next_step = int(state["next_step"])
        self.history = [(int(step), float(value), float(threshold))
                        for step, value, threshold in state["history"]]

    # Keras hooks --------------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        if self.batch is None:
            raise ValueError(
                "Sharpness has no probe batch. Received: batch=None. Pass "
                "`Sharpness((x_train[:256], y_train[:256]), ...)`.")
        self._reset()
        self._points.start(optimizer_step(self.model))
        # A new model, or layers frozen or unfrozen since the last fit: trace a new product.
        if self._product is not None and not self._product.matches(self.model):
            self._product = None

    # Probing ------------------------------------------------------------------------------------

    def probe(self, step: int) -> SharpnessResult:
        """Measures λ now, appends `(step, λ, 2/η)` to `history` and logs it.

        Args:
            step: The optimizer step to label the point with.

        Returns:
            The `SharpnessResult`.
        """
        if self._product is None:
            self._product = HessianVectorProduct(self.model)
        self.result = sharpness(self.model, self.batch, num_iterations=self.num_iterations,
                                tolerance=self.tolerance, seed=self.seed,
                                hessian_vector_product=self._product)
        learning_rate = float(np.asarray(self.model.optimizer.learning_rate))
        eigenvalue = self.result.eigenvalue
        threshold = 2.0 / learning_rate if learning_rate > 0 else float("inf")
        self.history.append((int(step), eigenvalue, threshold))
        if self.log_dir is not None:
            if self._writer is None:
                self._writer = ScalarWriter(os.path.join(self.log_dir, "train"))
            self._writer.write({f"{TAG}/top_eigenvalue": eigenvalue,
                                f"{TAG}/stability_threshold": threshold,
                                f"{TAG}/edge_of_stability_ratio": eigenvalue * learning_rate / 2},
                               step)
            self._writer.flush()  # Probes are rare: show each at once.
        return self.result
