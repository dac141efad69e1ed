"""Schedules as pure functions of the optimizer step: learning rate, final anneal, batch size.

Everything a schedule needs is the step, so a resumed run continues it exactly: Keras evaluates
a `LearningRateSchedule` at `optimizer.iterations`, which the checkpoint restores, and
`toolkit.data.endless` draws step `k`'s batch with `batch_size(k)` examples, so examples seen are
the exact sum and the data position is a function of the step.

- `learning_rate(...)`: constant, step decay, exponential decay per step (S2.12 compares 0.9995
  and 0.999995), or cosine decay over the budget; with `FinalAnneal`, S2.9's brief drop of the
  learning rate over the last part of the budget.
- `BatchSizeSchedule`: the batch grows by a factor at given steps, where a step decay would
  divide the learning rate (S1.6; Smith et al. 2018): the same effect on the noise of the
  updates (the noise scale is about learning rate x dataset size / batch size), in fewer
  optimizer steps.

Example:

>>> schedule = learning_rate(1e-2, "step", steps=300, decay_steps=(100, 200), decay_factor=0.1,
...                          final_anneal_fraction=0.1)
>>> [round(float(schedule(step)), 6) for step in (0, 150, 250, 280, 299)]
[0.01, 0.001, 0.0001, 7e-05, 1.3e-05]
>>> BatchSizeSchedule(64, (100, 200), factor=5)(250)
1600
"""

from typing import Any, Sequence, Union

import keras

__all__ = ["BatchSizeSchedule", "FinalAnneal", "learning_rate"]


@keras.saving.register_keras_serializable(package="toolkit")
class FinalAnneal(keras.optimizers.schedules.LearningRateSchedule):
    """Multiplies a learning rate by a linear ramp from 1 to `factor` over the budget's end.

    Use it for S2.9's final anneal: Adam needs little decay, but lowering the learning rate for
    the last part of the budget settles the weights into the basin they reached.

    Args:
        base: The learning rate before the anneal: a number or a `LearningRateSchedule`.
        total_steps: The budget; the anneal ends there.
        anneal_steps: Length of the anneal, in optimizer steps.
        factor: Learning-rate multiplier reached at `total_steps`. Defaults to `0.1`.

    Example:

    >>> schedule = FinalAnneal(1e-3, total_steps=100, anneal_steps=20)
    >>> [round(float(schedule(step)), 6) for step in (0, 80, 90, 100)]
    [0.001, 0.001, 0.00055, 0.0001]
    """

    def __init__(self, base: Any, total_steps: int, anneal_steps: int, factor: float = 0.1):
        self.base = base
        self.total_steps = int(total_steps)
        self.anneal_steps = max(1, int(anneal_steps))
        self.factor = float(factor)

    def __call__(self, step: Any) -> Any:
        from keras import ops

        step = ops.cast(step, "float32")
        base = self.base(step) if callable(self.base) else self.base
        start = float(self.total_steps - self.anneal_steps)
        progress = ops.clip((step - start) / float(self.anneal_steps), 0.0, 1.0)
        return ops.cast(base, "float32") * (1.0 - (1.0 - self.factor) * progress)

    def get_config(self) -> dict:
        base = (keras.optimizers.schedules.serialize(self.base)
                if isinstance(self.base, keras.optimizers.schedules.LearningRateSchedule)
                else float(self.base))
        return {"base": base, "total_steps": self.total_steps,
                "anneal_steps": self.anneal_steps, "factor": self.factor}

    @classmethod
    def from_config(cls, config: dict) -> "FinalAnneal":
        config = dict(config)
        if isinstance(config["base"], dict):
            config["base"] = keras.optimizers.schedules.deserialize(config["base"])
        return cls(**config)


def learning_rate(
    initial: float, schedule: str = "constant", *, steps: int,
    decay_steps: Sequence[int] = (), decay_factor: float = 0.1, decay_rate: float = 0.9995,
    final_anneal_fraction: float = 0.0, final_anneal_factor: float = 0.1,
) -> Union[float, keras.optimizers.schedules.LearningRateSchedule]:
    """The learning rate of a recipe: a number or a Keras schedule of the optimizer step.

    Args:
        initial: The learning rate at step 0.
        schedule: `"constant"`, `"step"` (times `decay_factor` at each of `decay_steps`),
            `"exponential"` (times `decay_rate` every step) or `"cosine"` (from `initial` to
            `initial * decay_factor` over `steps`). Defaults to `"constant"`.
        steps: The budget, in optimizer steps.
        decay_steps: Steps where `"step"` decays. Defaults to `()`.
        decay_factor: Multiplier of `"step"` at each boundary; final fraction of `"cosine"`.
            Defaults to `0.1`.
        decay_rate: Per-step multiplier of `"exponential"`. Defaults to `0.9995`.
        final_anneal_fraction: Fraction of the budget, at its end, over which `FinalAnneal`
            ramps the rate down; `0` for none. Defaults to `0.0`.
        final_anneal_factor: The anneal's final multiplier. Defaults to `0.1`.

    Returns:
        A float (constant, no anneal) or a `LearningRateSchedule`.

    Raises:
        ValueError: For an unknown schedule.

    Example:

    >>> round(float(learning_rate(1e-3, "exponential", steps=1000, decay_rate=0.999)(1000)), 7)
    0.0003677
    """
    schedules = keras.optimizers.schedules
    if schedule == "constant":
        rate = float(initial)
    elif schedule == "step":
        values = [float(initial) * decay_factor ** i for i in range(len(decay_steps) + 1)]
        # Keras switches after a boundary (step > boundary): the decay applies from the step.
        rate = schedules.PiecewiseConstantDecay([int(s) - 1 for s in decay_steps], values)
    elif schedule == "exponential":
        rate = schedules.ExponentialDecay(float(initial), decay_steps=1, decay_rate=decay_rate)
    elif schedule == "cosine":
        rate = schedules.CosineDecay(float(initial), decay_steps=int(steps), alpha=decay_factor)
    else:
        raise ValueError(f"Unknown learning-rate schedule {schedule!r}: use constant, step, "
                         f"exponential or cosine.")
    if final_anneal_fraction > 0:
        rate = FinalAnneal(rate, total_steps=steps,
                           anneal_steps=round(final_anneal_fraction * steps),
                           factor=final_anneal_factor)
    return rate


class BatchSizeSchedule:
    """Batch size as a pure function of the step: `base`, times `factor` at each boundary.

    Give it to `toolkit.data.endless` as its `batch_size` (S1.6; Smith et al. 2018, "Don't
    decay the learning rate, increase the batch size").

    Args:
        base: The batch size from step 0.
        boundaries: Steps where the batch grows, ascending.
        factor: Growth at each boundary. Defaults to `2`.

    Example:

    >>> schedule = BatchSizeSchedule(32, (10, 20), factor=2)
    >>> [schedule(step) for step in (0, 9, 10, 19, 20, 1000)]
    [32, 32, 64, 64, 128, 128]
    """

    def __init__(self, base: int, boundaries: Sequence[int], factor: int = 2):
        self.base, self.boundaries, self.factor = int(base), tuple(boundaries), int(factor)

    def __call__(self, step: int) -> int:
        grown = sum(1 for boundary in self.boundaries if step >= boundary)
        return self.base * self.factor ** grown

    def __repr__(self) -> str:
        return (f"BatchSizeSchedule({self.base}, {list(self.boundaries)}, "
                f"factor={self.factor})")
