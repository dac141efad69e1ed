"""StepHistory: what `toolkit.fit` returns, indexed by optimizer step, and the callback filling it."""

import dataclasses
import math
from typing import Dict, List, Mapping, Optional

import keras

from toolkit.clock import TrainClock, optimizer_step

__all__ = ["StepHistory", "HistoryRecorder"]


@dataclasses.dataclass
class StepHistory:
    """Metrics at the end of each evaluation interval of one `fit` call, indexed by step.

    Where Keras's `History` is indexed by epoch, this one is indexed by optimizer step (the
    step *after* the interval), with the examples seen and the training wall time at that point,
    so a curve can be drawn on any of the axes of S0.3. Training metrics are Keras's values for
    the interval (the mean over the interval's steps); evaluation metrics are prefixed `val_`.
    A metric missing at some point (e.g. no evaluation data) is `nan` there.

    Args:
        steps: Optimizer step at each point.
        history: Metric name to the list of its values, aligned with `steps`.
        examples_seen: Training examples drawn before each point.
        wall_seconds: Training wall time at each point, summed over resumed runs.

    Example:

    >>> history = StepHistory()
    >>> history.append(100, examples_seen=3200, wall_seconds=1.5, logs={"loss": 0.5})
    >>> history.append(200, examples_seen=6400, wall_seconds=2.5, logs={"loss": 0.25})
    >>> history.steps, history.history["loss"]
    ([100, 200], [0.5, 0.25])
    >>> history.final()
    {'loss': 0.25}
    """

    steps: List[int] = dataclasses.field(default_factory=list)
    history: Dict[str, List[float]] = dataclasses.field(default_factory=dict)
    examples_seen: List[int] = dataclasses.field(default_factory=list)
    wall_seconds: List[float] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.steps)

    def append(
        self, step: int, *, examples_seen: int, wall_seconds: float, logs: Mapping[str, float]
    ) -> None:
        """Adds the point of optimizer step `step` with its metric values `logs`."""
        for name in logs:
            if name not in self.history:
                self.history[name] = [math.nan] * len(self.steps)
        for name, values in self.history.items():
            values.append(float(logs[name]) if name in logs else math.nan)
        self.steps.append(int(step))
        self.examples_seen.append(int(examples_seen))
        self.wall_seconds.append(float(wall_seconds))

    def final(self) -> Dict[str, float]:
        """Returns each metric's value at the last point (empty when there is no point)."""
        if not self.steps:
            return {}
        return {name: values[-1] for name, values in self.history.items()}


class HistoryRecorder(keras.callbacks.Callback):
    """Appends a `StepHistory` point at each epoch end (an evaluation interval inside `fit`)."""

    def __init__(self, history: StepHistory, clock: Optional[TrainClock]):
        super().__init__()
        self.history = history
        self.clock = clock

    def get_state(self):
        """The points so far (a resumed run's history continues them)."""
        return dataclasses.asdict(self.history)

    def set_state(self, state):
        for field in dataclasses.fields(StepHistory):
            setattr(self.history, field.name, [] if field.name != "history" else {})
        self.history.steps.extend(int(s) for s in state["steps"])
        self.history.examples_seen.extend(int(e) for e in state["examples_seen"])
        self.history.wall_seconds.extend(float(w) for w in state["wall_seconds"])
        self.history.history.update({k: [float(v) for v in vs] for k, vs in state["history"].items()})

    def on_epoch_end(self, epoch, logs=None):
        step = optimizer_step(self.model)
        if self.clock is None:
            examples, wall = 0, math.nan
        else:
            reading = self.clock.tick(step)
            examples, wall = reading.examples_seen, reading.wall_seconds
        logs = {name: float(value) for name, value in (logs or {}).items()}
        self.history.append(step, examples_seen=examples, wall_seconds=wall, logs=logs)
