"""diagnose_curve: what a training run's loss curves say about it (SEEDS S3.2), as findings.

A pure function over the points a run logged: batch-loss means at log points (their first one
the loss before any update) and evaluation losses. `LossCurveDiagnosis` feeds it during
training; it is separate so that each rule can be read, tested and calibrated on its own.

The rules, in order (a run may get several findings):

- `diverged`: a non-finite loss, or a run that ends well above the loss it started from.
- `learning-rate-too-high`: the loss blew up far above its starting value at some point, or
  fell then rose again (gave back a good part of its progress), or made no progress while
  bouncing.
- `learning-rate-too-low`: a slow decrease: the first 20% of the steps did not remove half of
  the starting loss as they do in a healthy run, less than 75% of it is gone by now, and the
  loss is still falling at the end; or a loss that barely moved but falls steadily.
- `plateau`: the last quarter of the steps so far brought no progress.
- `overfitting`: the evaluation loss rose from its best value while the training loss kept
  falling.
- `generalization-gap`: the training loss is an order of magnitude or more below the
  evaluation loss (memorization), whatever the evaluation trend.
- `healthy`: none of the problems above: fast early fall, then convergence.

Levels are medians of the points in a span of steps, so one noisy window does not decide.

Example:

>>> steps = list(range(0, 1001, 50))
>>> losses = [2.3 * (1 - 0.00003 * s) for s in steps]  # 3% over 1000 steps, linear
>>> [f.code for f in diagnose_curve(steps, losses)]
['learning-rate-too-low']
"""

import dataclasses
import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

__all__ = ["CurveFinding", "diagnose_curve", "SEVERITIES"]

SEVERITIES = ("problem", "note", "ok")

# Calibrated on this project's recipes (docs/diagnosis.md has the runs and their numbers): at
# their default learning rates, at 1000x below and at 100x above.

# Too few points cannot show a shape: a healthy run and a stuck one look alike over 3 points.
MIN_POINTS = 6
# Nor can too few steps: over a few dozen steps the batch-to-batch noise of the loss (10-30% of
# its value at batch size 32) is as large as the trend a learning rate leaves.
MIN_STEPS = 50
# "The end" and "the early part" of a curve, as fractions of the steps run so far.
END_FRACTION = 0.2
EARLY_FRACTION = 0.2
# Loss above 3x its starting value: an update overshot badly. At a good learning rate the
# recipes' batch losses never went above 1.2x the first batch's loss (the first steps of Adam
# with variance-scaling init and a linear output start at about ln(classes) and only fall).
SPIKE_RATIO = 3.0
# Ending 50% above the start: training made the model worse than its initialization.
DIVERGED_RATIO = 1.5
# Falling then rising: the end level gave back more than a quarter of the best progress.
RISE_FRACTION = 0.25
# "No progress": less than 10% of the starting loss gone.
NO_PROGRESS_FALL = 0.10
# A curve that made no progress but bounces by more than a quarter of its starting loss (the
# standard deviation of its points over the second half) is read as a too-high learning rate;
# a flat one as a plateau (batch-loss windows of the recipes vary by 1-7% of the start).
BOUNCE = 0.25
# A slow run: less than 75% of the starting loss gone by now (the recipes at their default
# rates: 80-99.99%; mnist1d_cnn at 1000x below: 49%) ...
SLOW_FALL = 0.75
# ... without the fast start of a healthy run, which loses more than half of its starting loss
# in its first 20% of steps (the recipes: 58-98%; mnist1d_cnn at 1000x below: 32%) ...
FAST_START_FALL = 0.5
# ... and still falling at the end: the last 20% of the steps lowered the level by 2% or more.
STILL_FALLING = 0.02
# Plateau: the last 25% of the steps improved the level by less than 2% of the level before,
# while the loss is still above 1% of its start (below that it has little left to lose: the
# default recipes memorize their training sets down to 1e-5 of their starting loss).
PLATEAU_SPAN = 0.25
PLATEAU_MIN_IMPROVEMENT = 0.02
PLATEAU_FLOOR = 0.01
# Overfitting: the evaluation loss ends 15% or more above its best value, and every evaluation
# after the best one is 5% or more above it: a rise that persists, not one noisy evaluation
# (mnist1d_cnn_augmented's test loss wobbles between 0.114 and 0.176 from one evaluation to the
# next; mnist1d_mlp's rises steadily from 1.125 to 1.42).
OVERFIT_RISE = 0.15
OVERFIT_NOISE = 0.05
# Generalization gap: an order of magnitude between training and evaluation loss.
GAP_RATIO = 10.0


