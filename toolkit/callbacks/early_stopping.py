"""EarlyStopping: stop when the evaluation metric has not beaten its noise for N optimizer steps."""

import base64
import logging
import warnings
from typing import Any, Dict, List, Optional

import keras
import numpy as np

from toolkit.callbacks import metric_noise
from toolkit.clock import optimizer_step
from toolkit.errors import ModelError

__all__ = ["EarlyStopping"]

logger = logging.getLogger(__name__)

_MAX_WORDS = ("acc", "auc", "precision", "recall", "f1")
_RATE_WORD = "acc"  # `accuracy`, `acc`, `binary_accuracy`, `sparse_categorical_accuracy`, ...


@keras.saving.register_keras_serializable(package="toolkit")
class EarlyStopping(keras.callbacks.Callback):
    """Stops training when `monitor` has not improved by more than its noise for N steps.

    Use it instead of `keras.callbacks.EarlyStopping` to stop by watching the validation error
    and going back to its minimum (S1.4) without stopping at its first noisy rise (S1.5), in a
    run that may be killed and resumed. Three differences from Keras's:

    - **Patience in optimizer steps** (`model.optimizer.iterations`), not epochs: with
      `toolkit.fit` an epoch is one evaluation interval, and the step count means the same
      whatever the interval, the `steps_per_execution` or the number of `fit` calls.
    - **The minimum improvement is the metric's noise** unless `min_delta` is given: one
      standard error (`toolkit.callbacks.metric_noise.noise_min_delta`), the larger of the
      accuracy's sampling error `sqrt(p (1 - p) / num_eval_examples)` (`p` the accuracy at the
      last significant improvement) and the spread of the last 7 evaluations around their
      local trend (measured on the evaluations before the one judged, from the 6th on;
      before that any improvement counts). Patience counts the steps since the last
      improvement larger than that (a *significant* one), so improvements within the noise
      neither reset it nor stop the run.
    - **The best state survives a kill and resume**: the best value, its step and the best
      weights (kept in memory as NumPy arrays) are part of `get_state()`, which the toolkit's
      checkpoints save with the model and optimizer, so a resumed `toolkit.fit(run_dir=...)`
      stops and restores exactly as an uninterrupted run. The weights travel base64-encoded
      inside the checkpoint's `state.json` (4/3 of their size in bytes, written with every
      checkpoint): written atomically and checksummed with the step they belong to.

    The restored weights are those of the best evaluation, significant or not (the minimum of
    the validation error); they are set at the end of training, when it stops early and when
    the budget ends. A checkpoint written after that (by a `Checkpoint` later in the callback
    list, or `toolkit.fit`'s last save) would hold the best weights instead of those training
    reached, so the state then also keeps the reached weights and `set_state` puts them back:
    a resumed run continues on the uninterrupted run's path. A state restored as stopped stops
    the run again (unless `patience_steps` was raised since): Keras's `fit` clears
    `model.stop_training` when it starts, so it is set again at each epoch begin, and a plain
    `fit` takes one more execution of steps before it stops.

    Args:
        patience_steps: Stop once this many optimizer steps passed since the last significant
            improvement (checked at each evaluation).
        monitor: Epoch log to watch (with `toolkit.fit`, the evaluation's `val_*` logs).
            Defaults to `"val_loss"`.
        mode: `"min"`, `"max"` or `"auto"` (`"max"` for names with acc, auc, precision,
            recall or f1 unless they say loss). Defaults to `"auto"`.
        min_delta: An explicit minimum improvement, replacing the noise estimate. Defaults to
            `None` (measured noise).
        num_eval_examples: Size of the evaluation set, to add the sampling error of an
            accuracy (only for accuracy monitors). Defaults to `None`.
        restore_best_weights: Keep the best weights and set them at the end of training.
            Defaults to `True`.

    After training, `best_value`, `best_step` and `best_weights` hold the best evaluation,
    `reference_value` and `reference_step` the last significant improvement, `stopped_step` the
    step it stopped at (`None` when the budget ended first) and `current_min_delta` the
    minimum improvement used at the last evaluation.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("adam", "mse")
    >>> stopping = EarlyStopping(patience_steps=300)
    >>> # model.fit(x, y, validation_data=(x_val, y_val), callbacks=[stopping]) evaluates at
    >>> # each epoch end; here the evaluations (every 100 steps) are scripted:
    >>> stopping.set_model(model)
    >>> stopping.on_train_begin()
    >>> val_losses = [0.9, 0.5, 0.42, 0.45, 0.40, 0.41, 0.37, 0.39, 0.40]
    >>> for step, val_loss in zip(range(100, 1000, 100), val_losses):
    ...     _ = model.optimizer.iterations.assign(step)
    ...     stopping.on_epoch_end(0, {"val_loss": val_loss})
    ...     if model.stop_training:
    ...         break
    >>> # Not stopped by the rise at step 400; 0.37 at step 700 is the best but within the
    >>> # noise of 0.40 (step 500), so patience ran from step 500.
    >>> stopping.stopped_step, stopping.reference_step, stopping.best_step
    (800, 500, 700)
    >>> round(stopping.current_min_delta, 3)
    0.048
    """

    def __init__(
        self,
        patience_steps: int,
        monitor: str = "val_loss",
        mode: str = "auto",
        min_delta: Optional[float] = None,
        num_eval_examples: Optional[int] = None,
        restore_best_weights: bool = True,
    ):
        super().__init__()
        if isinstance(patience_steps, bool) or not isinstance(patience_steps, int) \
                or patience_steps < 0:
            raise ValueError(
                f"`patience_steps` must be an int >= 0 (optimizer steps without a significant "
                f"improvement before stopping). Received: patience_steps={patience_steps!r}."
            )
        if mode not in ("auto", "min", "max"):
            raise ValueError(f'`mode` must be "auto", "min" or "max". Received: mode={mode!r}.')
        if min_delta is not None and not min_delta >= 0:
            raise ValueError(
                f"`min_delta` must be >= 0, or None to measure it from the metric's noise. "
                f"Received: min_delta={min_delta!r}."
            )
        if num_eval_examples is not None:
            if min_delta is not None:
                raise ValueError(
                    f"Pass either `min_delta` (a fixed minimum improvement) or "
                    f"`num_eval_examples` (to measure it from the accuracy's sampling error), not "
                    f"both. Received: min_delta={min_delta!r}, "
                    f"num_eval_examples={num_eval_examples!r}."
                )
            if isinstance(num_eval_examples, bool) or not isinstance(num_eval_examples, int) \
                    or num_eval_examples < 1:
                raise ValueError(
                    f"`num_eval_examples` must be a positive int (the evaluation set size). "
                    f"Received: num_eval_examples={num_eval_examples!r}."
                )
            if _RATE_WORD not in monitor.lower():
                raise ValueError(
                    f"`num_eval_examples` gives the sampling error sqrt(p(1-p)/n) of an "
                    f"accuracy; `monitor` is {monitor!r}. Monitor an accuracy (e.g. "
                    f"'val_accuracy'), or drop `num_eval_examples` (the noise of other metrics is "
                    f"measured from the spread of recent evaluations)."
                )
        self.patience_steps = patience_steps
        self.monitor = monitor
        self.mode = mode
        self.min_delta = None if min_delta is None else float(min_delta)
        self.num_eval_examples = num_eval_examples
        self.restore_best_weights = bool(restore_best_weights)
        name = monitor.lower()
        maximize = any(word in name for word in _MAX_WORDS) and "loss" not in name
        self._sign = 1.0 if mode == "max" or (mode == "auto" and maximize) else -1.0
        self._reset()

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self):
        return {
            "patience_steps": self.patience_steps,
            "monitor": self.monitor,
            "mode": self.mode,
            "min_delta": self.min_delta,
            "num_eval_examples": self.num_eval_examples,
            "restore_best_weights": self.restore_best_weights,
        }

    def _reset(self) -> None:
        self.best_value: Optional[float] = None
        self.best_step: Optional[int] = None
        self.best_weights: Optional[List[np.ndarray]] = None
        self.stopped_step: Optional[int] = None
        # The last significant improvement: the reference for the next one, and patience's start.
        self.reference_value: Optional[float] = None
        self.reference_step: Optional[int] = None
        self.recent_values: List[float] = []
        self.current_min_delta = 0.0 if self.min_delta is None else self.min_delta
        self._encoded_weights = None
        self._reached_weights = None
        self._warned_missing = False

    # ---------------------------------------------------------------- state
    def get_state(self) -> Dict[str, Any]:
        if self._encoded_weights is None and self.best_weights is not None:
            self._encoded_weights = [_encode(array) for array in self.best_weights]
        return {
            "best_value": self.best_value,
            "best_step": self.best_step,
            "reference_value": self.reference_value,
            "reference_step": self.reference_step,
            "stopped_step": self.stopped_step,
            "recent_values": list(self.recent_values),
            "best_weights": self._encoded_weights,
            "reached_weights": self._reached_weights,
        }

    def set_state(self, state: Dict[str, Any]) -> None:
        self.best_value = state["best_value"]
        self.best_step = state["best_step"]
        self.reference_value = state["reference_value"]
        self.reference_step = state["reference_step"]
        self.recent_values = [float(v) for v in state["recent_values"]]
        encoded = state["best_weights"] if self.restore_best_weights else None
        self._encoded_weights = encoded
        self.best_weights = None if encoded is None else [_decode(e) for e in encoded]
        if self.best_weights is not None and self.model is not None:
            self._check_shapes(self.best_weights)
        self._reached_weights = state.get("reached_weights")
        if self._reached_weights is not None and self.model is not None:
            # Saved after `on_train_end` set the best weights: the checkpoint's model holds
            # them, but training had reached these, and a resumed run continues from them.
            reached = [_decode(e) for e in self._reached_weights]
            self._check_shapes(reached)
            self.model.set_weights(reached)
        self.stopped_step = state["stopped_step"]
        if self.stopped_step is not None and not self._patience_spent(self.stopped_step):
            self.stopped_step = None  # `patience_steps` was raised since: train on.
        if self.stopped_step is not None and self.model is not None:
            self.model.stop_training = True

    # ---------------------------------------------------------------- hooks
    def on_train_begin(self, logs=None):
        # Allow instances to be re-used across fit() calls.
        self._reset()

    def on_epoch_begin(self, epoch, logs=None):
        # Keras clears `stop_training` at each `fit` call: a restored stop must be re-asserted.
        if self.stopped_step is not None:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.stopped_step is not None:
            return  # Stopped (restored so): later evaluations change nothing.
        value = (logs or {}).get(self.monitor)
        if value is None:
            if not self._warned_missing:
                self._warned_missing = True
                warnings.warn(
                    f"EarlyStopping watches `{self.monitor}`, which is not in the epoch logs "
                    f"(available: {sorted(logs or {})}). Pass evaluation data, or set `monitor` "
                    f"to one of the available logs.",
                    stacklevel=2,
                )
            return
        step = optimizer_step(self.model)
        self._record(float(value), step)
        if self._patience_spent(step):
            self.stopped_step = step
            self.model.stop_training = True
            logger.info(
                "EarlyStopping: no improvement of `%s` beyond %.4g for %d steps; stopping at "
                "step %d (best %.6g at step %s).", self.monitor, self.current_min_delta,
                step - self.reference_step, step, self.best_value, self.best_step,
            )

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            # A checkpoint written after this hook (a `Checkpoint` later in the callback list;
            # `toolkit.fit`'s last save) would take the best weights for those training reached:
            # the state keeps the reached ones, which `set_state` puts back on resume.
            self._reached_weights = [_encode(w) for w in self.model.get_weights()]
            self.model.set_weights(self.best_weights)
            logger.info("EarlyStopping: restored the weights of step %s.", self.best_step)

    # ---------------------------------------------------------------- the rule
    def _record(self, value: float, step: int) -> bool:
        """Records one evaluation; returns whether it was a significant improvement.

        Args:
            value: The monitored metric.
            step: The optimizer step it was measured at.

        Returns:
            `True` when `value` beats the last significant improvement by more than
            `current_min_delta` (the first finite evaluation always does).
        """
        if not np.isfinite(value):
            return False  # Never the best; patience keeps counting.
        self.current_min_delta = self._min_delta()
        significant = self.reference_value is None or self._sign * (
            value - self.reference_value) > self.current_min_delta
        if significant:
            self.reference_value, self.reference_step = value, step
        if self.best_value is None or self._sign * (value - self.best_value) > 0:
            self.best_value, self.best_step = value, step
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()  # NumPy copies.
                self._encoded_weights = None
        # Noise is measured on the evaluations *before* the one being judged.
        self.recent_values = (self.recent_values + [value])[-metric_noise.SPREAD_WINDOW:]
        return significant

    def _min_delta(self) -> float:
        if self.min_delta is not None:
            return self.min_delta
        rate = self.reference_value if self.num_eval_examples is not None else None
        return metric_noise.noise_min_delta(
            self.recent_values, rate=rate, num_examples=self.num_eval_examples)

    def _patience_spent(self, step: int) -> bool:
        return self.reference_step is not None and step - self.reference_step >= \
            self.patience_steps

    def _check_shapes(self, weights: List[np.ndarray]) -> None:
        expected = [tuple(w.shape) for w in self.model.weights]
        found = [tuple(w.shape) for w in weights]
        if expected != found:
            raise ModelError(
                f"EarlyStopping's saved best weights do not fit model `{self.model.name}`: "
                f"shapes {found} were saved, the model has {expected}. Resume with the same "
                f"architecture, or use a fresh run directory."
            )


def _encode(array: np.ndarray) -> Dict[str, Any]:
    # Not `np.ascontiguousarray`: it turns a 0-d array (a scalar variable) into shape (1,).
    array = np.array(array, order="C")
    return {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "data": base64.b64encode(array.tobytes()).decode("ascii"),
    }


def _decode(encoded: Dict[str, Any]) -> np.ndarray:
    data = base64.b64decode(encoded["data"])
    return np.frombuffer(data, dtype=np.dtype(encoded["dtype"])).reshape(encoded["shape"]).copy()
