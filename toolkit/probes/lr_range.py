"""find_learning_rate: the learning-rate range test, with a rule that holds from seed to seed.

The sweep trains the model for `num_steps` steps while the learning rate grows exponentially from
`min_learning_rate` to `max_learning_rate`, recording the batch loss of each step, and stops
early once the loss diverges. Steps run through Keras's own compiled train step
(`Model.train_on_batch`), so the loss, regularization and metrics are exactly those of `fit`.
Afterwards every model and optimizer variable (weights, Adam's moments, `iterations`, the
learning rate) is put back bit for bit (`toolkit.probes.ModelSnapshot`), even on an error.

The rule. The batch losses are smoothed with a Gaussian kernel over log10(learning rate)
(`SMOOTHING_DECADES`): zero lag, unlike the exponential average of other finders, and it averages
out batch noise and narrow local minima. The suggestion is the learning rate at the minimum of the
smoothed loss divided by `MINIMUM_DIVISOR`. Measured on 100-step sweeps of the shipped recipes
over 5-10 seeds: the steepest-slope rule of other finders spread 11x (`mnist1d_cnn`, on this
smoothing) to 180,000x (`digits_mlp`, fastai's exponential average) between seeds, and sat on the
flat start of the curve; the smoothed minimum spread 1.2-1.5x (`digits_mlp`) and 1.75-2.1x
(`mnist1d_cnn`). Without a clear descent, or with too few points
before divergence, there is no suggestion (`None`) and a warning says what to change.

Example:

>>> import keras, numpy as np
>>> x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
>>> y = (x[:, 0] * x[:, 1] > 0).astype("int32")
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(32, activation="relu"),
...                           keras.layers.Dense(2)])
>>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> search = find_learning_rate(model, (x, y), batch_size=64)
>>> 1e-3 < search.suggestion < 0.3, int(model.optimizer.iterations)
(True, 0)
"""

import dataclasses
import math
import os
import warnings
from pathlib import Path
from typing import Any, Iterator, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from toolkit import atomic_write
from toolkit.data import endless
from toolkit.errors import DataError, ModelError, RecipeError
from toolkit.probes.snapshot import ModelSnapshot

__all__ = ["LearningRateSearch", "find_learning_rate"]

# fastai's range: every rate Adam or SGD is usefully run at lies between, and the sweep stops on
# divergence anyway, so a high end far past it costs a few steps at most.
DEFAULT_MIN_LEARNING_RATE, DEFAULT_MAX_LEARNING_RATE = 1e-7, 10.0
# 12.5 points per decade over the default 8 decades; 1-3 s on CPU for the shipped recipes. 200
# steps measured no steadier (mnist1d_cnn spread 3.3x vs 1.75x over 5 seeds).
DEFAULT_NUM_STEPS = 100
# The smoothing needs a few points under its kernel (+-1 sigma = 0.6 decade => >= 3 points).
MIN_POINTS_PER_DECADE = 5
# Width (sigma) of the Gaussian kernel over log10(learning rate). Over 10 seeds, 0.2 decade let
# noise move the minimum 3.7x on mnist1d_cnn, 0.3 kept it within 2.1x; 0.5 pulled the minimum
# toward the lower rates where the loss was still falling.
SMOOTHING_DECADES = 0.3
# The loss is lowest just short of the rates that stop learning. Trained at the default budget,
# digits_mlp keeps its accuracy up to ~6e-3 (its minimum: ~1.8e-2, ratio 3; 2.5 gave 8.6e-3 to
# 1.3e-2 and lost 0.6-0.8 points on 2 of 3 seeds), mnist1d_cnn from ~3e-3 (minimum ~1.0e-2);
# fastai's 10 gave mnist1d_cnn ~1e-3: 91.7% instead of 97% (benchmarks/validate_find_lr.py).
MINIMUM_DIVISOR = 3.0
# Divergence: an exponential average (memory ~10 steps) above 4x its best (fastai's factor), or
# a non-finite loss. Only the early stop uses this average; the rule uses the zero-lag smoothing.
DIVERGENCE_FACTOR, STOP_AVERAGE_DECAY = 4.0, 0.9
# A smoothed fall under 10% of the starting loss is within batch noise: no descent to read.
MIN_RELATIVE_FALL = 0.1
# Points (before divergence) the smoothed curve needs for a minimum to be more than noise.
MIN_POINTS = 10
DEFAULT_BATCH_SIZE = 32  # Keras's own default for array data.


