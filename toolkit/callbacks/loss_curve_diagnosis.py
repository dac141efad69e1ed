"""LossCurveDiagnosis: judges a run from its loss curves at every evaluation and at the end."""

import os
import warnings
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

import keras
import numpy as np

from toolkit.callbacks.log_points import LogPoints, optimizer_step
from toolkit.callbacks.loss_curve_rules import CurveFinding, diagnose_curve
from toolkit.callbacks.metric_windows import MetricWindows
from toolkit.callbacks.scalar_writer import ScalarWriter
from toolkit.callbacks.training_pass import non_trainable_kept
from toolkit.keras_compat import text_summary, unscaled_loss

__all__ = ["LossCurveDiagnosis"]

# About 50 points show a curve's shape (the same default as `toolkit.train.Logging`).
_POINTS_PER_RUN = 50
TEXT_DIR = "diagnosis"


@keras.saving.register_keras_serializable(package="toolkit")
class LossCurveDiagnosis(keras.callbacks.Callback):
    """Tells from the loss curves whether the learning rate is too low or too high, whether
    training stalled, and whether the network overfits or memorizes (SEEDS S3.2).

    At each evaluation (each Keras epoch end with a `val_` loss) and at the end of training it
    classifies the run with `toolkit.callbacks.loss_curve_rules.diagnose_curve` and keeps the
    findings (`findings`: the latest judgement; `history`: each finding when first seen). Each
    has a stable `code` (`learning-rate-too-low`, `learning-rate-too-high`, `diverged`,
    `plateau`, `overfitting`, `generalization-gap`, `healthy`), the `step` where it was seen,
    a `message` with the evidence in numbers and the `action` to take.

    The training curve is the mean batch loss over windows of `every_steps` optimizer steps,
    read from Keras's loss tracker as `toolkit.callbacks.Axes` reads it (no per-step host
    syncs; any `steps_per_execution`); the first windows are 1, 2, 4, ... steps long so the
    curve's start is seen. The starting loss is the loss of `initial_batch` before the first
    update when one is given (`toolkit.fit` gives the first batch of the run), otherwise the
    first window's mean, which is the first batch's loss when `steps_per_execution` is 1.

    With `log_dir`, findings are also written as TensorBoard text (`log_dir/diagnosis`, tag
    `diagnosis`, at the step they were seen). With `warn=True`, the problems of the final
    judgement are also issued as warnings at the end of training. Its state (the curve so far
    and the findings) is saved in `toolkit` checkpoints, so a resumed run judges the whole run.

    Args:
        log_dir: Directory for the TensorBoard text, or `None` (none written). Defaults to
            `None`.
        every_steps: Optimizer steps between curve points. Defaults to `None` (about 50 points
            over the run's budget).
        budget_steps: The run's total step budget, for the default `every_steps`. Defaults to
            `None` (`epochs * steps` of the `fit` call).
        initial_batch: A training batch `(x, y)` or `(x, y, sample_weight)`, or a function
            `step -> batch`, whose loss before the first update is the curve's start. Defaults
            to `None` (the first window's mean).
        warn: Issue the final problems as warnings. Defaults to `True`.

    Example:

    >>> import numpy as np
    >>> keras.utils.set_random_seed(0)
    >>> x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
    >>> y = (x[:, 0] > 0).astype("int32")
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
    ...                           keras.layers.Dense(2)])
    >>> model.compile(keras.optimizers.Adam(1e-7),
    ...               keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> diagnosis = LossCurveDiagnosis(every_steps=8, warn=False)
    >>> _ = model.fit(x, y, batch_size=16, epochs=10, verbose=0, callbacks=[diagnosis])
    >>> [finding.code for finding in diagnosis.findings]
    ['plateau']
    """

    def __init__(
        self,
        log_dir: Optional[str] = None,
        *,
        every_steps: Optional[int] = None,
        budget_steps: Optional[int] = None,
        initial_batch: Union[Any, Callable[[int], Any], None] = None,
        warn: bool = True,
    ):
        super().__init__()
        if every_steps is not None:
            LogPoints(every_steps)  # Validates it with the same message as every logger.
        self.log_dir = os.fspath(log_dir) if log_dir is not None else None
        self.every_steps = every_steps
        self.budget_steps = budget_steps
        self.initial_batch = initial_batch
        self.warn = warn
        self._reset()

    def _reset(self) -> None:
        self.findings: List[CurveFinding] = []
        self.history: List[CurveFinding] = []
        self._steps: List[int] = []
        self._losses: List[float] = []
        self._eval_steps: List[int] = []
        self._eval_losses: List[float] = []
        self._origin: Optional[int] = None
        self._points: Optional[_EarlyLogPoints] = None
        self._windows = MetricWindows()
        self._writer: Optional[ScalarWriter] = None

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self) -> Dict[str, Any]:
        """The constructor arguments (an `initial_batch` is data, not configuration)."""
        return {"log_dir": self.log_dir, "every_steps": self.every_steps,
                "budget_steps": self.budget_steps, "warn": self.warn}

    # Resume (the callback-state protocol of `toolkit.checkpoint.Checkpointer`) ----------------

    def get_state(self) -> Dict[str, Any]:
        """The curve so far, the findings and the logging position."""
        return {
            "steps": list(self._steps), "losses": list(self._losses),
            "eval_steps": list(self._eval_steps), "eval_losses": list(self._eval_losses),
            "origin": self._origin, "every_steps": self._points.every_steps,
            "next_step": self._points.next_step,
            "findings": [f.to_dict() for f in self.findings],
            "history": [f.to_dict() for f in self.history],
            **self._windows.get_state(),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Continues the run that `get_state` describes."""
        self._steps, self._losses = list(state["steps"]), list(state["losses"])
        self._eval_steps = list(state["eval_steps"])
        self._eval_losses = list(state["eval_losses"])
        self._origin = state["origin"]
        self._points = _EarlyLogPoints(int(state["every_steps"]), self._origin)
        self._points.next_step = int(state["next_step"])
        self.findings = [CurveFinding.from_dict(f) for f in state["findings"]]
        self.history = [CurveFinding.from_dict(f) for f in state["history"]]
        self._windows.set_state(state)

    # Keras hooks --------------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._reset()
        step = optimizer_step(self.model)
        self._origin = step
        self._points = _EarlyLogPoints(self._resolve_every_steps(), step)
        self._points.start(step)
        if self.initial_batch is not None:
            loss = _batch_loss(self.model, self.initial_batch, step)
            if loss is not None:
                self._steps.append(step)
                self._losses.append(loss)

    def on_epoch_begin(self, epoch, logs=None):
        self._points.epoch_begin(optimizer_step(self.model))
        self._windows.epoch_begin()

    # Not on_train_batch_end: overriding it makes Keras convert the logs at every step.
    def on_train_batch_begin(self, batch, logs=None):
        step = self._points.due(self.model, batch)
        if step is not None:
            self._read_point(step)

    def on_test_begin(self, logs=None):
        self._end_of_epoch()

    def on_epoch_end(self, epoch, logs=None):
        self._end_of_epoch()
        value = (logs or {}).get("val_loss")
        if value is not None:
            step = optimizer_step(self.model)
            self._eval_steps.append(step)
            self._eval_losses.append(float(value))
            self._judge(step)

    def on_train_end(self, logs=None):
        step = optimizer_step(self.model)
        if not self._steps or step > self._steps[-1]:
            self._read_point(step)
        self._judge(step)
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self.warn:
            for finding in self.findings:
                if finding.severity == "problem":
                    warnings.warn(f"LossCurveDiagnosis: {finding.line()}", stacklevel=2)

    # Internals --------------------------------------------------------------------------------

    def _resolve_every_steps(self) -> int:
        if self.every_steps is not None:
            return self.every_steps
        params = self.params or {}
        budget = self.budget_steps or (params.get("epochs") or 1) * (params.get("steps") or 0)
        every = max(1, -(-budget // _POINTS_PER_RUN)) if budget else 100
        execution = int(getattr(self.model, "steps_per_execution", 1) or 1)
        return -(-every // execution) * execution

    def _end_of_epoch(self) -> None:
        if self._windows.closed:
            return
        step = self._points.due_at_epoch_end(self.model)
        if step is not None:
            self._read_point(step)
        self._windows.close_epoch(self.model)

    def _read_point(self, step: int) -> None:
        value = self._windows.read(self.model).get("loss")
        if value is not None and (not self._steps or step > self._steps[-1]):
            self._steps.append(int(step))
            self._losses.append(float(value))

    def _judge(self, step: int) -> None:
        findings = diagnose_curve(self._steps, self._losses, self._eval_steps, self._eval_losses)
        seen = {f.code: f for f in self.findings}
        new = [f for f in findings if f.code not in seen]
        # A finding that holds keeps the step where it was first seen, with today's evidence.
        self.findings = [
            _at_step(f, seen[f.code].step) if f.code in seen else f for f in findings
        ]
        self.history.extend(new)
        if new and self.log_dir is not None:
            if self._writer is None:
                self._writer = ScalarWriter(os.path.join(self.log_dir, TEXT_DIR))
            text = "\n\n".join(f"**{f.code}** (step {f.step}): {f.message} {f.action}"
                               for f in new)
            self._writer.write_summary(text_summary("diagnosis", text), step)
            self._writer.flush()


class _EarlyLogPoints(LogPoints):
    """`LogPoints` whose first points are 1, 2, 4, ... steps after `origin`, then on the grid."""

    def __init__(self, every_steps: int, origin: Optional[int]):
        super().__init__(every_steps)
        self.origin = origin

    def start(self, step: int) -> None:
        super().start(step)
        if self.origin is not None and step == self.origin:
            self.next_step = step + 1

    def reached(self, step: int) -> bool:
        if step < self.next_step:
            return False
        grid = (step // self.every_steps + 1) * self.every_steps
        early = self.origin + 2 * (step - self.origin) if self.origin is not None else grid
        self.next_step = min(grid, early)
        return True


def _at_step(finding: CurveFinding, step: int) -> CurveFinding:
    values = finding.to_dict()
    values["step"] = step
    return CurveFinding.from_dict(values)


def _batch_loss(model: keras.Model, initial_batch: Any, step: int) -> Optional[float]:
    """The training-mode loss of the batch before any update; the model's state is untouched."""
    batch = initial_batch(step) if callable(initial_batch) else initial_batch
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
    with non_trainable_kept(model):  # a training-mode pass: batch norm, dropout seeds
        y_pred = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
    value = float(keras.ops.convert_to_numpy(unscaled_loss(loss)))
    return value if np.isfinite(value) else None
