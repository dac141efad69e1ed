"""A run's state, restored in one place: what `toolkit.fit(run_dir=...)` continues from.

A run's state is the model's variables, the built optimizer's (Adam's moments and step), the
`TrainClock`, the data position and the callbacks' states (the `StepHistory` among them). The
data position needs no saving: endless pipelines are a pure function of (seed, step), so the
restored step *is* the position. `restore_run` restores the variables and the clock, cuts the
TensorBoard events the interrupted run logged after the restored step, and leaves the callback
states with the `Checkpointer` for `Checkpointer.apply_callback_states`, which the run applies
once, after its callbacks' `on_train_begin`.

Example:

>>> import tempfile, keras
>>> from toolkit.checkpoint.checkpointer import Checkpointer
>>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
>>> model.compile("adam", "mse")
>>> run_dir = tempfile.mkdtemp()
>>> restore_run(Checkpointer(checkpoint_dir(run_dir), model=model), run_dir)  # A new run.
0
"""

import os

from toolkit.checkpoint.checkpointer import Checkpointer
from toolkit.checkpoint.event_trim import trim_events
from toolkit.clock import optimizer_step

__all__ = ["CHECKPOINT_DIR", "checkpoint_dir", "restore_run"]

CHECKPOINT_DIR = "checkpoints"


def checkpoint_dir(run_dir) -> str:
    """Returns the checkpoint directory of a run directory (`run_dir/checkpoints`)."""
    return os.path.join(os.fspath(run_dir), CHECKPOINT_DIR)


def restore_run(checkpointer: Checkpointer, run_dir) -> int:
    """Restores the newest good checkpoint of a run and returns the step it continues from.

    Args:
        checkpointer: The run's `Checkpointer` (model, clock and callbacks attached).
        run_dir: The run directory, whose TensorBoard event files are cut back to the step.

    Returns:
        The restored step, or the model's current step when the run has no checkpoint yet.

    Raises:
        toolkit.errors.ModelError: The checkpoint belongs to another model (nothing changed).
        toolkit.errors.CheckpointError: Checkpoints exist but none is readable.
    """
    if checkpointer.checkpoints():
        step = checkpointer.restore()
        clock = checkpointer.clock
        examples = clock.examples_at(step) if clock is not None else 0
        trim_events(os.fspath(run_dir), step=step, examples=examples)
    return optimizer_step(checkpointer.model)