@dataclasses.dataclass(frozen=True)
class LearningRateSearch:
    """The result of `find_learning_rate`: the curve, the suggestion and why.

    Args:
        learning_rates: Learning rate of each step of the sweep.
        losses: Batch loss of each step (finite values only; the sweep stops at the first other).
        smoothed_losses: `losses` smoothed over log10(learning rate) (`SMOOTHING_DECADES`).
        suggestion: The suggested learning rate, or `None` when the curve shows no usable
            descent (then `rule` says why and what to change).
        rule: One sentence: the rule and the numbers it used.
        stopped_because: Why the sweep ended.

    Example:

    >>> search = LearningRateSearch((1e-3, 1e-2), (2.0, 1.0), (1.8, 1.2), 4e-3, "...", "...")
    >>> search.to_dict()["suggestion"]
    0.004
    """

    learning_rates: Tuple[float, ...]
    losses: Tuple[float, ...]
    smoothed_losses: Tuple[float, ...]
    suggestion: Optional[float]
    rule: str
    stopped_because: str

    def to_dict(self) -> dict:
        """The result as plain JSON-ready Python values."""
        values = dataclasses.asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in values.items()}

    def plot(self, path: str | os.PathLike) -> Path:
        """Writes a PNG of loss against learning rate (log scale), the suggestion marked.

        Args:
            path: The PNG file; its directory is created if missing; written atomically.

        Returns:
            `path` as a `pathlib.Path`.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6.4, 4.2), dpi=100, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots()
        axes.plot(self.learning_rates, self.losses, ".", color="0.6", markersize=3,
                  label="batch loss")
        axes.plot(self.learning_rates, self.smoothed_losses, "-", color="tab:blue",
                  label="smoothed")
        if self.suggestion is not None:
            axes.axvline(self.suggestion, color="tab:red", linestyle="--",
                         label=f"suggestion {self.suggestion:.2g}")
        if self.smoothed_losses:
            # Keep the descent readable: a divergent tail would squash it to the bottom.
            low, high = min(self.smoothed_losses), max(self.smoothed_losses[0], self.losses[0])
            margin = 0.1 * (high - low) or 0.1 * abs(high) or 1.0
            axes.set_ylim(low - margin, high + 3 * margin)
        axes.set_xscale("log")
        axes.set_xlabel("learning rate (log scale)")
        axes.set_ylabel("training loss")
        axes.set_title("Learning-rate range test", fontsize=10)
        axes.legend(fontsize=8)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_write.temporary_path(path) as temporary:
            figure.savefig(temporary, format="png")
        return Path(path)


def find_learning_rate(
    model: keras.Model,
    data: Any,
    *,
    min_learning_rate: float = DEFAULT_MIN_LEARNING_RATE,
    max_learning_rate: float = DEFAULT_MAX_LEARNING_RATE,
    num_steps: int = DEFAULT_NUM_STEPS,
    batch_size: Optional[int] = None,
    seed: int = 0,
) -> LearningRateSearch:
    """Sweeps the learning rate exponentially and suggests one; the model is left untouched.

    Args:
        model: A compiled Keras model whose optimizer has a float learning rate (Adam, SGD...).
            An unbuilt model is built on the first batch.
        data: Training batches: a `tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)`
            batches (e.g. `toolkit.data.endless`; a finite one is repeated), arrays `(x, y)`
            (drawn by `toolkit.data.endless(data, batch_size, seed=seed)`), or an iterable of
            batches.
        min_learning_rate: First learning rate of the sweep. Defaults to `1e-7`.
        max_learning_rate: Last learning rate, if the loss has not diverged before. Defaults to
            `10.0`.
        num_steps: Steps from `min_learning_rate` to `max_learning_rate`, at least 5 per decade.
            Defaults to `100`.
        batch_size: Examples per batch, for array data. Defaults to `None` (32).
        seed: Seed of the batches drawn from array data. Defaults to `0`.

    Returns:
        A `LearningRateSearch`. Its `suggestion` is `None` (with a warning) when the loss did not
        fall, or diverged too early for the rule.

    Raises:
        RecipeError: For a bad range or `num_steps`.
        ModelError: For an uncompiled model, or a learning-rate schedule.

    Example:

    >>> import keras, numpy as np
    >>> x, y = np.random.rand(64, 3).astype("float32"), np.random.rand(64).astype("float32")
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.Adam(1e-3), "mse")
    >>> search = find_learning_rate(model, (x, y), max_learning_rate=1.0, num_steps=40)
    >>> len(search.learning_rates) <= 40, round(float(model.optimizer.learning_rate), 6)
    (True, 0.001)
    """
    _check_arguments(model, min_learning_rate, max_learning_rate, num_steps)
    rates = np.geomspace(min_learning_rate, max_learning_rate, num_steps)
    batches = _batches(data, batch_size, seed)
    first = next(batches, None)
    if first is None:
        raise RecipeError("`find_learning_rate` received data without a single batch. "
                          "Pass a dataset or arrays holding at least one batch.")
    if not model.built:
        model(keras.utils.unpack_x_y_sample_weight(first)[0])
    snapshot = ModelSnapshot.take(model)
    try:
        losses, stopped_because = _sweep(model, rates, first, batches)
    finally:
        snapshot.restore()
    return _search(rates[: len(losses)], np.asarray(losses, dtype=np.float64), stopped_because)


def _check_arguments(model, min_learning_rate, max_learning_rate, num_steps) -> None:
    if not 0 < min_learning_rate < max_learning_rate:
        raise RecipeError(
            f"`find_learning_rate` needs 0 < min_learning_rate < max_learning_rate. Received: "
            f"min_learning_rate={min_learning_rate!r}, max_learning_rate={max_learning_rate!r}. "
            f"Swap them, or keep the defaults (1e-7 to 10)."
        )
    decades = math.log10(max_learning_rate / min_learning_rate)
    needed = max(MIN_POINTS, math.ceil(MIN_POINTS_PER_DECADE * decades))
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < needed:
        raise RecipeError(
            f"`find_learning_rate` needs at least {MIN_POINTS_PER_DECADE} steps per decade of "
            f"learning rate to smooth the loss: num_steps >= {needed} for {decades:.1f} decades. "
            f"Received: num_steps={num_steps!r}. Pass num_steps={max(needed, DEFAULT_NUM_STEPS)} "
            f"or narrow the range."
        )
    if not isinstance(model, keras.Model) or not model.compiled or model.optimizer is None:
        raise ModelError(
            f"`find_learning_rate` needs a compiled keras.Model. Received: "
            f"{getattr(model, 'name', type(model).__name__)!r}, not compiled. Call "
            f"`model.compile(optimizer, loss)` first."
        )
    if not isinstance(model.optimizer.learning_rate, keras.Variable):
        raise ModelError(
            f"`find_learning_rate` sets the learning rate at each step, but "
            f"{type(model.optimizer).__name__} was compiled with a learning-rate schedule. Run "
            f"it on the same model compiled with a float learning rate."
        )


def _batches(data: Any, batch_size: Optional[int], seed: int) -> Iterator[Any]:
    if isinstance(data, tf.data.Dataset):
        if int(data.cardinality()) != int(tf.data.INFINITE_CARDINALITY):
            data = data.repeat()
        return iter(data)
    if isinstance(data, (np.ndarray, tuple, dict)) or tf.is_tensor(data):
        return iter(endless(data, batch_size or DEFAULT_BATCH_SIZE, seed=seed))
    try:
        return iter(data)
    except TypeError:
        raise DataError(
            f"`find_learning_rate` cannot draw batches from {type(data).__name__}. Pass a "
            f"tf.data.Dataset of (x, y) batches, arrays (x, y), or an iterable of batches."
        ) from None


def _sweep(model, rates, first, batches) -> Tuple[list, str]:
    """Trains one step per rate; returns the finite batch losses and why the sweep ended."""
    losses: list = []
    average = best = None
    batch = first
    for step, rate in enumerate(rates):
        if batch is None:
            return losses, f"the data ended after {step} batches"
        model.optimizer.learning_rate = float(rate)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        loss = float(model.train_on_batch(x, y, sample_weight, return_dict=True)["loss"])
        if not math.isfinite(loss):
            return losses, f"the loss became {loss} at learning rate {rate:.3g}"
        losses.append(loss)
        average = loss if average is None else (
            STOP_AVERAGE_DECAY * average + (1 - STOP_AVERAGE_DECAY) * loss)
        best = average if best is None else min(best, average)
        if average > DIVERGENCE_FACTOR * best:
            return losses, (f"the loss diverged at learning rate {rate:.3g} (average "
                            f"{average:.4g} > {DIVERGENCE_FACTOR:g} x its best {best:.4g})")
        batch = next(batches, None)
    return losses, f"it reached max_learning_rate={rates[-1]:.3g} without diverging"


def _smooth(learning_rates: np.ndarray, losses: np.ndarray) -> np.ndarray:
    """Gaussian-weighted average of `losses` over log10(learning rate), `SMOOTHING_DECADES` wide."""
    logs = np.log10(learning_rates)
    weights = np.exp(-0.5 * ((logs[:, None] - logs[None, :]) / SMOOTHING_DECADES) ** 2)
    return (weights @ losses) / weights.sum(axis=1)


def _search(rates: np.ndarray, losses: np.ndarray, stopped_because: str) -> LearningRateSearch:
    if len(losses):
        # A point counts at most the stop threshold (DIVERGENCE_FACTOR x the best average so
        # far): the blow-up that ends the sweep cannot drag the minimum to lower rates, while
        # the spikes before it (instability the suggestion must stay clear of) still count.
        averages = [losses[0]]
        for loss in losses[1:]:
            averages.append(STOP_AVERAGE_DECAY * averages[-1] + (1 - STOP_AVERAGE_DECAY) * loss)
        cap = DIVERGENCE_FACTOR * np.minimum.accumulate(averages)
        losses_for_rule = np.minimum(losses, cap)
        smoothed = _smooth(rates, losses_for_rule)
    else:
        smoothed = np.zeros(0)
    suggestion, rule = _apply_rule(rates, smoothed)
    if suggestion is None:
        warnings.warn(f"The learning-rate range test gave no suggestion: {rule}", stacklevel=3)
    return LearningRateSearch(
        learning_rates=tuple(float(v) for v in rates), losses=tuple(float(v) for v in losses),
        smoothed_losses=tuple(float(v) for v in smoothed), suggestion=suggestion, rule=rule,
        stopped_because=stopped_because,
    )


def _apply_rule(rates: np.ndarray, smoothed: np.ndarray) -> Tuple[Optional[float], str]:
    if len(smoothed) < MIN_POINTS:
        return None, (f"only {len(smoothed)} finite points before the sweep stopped (the rule "
                      f"needs {MIN_POINTS}); lower min_learning_rate or raise num_steps.")
    lowest = int(np.argmin(smoothed))
    start, bottom = float(smoothed[0]), float(smoothed[lowest])
    if start - bottom < MIN_RELATIVE_FALL * abs(start) or lowest < MIN_POINTS // 2:
        return None, (f"the smoothed loss did not fall (from {start:.4g} to at best {bottom:.4g} "
                      f"at learning rate {rates[lowest]:.3g}); the model may not learn at any "
                      f"rate: run `toolkit doctor`, or widen the range.")
    at_minimum = float(rates[lowest])
    suggestion = at_minimum / MINIMUM_DIVISOR
    rule = (f"smoothed loss (Gaussian over {SMOOTHING_DECADES} decade of learning rate) lowest, "
            f"{bottom:.4g} (from {start:.4g}), at learning rate {at_minimum:.3g}; suggestion = "
            f"{at_minimum:.3g} / {MINIMUM_DIVISOR:g} = {suggestion:.3g}.")
    if lowest == len(smoothed) - 1:
        rule += " The loss was still falling at the last rate: raise max_learning_rate."
    return suggestion, rule
