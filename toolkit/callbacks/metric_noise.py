"""Metric noise: how far an evaluation metric moves by chance, to tell real improvements apart.

An evaluation metric is measured, not known: on another evaluation set, or a few steps later on
the same one, it would read differently (S1.5: with small batches the validation error is
noisy). `noise_min_delta` turns that noise into the smallest change worth calling an
improvement, one standard error (`NUM_STANDARD_ERRORS`, the "one-standard-error rule" of
Hastie, Tibshirani & Friedman, *The Elements of Statistical Learning*, section 7.10), from two
estimates; the larger one wins:

- **Sampling noise of a rate** (accuracy on `n` examples, a binomial proportion):
  `sqrt(p * (1 - p) / n)`, `p` the rate.
- **Spread of recent evaluations** (any metric, losses too): the noise left after removing a
  local linear trend. Over the last `SPREAD_WINDOW` evaluations, the second differences
  `d_i = v_i - 2 v_(i-1) + v_(i-2)` cancel any linear trend; for independent noise of standard
  deviation `s`, `d_i` has standard deviation `sqrt(6) s`. The median of `|d_i|` (robust to the
  few large ones left by the fast early descent) divided by `0.6745 * sqrt(6)` (0.6745 is the
  median of `|N(0, 1)|`) estimates `s`. It needs `MIN_SPREAD_EVALUATIONS` evaluations, evenly
  spaced in steps.

Keras's `evaluate` returns only the mean loss, so the standard error of the per-example losses
would need a second pass over the evaluation set; the spread measures the noise the stopping
rule actually sees, that of the optimizer's wandering included.

Example:

>>> round(rate_standard_error(0.9, num_examples=400), 4)
0.015
>>> round(noise_min_delta([0.50, 0.52, 0.49, 0.51, 0.50]), 4)  # A flat, noisy curve.
0.0303
"""

import math
from typing import Optional, Sequence

import numpy as np

__all__ = [
    "MIN_SPREAD_EVALUATIONS",
    "NUM_STANDARD_ERRORS",
    "SPREAD_WINDOW",
    "noise_min_delta",
    "rate_standard_error",
    "spread_standard_error",
]

NUM_STANDARD_ERRORS = 1.0
SPREAD_WINDOW = 7
MIN_SPREAD_EVALUATIONS = 5
# Median of |N(0, 1)| times the standard deviation of a second difference of unit noise.
_MEDIAN_ABS_SECOND_DIFFERENCE = 0.6744897501960817 * math.sqrt(6.0)


def rate_standard_error(rate: float, num_examples: int) -> float:
    """Returns the standard error `sqrt(p (1 - p) / n)` of a rate measured on `n` examples.

    Args:
        rate: The measured rate `p` (an accuracy), in `[0, 1]`.
        num_examples: Number of examples `n` it was measured on.

    Returns:
        The standard error, in the units of `rate`.

    Raises:
        ValueError: `rate` is outside `[0, 1]` or `num_examples` is not a positive int.

    Example:

    >>> rate_standard_error(0.5, num_examples=100)
    0.05
    """
    if isinstance(num_examples, bool) or not isinstance(num_examples, (int, np.integer)) \
            or num_examples < 1:
        raise ValueError(
            f"`num_examples` must be a positive int (the evaluation set size). "
            f"Received: num_examples={num_examples!r}."
        )
    if not 0.0 <= rate <= 1.0:
        raise ValueError(
            f"The sampling error sqrt(p(1-p)/n) applies to rates in [0, 1] such as accuracy. "
            f"Received: rate={rate!r}. Monitor an accuracy, or drop `num_eval_examples` to "
            f"measure the noise from the spread of recent evaluations."
        )
    return math.sqrt(rate * (1.0 - rate) / int(num_examples))


def spread_standard_error(values: Sequence[float]) -> Optional[float]:
    """Returns the noise of recent evaluations around a local linear trend, or `None`.

    Args:
        values: The metric at successive, evenly spaced evaluations, oldest first; the last
            `SPREAD_WINDOW` are used.

    Returns:
        `median(|second differences|) / (0.6745 * sqrt(6))`, or `None` with fewer than
        `MIN_SPREAD_EVALUATIONS` finite values.

    Example:

    >>> spread_standard_error([1.0, 2.0, 3.0, 4.0, 5.0])  # A straight line: no noise.
    0.0
    >>> spread_standard_error([1.0, 0.9]) is None  # Too few to tell noise from trend.
    True
    """
    recent = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)[-SPREAD_WINDOW:]
    if recent.size < MIN_SPREAD_EVALUATIONS:
        return None
    second_differences = recent[2:] - 2.0 * recent[1:-1] + recent[:-2]
    return float(np.median(np.abs(second_differences)) / _MEDIAN_ABS_SECOND_DIFFERENCE)


def noise_min_delta(
    values: Sequence[float],
    *,
    rate: Optional[float] = None,
    num_examples: Optional[int] = None,
) -> float:
    """Returns the smallest change of a metric that is more than noise (see the module doc).

    `NUM_STANDARD_ERRORS` times the larger of the spread of `values` and, given `rate` and
    `num_examples`, the rate's sampling error; `0.0` while neither is available.

    Args:
        values: Recent evaluations, oldest first.
        rate: The rate the sampling error is taken at (e.g. the best accuracy). Defaults to
            `None` (no sampling error).
        num_examples: Size of the evaluation set. Defaults to `None` (no sampling error).

    Returns:
        The minimum improvement, in the units of the metric.

    Raises:
        ValueError: For a `rate` outside `[0, 1]` or a bad `num_examples`.

    Example:

    >>> noise_min_delta([0.90, 0.91, 0.90], rate=0.9, num_examples=400)  # Sampling error only.
    0.015
    """
    errors = [spread_standard_error(values)]
    if rate is not None and num_examples is not None:
        errors.append(rate_standard_error(rate, num_examples))
    known = [error for error in errors if error is not None]
    return NUM_STANDARD_ERRORS * max(known) if known else 0.0
