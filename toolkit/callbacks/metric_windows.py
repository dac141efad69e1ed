"""MetricWindows: training metrics over the steps since the last log point, not since the epoch.

Keras 3 reports training metrics as running means over the epoch: its `loss` at step `t` of an
epoch is `total_t / count_t`, where the loss tracker (a `keras.metrics.Mean`) adds
`batch_loss * batch_size` to `total` and `batch_size` to `count` at every step. Every metric
derived from `keras.metrics.Mean` (the loss trackers and `MeanMetricWrapper` metrics such as
accuracy or MAE) keeps the same two state variables. Between two log points `s < t`,

    window mean = (total_t - total_s) / (count_t - count_s)

is the mean of the per-batch values over steps `s+1..t`, weighted by batch size (the plain mean
when batches have equal sizes), and exactly the batch loss when the window is one step
(`every_steps=1`, `steps_per_execution=1`), up to float32 rounding of Keras's running `total`
(relative error about 2**-24 * total_t / (total_t - total_s)). Keras resets the state at each
epoch begin and at each evaluation; the part of a window before such a reset is carried over
(read at `on_test_begin` / `on_epoch_end`, before the reset), so windows span epochs exactly.

Metrics with another state (AUC, precision, custom ones) cannot be windowed; for those the value
Keras reports (accumulated since the epoch began) is returned unchanged.
"""

from typing import Any, Dict, List, Mapping, Optional, Tuple

import keras
import numpy as np

from toolkit.keras_compat import compiled_metrics_built, loss_tracker, metric_leaves

__all__ = ["MetricWindows"]


class MetricWindows:
    """Reads training metrics as means over windows of steps (see the module doc).

    Example:

    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> windows = MetricWindows()
    >>> windows.epoch_begin()
    >>> loss_tracker(model).update_state(2.0, sample_weight=4)
    >>> windows.read(model)
    {'loss': 2.0}
    >>> loss_tracker(model).update_state(5.0, sample_weight=4)
    >>> windows.read(model)
    {'loss': 5.0}
    """

    def __init__(self):
        self._resumed_base: Optional[Dict[str, Tuple[float, float]]] = None
        self.reset()

    def reset(self) -> None:
        """Forgets everything (call at the start of a training run)."""
        self._leaves: Optional[List[Tuple[str, keras.metrics.Metric]]] = None
        self._base: Dict[str, Tuple[float, float]] = {}
        self._carry: Dict[str, Tuple[float, float]] = {}
        self._closed = True
        self.last_count: Dict[str, float] = {}

    def get_state(self) -> Dict[str, Any]:
        """The open window: its start (`base`), the part carried over, and whether it is closed."""
        return {
            "base": {k: list(v) for k, v in self._base.items()},
            "carry": {k: list(v) for k, v in self._carry.items()},
            "closed": self._closed,
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Continues a `get_state` window; an open one resumes at the next `epoch_begin` (when
        the metric state it was read from is restored)."""
        self._carry = {k: tuple(v) for k, v in state["carry"].items()}
        self._resumed_base = None if state["closed"] else {
            k: tuple(v) for k, v in state["base"].items()
        }

    def epoch_begin(self) -> None:
        """Keras has just reset the metrics: the state starts again from zero (or from a resumed
        window's start)."""
        self._base, self._resumed_base = self._resumed_base or {}, None
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether the current epoch's part was already carried over (no epoch is open)."""
        return self._closed

    def close_epoch(self, model: keras.Model) -> None:
        """Carries the epoch's unread part over, before Keras resets the state (once per epoch)."""
        if self._closed:
            return
        self._closed = True
        for name, (total, count) in self._deltas(model).items():
            carried = self._carry.get(name, (0.0, 0.0))
            self._carry[name] = (carried[0] + total, carried[1] + count)
        self._base = {}

    def read(self, model: keras.Model) -> Dict[str, float]:
        """Returns each metric's mean over the window since the last read, and starts a new one."""
        leaves = self._resolve(model)
        current = {} if self._closed else _states(leaves)
        values = {}
        for name, metric in leaves:
            if isinstance(metric, keras.metrics.Mean):
                total, count = current.get(name, (0.0, 0.0))
                base = self._base.get(name, (0.0, 0.0))
                carried = self._carry.get(name, (0.0, 0.0))
                total = total - base[0] + carried[0]
                count = count - base[1] + carried[1]
                if count > 0:
                    values[name] = total / count
                    self.last_count[name] = count
                continue
            result = metric.result()
            if isinstance(result, dict):
                values.update({key: float(np.asarray(value)) for key, value in result.items()})
            else:
                values[name] = float(np.asarray(result))
        self._carry = {}
        self._base = current
        return values

    def _deltas(self, model: keras.Model) -> Dict[str, Tuple[float, float]]:
        deltas = {}
        for name, (total, count) in _states(self._resolve(model)).items():
            base_total, base_count = self._base.get(name, (0.0, 0.0))
            deltas[name] = (total - base_total, count - base_count)
        return deltas

    def _resolve(self, model: keras.Model) -> List[Tuple[str, keras.metrics.Metric]]:
        # Compiled metrics are built at the first train step: resolve lazily, then keep.
        if self._leaves is None:
            leaves = metric_leaves(model)
            if not compiled_metrics_built(model):
                return leaves
            self._leaves = leaves
        return self._leaves


def _states(leaves) -> Dict[str, Tuple[float, float]]:
    means = [(name, metric) for name, metric in leaves if isinstance(metric, keras.metrics.Mean)]
    if not means:
        return {}
    # One stacked read instead of two device reads per metric.
    variables = [v for _, metric in means for v in (metric.total, metric.count)]
    values = keras.ops.convert_to_numpy(
        keras.ops.stack([keras.ops.cast(v, "float64") for v in variables])
    ).tolist()
    return {name: (values[2 * i], values[2 * i + 1]) for i, (name, _) in enumerate(means)}