@dataclasses.dataclass(frozen=True)
class CurveFinding:
    """One judgement about a run's loss curves.

    Args:
        code: Stable identifier (`learning-rate-too-low`, `learning-rate-too-high`, `diverged`,
            `plateau`, `overfitting`, `generalization-gap`, `healthy`).
        step: Optimizer step at which it was seen.
        message: One sentence: what was found, with its evidence in numbers.
        action: What to do about it.
        severity: `"problem"`, `"note"` (worth knowing, not wrong) or `"ok"`.
        evidence: The numbers behind the message, by name.
    """

    code: str
    step: int
    message: str
    action: str
    severity: str = "problem"
    evidence: Dict[str, float] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        """The finding as JSON-able values (`summary.json`, checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "CurveFinding":
        """The inverse of `to_dict`."""
        return cls(**values)

    def line(self) -> str:
        """The finding as one line: code, step, message and action."""
        return f"{self.code} (step {self.step}): {self.message} {self.action}"


def diagnose_curve(
    steps: Sequence[int],
    losses: Sequence[float],
    eval_steps: Sequence[int] = (),
    eval_losses: Sequence[float] = (),
) -> List[CurveFinding]:
    """Classifies a run from its training and evaluation loss points (see the module doc).

    Args:
        steps: Optimizer step of each training point, increasing; the first point's loss is
            taken as the run's starting loss (log the first step, as `LossCurveDiagnosis`
            does).
        losses: Training loss at each point (a mean over the steps since the previous one).
        eval_steps: Optimizer step of each evaluation. Defaults to `()`.
        eval_losses: Evaluation loss at each evaluation. Defaults to `()`.

    Returns:
        The findings, problems first; `[healthy]` when there is none and the curve has enough
        points; `[]` when it has fewer than `MIN_POINTS` points or spans fewer than `MIN_STEPS`
        steps (a non-finite loss is reported whatever the length).

    Example:

    >>> steps = list(range(0, 1001, 50))
    >>> losses = [2.3 / (1 + s / 20) for s in steps]  # fast early fall, then convergence
    >>> [f.code for f in diagnose_curve(steps, losses, [500, 1000], [0.2, 0.21])]
    ['healthy']
    >>> [f.code for f in diagnose_curve(steps, losses, [500, 1000], [0.3, 0.9])]
    ['generalization-gap']
    """
    steps = np.asarray(steps, dtype=np.int64)
    losses = np.asarray(losses, dtype=np.float64)
    if steps.shape != losses.shape:
        raise ValueError(
            f"`steps` and `losses` must have the same length. Received: {len(steps)} steps and "
            f"{len(losses)} losses. Pass one loss per step."
        )
    eval_steps = np.asarray(eval_steps, dtype=np.int64)
    eval_losses = np.asarray(eval_losses, dtype=np.float64)
    bad = _non_finite(steps, losses, eval_steps, eval_losses)
    if bad is not None:
        return [bad]
    if len(steps) < MIN_POINTS or steps[-1] - steps[0] < MIN_STEPS:
        return []
    curve = _Curve(steps, losses)
    findings = _learning_rate(curve)
    if not findings:
        findings += _plateau(curve)
    findings += _evaluation(curve, eval_steps, eval_losses)
    if not any(f.severity == "problem" for f in findings):
        findings.insert(0, _healthy(curve))
    return findings


class _Curve:
    """Levels (medians) of a training curve over spans of its steps."""

    def __init__(self, steps: np.ndarray, losses: np.ndarray):
        self.steps, self.losses = steps, losses
        self.first, self.last = int(steps[0]), int(steps[-1])
        self.start = float(losses[0])
        self.elapsed = max(1, self.last - self.first)
        self.end = self.level(1 - END_FRACTION, 1.0)

    def level(self, begin: float, end: float) -> float:
        """Median loss of the points in a span given as fractions of the elapsed steps; the
        nearest point when the span holds none."""
        lo = self.first + begin * self.elapsed
        hi = self.first + end * self.elapsed
        inside = self.losses[(self.steps >= lo) & (self.steps <= hi)]
        if len(inside) == 0:
            return float(self.losses[np.argmin(np.abs(self.steps - hi))])
        return float(np.median(inside))

    def best_level(self) -> tuple:
        """The lowest median over sliding spans of 5 points, and the step at its middle."""
        width = min(5, len(self.losses))
        medians = [np.median(self.losses[i:i + width]) for i in range(len(self.losses) - width + 1)]
        i = int(np.argmin(medians))
        return float(medians[i]), int(self.steps[i + width // 2])


def _non_finite(steps, losses, eval_steps, eval_losses) -> Optional[CurveFinding]:
    for kind, where, values in (("training", steps, losses), ("evaluation", eval_steps,
                                                                eval_losses)):
        bad = ~np.isfinite(values)
        if bad.any():
            step = int(where[np.argmax(bad)])
            return CurveFinding(
                "diverged", step,
                f"The {kind} loss is {values[np.argmax(bad)]} at step {step}.",
                "Lower the learning rate 10x (or run `toolkit find-lr`); if it still diverges, "
                "run `toolkit doctor` (initialization, exploding gradients).",
                evidence={"step": step},
            )
    return None


def _learning_rate(curve: _Curve) -> List[CurveFinding]:
    start, end = curve.start, curve.end
    peak_index = int(np.argmax(curve.losses))
    peak, peak_step = float(curve.losses[peak_index]), int(curve.steps[peak_index])
    best, best_step = curve.best_level()
    fall = start - end
    evidence = {"start_loss": start, "end_loss": end, "peak_loss": peak, "best_loss": best,
                "steps": curve.elapsed}
    too_high_action = ("Lower the learning rate 3-10x, or run `toolkit find-lr` to measure the "
                       "largest stable one.")
    # Against the first tenth of the run too: one small first batch can start low by chance.
    early = float(np.median(curve.losses[curve.steps <= curve.first + 0.1 * curve.elapsed]))
    if end > DIVERGED_RATIO * max(start, early):
        return [CurveFinding(
            "diverged", curve.last,
            f"The loss ends at {end:.4g}, {end / start:.1f}x the {start:.4g} it started from: "
            f"training made the model worse (it peaked at {peak:.4g} at step {peak_step}).",
            too_high_action, evidence=evidence)]
    if peak > SPIKE_RATIO * start:
        ends = (f"it ends at {end:.4g}, {fall / start:.0%} below its start" if fall > 0
                else f"it ends at {end:.4g}, no lower than its start")
        return [CurveFinding(
            "learning-rate-too-high", peak_step,
            f"The loss jumped to {peak:.4g} at step {peak_step}, {peak / start:.0f}x its "
            f"starting {start:.4g}; {ends}. A healthy run never rises far above its start.",
            too_high_action, evidence=evidence)]
    if start - best >= NO_PROGRESS_FALL * start and end - best > RISE_FRACTION * (start - best):
        return [CurveFinding(
            "learning-rate-too-high", curve.last,
            f"The loss fell from {start:.4g} to {best:.4g} (step {best_step}) and rose again "
            f"to {end:.4g}, giving back {(end - best) / (start - best):.0%} of its progress.",
            too_high_action, evidence=evidence)]
    if fall < NO_PROGRESS_FALL * start:
        return [_no_progress(curve, evidence)]
    early_fall = (start - curve.level(EARLY_FRACTION - 0.05, EARLY_FRACTION + 0.05)) / start
    before_end = curve.level(1 - 2 * END_FRACTION, 1 - END_FRACTION)
    still = (before_end - end) / before_end if before_end > 0 else 0.0
    if fall < SLOW_FALL * start and early_fall < FAST_START_FALL and still >= STILL_FALLING:
        return [CurveFinding(
            "learning-rate-too-low", curve.last,
            f"The loss fell {early_fall:.0%} in the first 20% of the steps and {fall / start:.0%} "
            f"over all {curve.elapsed} ({start:.4g} -> {end:.4g}), and it is still falling "
            f"({still:.0%} over the last 20%): a healthy run loses more than half of its "
            f"starting loss in its first 20% of steps, then converges.",
            "Raise the learning rate 3-10x, or run `toolkit find-lr`.",
            evidence={**evidence, "early_fall": early_fall, "still_falling": still})]
    return []


def _no_progress(curve: _Curve, evidence: Dict[str, float]) -> CurveFinding:
    start, end = curve.start, curve.end
    spread = float(np.std(curve.losses[curve.steps >= curve.first + 0.5 * curve.elapsed]))
    trend = np.polyfit(curve.steps - curve.first, curve.losses, 1)[0] * curve.elapsed
    if trend < 0 and -trend > 2 * spread:
        return CurveFinding(
            "learning-rate-too-low", curve.last,
            f"The loss fell only {(start - end) / start:.1%} over {curve.elapsed} steps "
            f"({start:.4g} -> {end:.4g}), slowly and steadily; a healthy run falls by half or "
            f"more in its first 20% of steps.",
            "Raise the learning rate 10x or more, or run `toolkit find-lr`.",
            evidence={**evidence, "trend": float(trend), "spread": spread})
    return CurveFinding(
        "learning-rate-too-high" if spread > BOUNCE * start else "plateau",
        curve.last,
        f"The loss did not fall: {start:.4g} at the start, {end:.4g} at the end of "
        f"{curve.elapsed} steps (spread {spread:.3g} over the second half).",
        "Run `toolkit doctor`: a network that does not learn at all usually has a too-high "
        "learning rate (dead units after a blow-up), a bad initialization or broken data; "
        "`toolkit find-lr` measures a working learning rate.",
        evidence={**evidence, "trend": float(trend), "spread": spread})


def _plateau(curve: _Curve) -> List[CurveFinding]:
    before = curve.level(1 - 2 * PLATEAU_SPAN, 1 - PLATEAU_SPAN)
    after = curve.level(1 - PLATEAU_SPAN, 1.0)
    improvement = (before - after) / before if before > 0 else 0.0
    if improvement >= PLATEAU_MIN_IMPROVEMENT or after < PLATEAU_FLOOR * curve.start:
        return []
    since = int(curve.first + (1 - PLATEAU_SPAN) * curve.elapsed)
    return [CurveFinding(
        "plateau", curve.last,
        f"The training loss stopped improving: {before:.4g} before step {since}, {after:.4g} "
        f"after it ({improvement:+.1%}).",
        "More steps at this learning rate are wasted: anneal the learning rate over the last "
        "part of the budget, grow the batch, or stop earlier.",
        severity="note",
        evidence={"loss_before": before, "loss_after": after, "improvement": improvement})]


def _evaluation(curve: _Curve, eval_steps: np.ndarray, eval_losses: np.ndarray):
    findings: List[CurveFinding] = []
    if len(eval_losses) == 0:
        return findings
    last_step, last = int(eval_steps[-1]), float(eval_losses[-1])
    best_index = int(np.argmin(eval_losses))
    best_step, best = int(eval_steps[best_index]), float(eval_losses[best_index])
    train_at_best = _train_level_at(curve, best_step)
    later = eval_losses[best_index + 1:]
    if (len(later) >= 2 and best > 0 and bool(np.all(later > (1 + OVERFIT_NOISE) * best))
            and last > (1 + OVERFIT_RISE) * best and curve.end < train_at_best):
        findings.append(CurveFinding(
            "overfitting", last_step,
            f"The evaluation loss rose {last / best - 1:.0%} from its best {best:.4g} (step "
            f"{best_step}) to {last:.4g} (step {last_step}) while the training loss kept "
            f"falling ({train_at_best:.4g} -> {curve.end:.4g}).",
            f"Keep the weights of step {best_step} (stop there, or keep the best checkpoint); "
            f"add data or augmentation, or regularize (weight decay, dropout, a smaller model).",
            evidence={"best_eval_loss": best, "best_step": best_step, "eval_loss": last,
                      "train_loss_at_best": train_at_best, "train_loss": curve.end}))
    train = _train_level_at(curve, last_step)
    if train > 0 and last / train >= GAP_RATIO:
        findings.append(CurveFinding(
            "generalization-gap", last_step,
            f"The training loss {train:.2g} is {last / train:,.0f}x below the evaluation loss "
            f"{last:.3g} (step {last_step}): the network has memorized its training set.",
            "More data or random augmentation, regularization (weight decay, dropout) or a "
            "smaller model; the best evaluation loss was "
            f"{best:.3g} at step {best_step}.",
            evidence={"train_loss": train, "eval_loss": last, "ratio": last / train}))
    return findings


def _train_level_at(curve: _Curve, step: int) -> float:
    """The median training loss of the points within 5% of the elapsed steps before `step`."""
    window = max(1, int(math.ceil(0.05 * curve.elapsed)))
    inside = curve.losses[(curve.steps <= step) & (curve.steps > step - window)]
    if len(inside) == 0:
        return float(curve.losses[np.argmin(np.abs(curve.steps - step))])
    return float(np.median(inside))


def _healthy(curve: _Curve) -> CurveFinding:
    fall = curve.start - curve.end
    early_fall = (curve.start - curve.level(EARLY_FRACTION - 0.05, EARLY_FRACTION + 0.05))
    early_fall /= curve.start
    return CurveFinding(
        "healthy", curve.last,
        f"The loss fell {fall / curve.start:.0%} ({curve.start:.4g} -> {curve.end:.4g}), "
        f"{early_fall:.0%} in the first 20% of the {curve.elapsed} steps: a fast early fall, "
        f"then convergence.",
        "Nothing to change in the learning rate.",
        severity="ok",
        evidence={"start_loss": curve.start, "end_loss": curve.end, "early_fall": early_fall})
