"""Progress: one progress bar over a whole step budget, across every interval and resume."""

import sys
import time
from typing import IO, Callable, Mapping, Optional

import keras
import numpy as np

from toolkit.callbacks.log_points import LogPoints, optimizer_step

__all__ = ["Progress"]

_BAR_WIDTH = 24


@keras.saving.register_keras_serializable(package="toolkit")
class Progress(keras.callbacks.Callback):
    """Shows training progress against the whole step budget, not per epoch.

    Keras's bar restarts at every epoch, and `toolkit.train.fit` runs one epoch per evaluation
    interval, so `fit` turns Keras's bar off and uses this one: it counts optimizer steps up to
    the budget (`step/steps`), so a resumed or continued run starts where the previous one
    stopped. It is redrawn every `every_steps` steps (no per-step host sync; see
    `toolkit.callbacks.log_points`) with the throughput of this run, the time left and the
    training metrics Keras reports (means since the interval began). Each evaluation adds a line
    with the `val_` metrics. On a terminal the bar is redrawn in place; otherwise (a log file,
    CI) a line is written at most every 10% of the budget, and one at the end with the total time.

    Args:
        steps: The step budget the bar runs to (total optimizer steps). Defaults to `None`:
            `epochs * steps_per_epoch` of the `model.fit` call, when Keras knows both.
        every_steps: Optimizer steps between redraws. Defaults to `100`.
        stream: Where to write. Defaults to `None` (`sys.stdout`).

    Example:

    >>> import io
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> stream = io.StringIO()
    >>> _ = model.fit(np.zeros((32, 2)), np.zeros(32), batch_size=8, epochs=2, verbose=0,
    ...               callbacks=[Progress(steps=8, every_steps=4, stream=stream)])
    >>> stream.getvalue().splitlines()[-1].startswith("8/8 [")
    True
    """

    def __init__(
        self, steps: Optional[int] = None, *, every_steps: int = 100, stream: Optional[IO] = None
    ):
        super().__init__()
        self.steps = steps
        self.every_steps = every_steps
        self.stream = stream
        self._points = LogPoints(every_steps)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self):
        """The constructor arguments but `stream` (an open file is not configuration)."""
        return {"steps": self.steps, "every_steps": self.every_steps}

    def on_train_begin(self, logs=None):
        self._stream = self.stream if self.stream is not None else sys.stdout
        self._dynamic = bool(getattr(self._stream, "isatty", lambda: False)())
        self._target = self.steps
        if self._target is None:
            epochs, steps = self.params.get("epochs"), self.params.get("steps")
            self._target = epochs * steps if epochs and steps else None
        self._start_step = optimizer_step(self.model)
        self._points.start(self._start_step)
        self._start_time = time.monotonic()
        self._last_decile = -1
        self._line_open = False

    def on_epoch_begin(self, epoch, logs=None):
        self._points.epoch_begin(optimizer_step(self.model))

    # Not on_train_batch_end: overriding it makes Keras convert the logs at every step.
    def on_train_batch_begin(self, batch, logs=None):
        step = self._points.due(self.model, batch)
        if step is not None:
            self._draw(step, self.model.get_metrics_result)

    def on_epoch_end(self, epoch, logs=None):
        step = self._points.due_at_epoch_end(self.model)
        if step is not None:
            self._draw(step, lambda: logs)
        validation = {k: v for k, v in (logs or {}).items() if k.startswith("val_")}
        if validation:
            step = optimizer_step(self.model)
            self._end_line()
            self._stream.write(f"step {step}: {_format_metrics(validation)}\n")
            self._stream.flush()

    def on_train_end(self, logs=None):
        step = optimizer_step(self.model)
        self._draw(step, lambda: logs, final=True)
        self._end_line()
        self._stream.flush()

    def _draw(self, step: int, metrics: Callable[[], Optional[Mapping]], final=False) -> None:
        # `metrics` is called only when a line is written: reading them costs device reads.
        target = self._target
        decile = int(step / target * 10) if target else step // self.every_steps
        if not (self._dynamic or final or decile > self._last_decile):
            return
        done = step - self._start_step
        elapsed = time.monotonic() - self._start_time
        rate = done / elapsed if elapsed > 0 and done > 0 else None
        if target:
            fraction = min(max(step / target, 0.0), 1.0)
            filled = int(round(fraction * _BAR_WIDTH))
            head = f"{step}/{target} [{'=' * filled}{'.' * (_BAR_WIDTH - filled)}] {fraction:4.0%}"
        else:
            fraction, head = None, f"step {step}"
        parts = [head]
        if rate is not None:
            parts.append(f"{rate:,.0f} steps/s")
            if target and not final:
                parts.append(f"ETA {_format_seconds(max(target - step, 0) / rate)}")
            elif final:
                parts.append(f"{_format_seconds(elapsed)}")
        shown = {k: v for k, v in (metrics() or {}).items() if not k.startswith("val_")}
        if shown:
            parts.append(_format_metrics(shown))
        line = " - ".join(parts)
        if self._dynamic:
            self._stream.write("\r" + line + "\033[K")
            self._line_open = True
            self._stream.flush()
            return
        self._last_decile = decile
        self._stream.write(line + "\n")

    def _end_line(self) -> None:
        if self._line_open:
            self._stream.write("\n")
            self._line_open = False


def _format_metrics(metrics: Mapping) -> str:
    return " - ".join(f"{name}: {float(np.asarray(value)):.4g}" for name, value in metrics.items())


def _format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
