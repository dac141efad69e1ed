"""Step arithmetic of `fit`: intervals on the evaluation grid, grouped into `Model.fit` calls."""

from typing import List, Optional, Tuple

__all__ = ["interval_plan", "fit_calls"]


def interval_plan(start: int, steps: int, every: Optional[int]) -> List[Tuple[int, int]]:
    """Returns the `(begin, end)` step ranges from `start` to `steps` on the grid of `every`.

    Example:

    >>> interval_plan(150, 420, 100)
    [(150, 200), (200, 300), (300, 400), (400, 420)]
    >>> interval_plan(0, 50, None), interval_plan(50, 50, 10)
    ([(0, 50)], [])
    """
    every = every or max(steps, 1)
    plan, begin = [], start
    while begin < steps:
        end = min(steps, (begin // every + 1) * every)
        plan.append((begin, end))
        begin = end
    return plan


def fit_calls(
    plan: List[Tuple[int, int]], every: int, steps_per_execution: int
) -> List[Tuple[int, int, int]]:
    """Groups the intervals of `plan` into Keras `Model.fit` calls `(begin, end, num_epochs)`.

    Each `Model.fit` call costs a fixed setup time (iterators, callbacks: tens of milliseconds
    on a small CPU), so the whole intervals of the plan, all `every` steps long, share one call
    with one epoch per interval. That is only exact when `steps_per_execution` divides `every`:
    Keras runs whole executions, so an epoch of 100 steps at 64 steps per execution would train
    128. Otherwise, and for the shorter first and last intervals, each interval is its own call.

    Example:

    >>> fit_calls([(150, 200), (200, 300), (300, 400), (400, 420)], 100, 50)
    [(150, 200, 1), (200, 400, 2), (400, 420, 1)]
    >>> fit_calls([(0, 100), (100, 200)], 100, 64)
    [(0, 100, 1), (100, 200, 1)]
    """
    calls: list = []
    for begin, end in plan:
        whole = end - begin == every and every % steps_per_execution == 0
        if whole and calls and calls[-1][3]:
            first, _, epochs, _ = calls[-1]
            calls[-1] = (first, end, epochs + 1, True)
        else:
            calls.append((begin, end, 1, whole))
    return [(begin, end, epochs) for begin, end, epochs, _ in calls]
