"""restore(): load the newest good toolkit checkpoint into a model, optimizer state included."""

import logging
import os
import warnings

import keras

from toolkit.checkpoint.checkpointer import Checkpointer
from toolkit.checkpoint.files import PREFIX

__all__ = ["restore"]

logger = logging.getLogger(__name__)


def restore(model: keras.Model, directory: str) -> int:
    """Restores the newest good checkpoint of `directory` into `model` and returns its step.

    For plain `model.fit` users who save with `toolkit.callbacks.Checkpoint`. Compile the model
    first: the optimizer is built before loading, so Adam's moments and step count are restored
    too (Keras's `load_weights` into a compiled model whose optimizer is not built skips them with
    only a warning; S2.2). A damaged newest checkpoint is reported and the previous one is used.

    The returned step is `model.optimizer.iterations`; rebuild your data at that step (with
    `toolkit.data.endless(..., start_step=step)` resuming is exact). With a dataset of your own,
    only model and optimizer are exact: where your data continues is up to you.

    Args:
        model: A built model, compiled with the same optimizer as when it was saved.
        directory: The checkpoint directory, or a run directory holding `checkpoints/`.

    Returns:
        The restored optimizer step, or `0` when there is no checkpoint yet (a first run).

    Raises:
        toolkit.errors.ModelError: The checkpoint's shapes do not match the model (another
            recipe or architecture); the model is left unchanged.
        toolkit.errors.CheckpointError: Checkpoints exist but none is readable.

    Example:

    >>> import tempfile, keras, numpy as np
    >>> from toolkit.callbacks.checkpoint import Checkpoint
    >>> from toolkit.data.endless import endless
    >>> x, y = np.random.rand(64, 3).astype("float32"), np.random.rand(64).astype("float32")
    >>> directory = tempfile.mkdtemp()
    >>> def run(steps):  # The same script for the first run and every resumed one.
    ...     model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    ...     model.compile(optimizer="adam", loss="mse")
    ...     step = restore(model, directory)
    ...     model.fit(endless((x, y), 8, start_step=step), steps_per_epoch=steps - step,
    ...               verbose=0, callbacks=[Checkpoint(directory, every_steps=5)])
    ...     return step
    >>> run(12)  # Stops at step 12 (a kill would leave step 10).
    0
    >>> run(20)  # Continues from step 12 with Adam's state and the data at step 12.
    12
    """
    directory = os.fspath(directory)
    nested = os.path.join(directory, "checkpoints")
    if os.path.isdir(nested) and not any(n.startswith(PREFIX) for n in os.listdir(directory)):
        directory = nested
    if getattr(model, "optimizer", None) is None:
        warnings.warn(
            f"Model `{model.name}` is not compiled, so only its variables are restored, not the "
            f"optimizer state. Compile it before `restore` to resume training exactly.",
            stacklevel=2,
        )
    step = Checkpointer(directory, model=model).restore()
    if step == 0 and not os.path.isdir(directory):
        logger.info("No checkpoint directory `%s` yet; starting at step 0.", directory)
    return step
