"""NanGuard: never keep a non-finite step; roll back, lower the learning rate, or explain why."""

import logging
import os
import warnings
from typing import Any, Callable, Optional, Union

import keras
import numpy as np
import tensorflow as tf

from toolkit.errors import TrainingDivergedError
from toolkit.checkpoint.checkpointer import Checkpointer

__all__ = ["NanGuard"]

logger = logging.getLogger(__name__)

_CAUSES = (
    "Likely causes (S2.12): the learning rate is too high (now {lr:.3g}; lower it 10x); bad "
    "initialization (use variance scaling, `toolkit.initializers.relu()`); unscaled inputs "
    "(largest |input| {x:.3g}; add `toolkit.layers.InputScaling`)."
)


@keras.saving.register_keras_serializable(package="toolkit")
class NanGuard(keras.callbacks.Callback):
    """Rolls back non-finite training steps, lowers the learning rate, and stops with a diagnosis.

    Every `every_steps` optimizer steps (and at each epoch end) it checks that the epoch's
    running loss and every model and optimizer variable are finite (two host reads: the loss,
    and one fused reduction over the variables). A non-finite gradient shows up there too: Adam
    turns it into NaN weights. On failure it restores the last good checkpoint (`Checkpointer.rollback`, which
    keeps the clock counting), multiplies the learning rate by `factor`, warns why, and lets
    training continue. After `max_retries` rollbacks over the run it stops with
    `toolkit.errors.TrainingDivergedError` naming the first layer whose output, gradient or
    update became non-finite, found by replaying the steps since the last good checkpoint on
    the batches `batch_at` returns (forward pass layer by layer, then the gradients, then the
    update); without `batch_at` it names the first layer whose weights diverged.

    The data iterator is not rewound by a rollback: the batches after the bad one come next.
    The guard saves a first checkpoint at the start of training if none was written yet.

    Args:
        checkpointer: A `Checkpointer` (shared with `Checkpoint`), or a directory.
        every_steps: Check every this many optimizer steps. Defaults to `100`.
        factor: Learning-rate multiplier after each rollback. Defaults to `0.5`.
        max_retries: Rollbacks allowed over the whole run. Defaults to `3`.
        batch_at: A function `step -> batch` giving the batch trained on at `step` (with
            `toolkit.data.endless` the data position is a pure function of the step), or one
            fixed batch to probe. Defaults to `None` (the report names diverged weights only).

    Example:

    >>> import tempfile, warnings, keras, numpy as np
    >>> from toolkit.callbacks.checkpoint import Checkpoint
    >>> x, y = np.random.rand(96, 3).astype("float32"), np.random.rand(96).astype("float32")
    >>> x[50] = np.inf  # Batch 6 holds an Inf: its gradient would turn every weight into NaN.
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    >>> checkpointer = Checkpointer(tempfile.mkdtemp(), model=model)
    >>> guard = NanGuard(checkpointer, every_steps=2)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     _ = model.fit(x, y, batch_size=8, shuffle=False, verbose=0,
    ...                   callbacks=[guard, Checkpoint(checkpointer, every_steps=2)])
    >>> print(caught[-1].message)  # doctest: +ELLIPSIS
    NanGuard: ... at step 8. Rolled back to step 6, learning rate 0.01 -> 0.005 (retry 1/3).
    >>> bool(np.isfinite(model.layers[0].kernel.numpy()).all())
    True
    """

    def __init__(
        self,
        checkpointer: Union[Checkpointer, str, os.PathLike],
        *,
        every_steps: int = 100,
        factor: float = 0.5,
        max_retries: int = 3,
        batch_at: Optional[Union[Callable[[int], Any], Any]] = None,
    ):
        super().__init__()
        if not isinstance(every_steps, int) or every_steps < 1:
            raise ValueError(f"`every_steps` must be a positive int. Received: {every_steps!r}.")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"`factor` must be in (0, 1) to lower the rate. Received: {factor!r}.")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"`max_retries` must be an int >= 0. Received: {max_retries!r}.")
        self.checkpointer = checkpointer if isinstance(checkpointer, Checkpointer) else None
        self.directory = checkpointer.directory if self.checkpointer else os.fspath(checkpointer)
        self.every_steps = every_steps
        self.factor = factor
        self.max_retries = max_retries
        self.batch_at = batch_at
        self.num_retries = 0

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self):
        return {
            "checkpointer": self.directory,
            "every_steps": self.every_steps,
            "factor": self.factor,
            "max_retries": self.max_retries,
        }

    def get_state(self):
        return {"num_retries": self.num_retries}

    def set_state(self, state):
        self.num_retries = int(state["num_retries"])

    def set_model(self, model):
        super().set_model(model)
        if self.checkpointer is None or self.checkpointer.model is not model:
            self.checkpointer = Checkpointer(self.directory, model=model)

    # ---------------------------------------------------------------- hooks
    def on_train_begin(self, logs=None):
        self._epoch_start_step = self._step_now()
        self._boundary = self._epoch_start_step // self.every_steps
        if self.checkpointer.last_saved_step is None:
            if self._check(self._epoch_start_step) is None:
                self.checkpointer.save()  # Something good to roll back to.

    def on_train_batch_begin(self, batch, logs=None):
        step = self._epoch_start_step + batch
        if step // self.every_steps > self._boundary:
            true_step = self._step_now()
            self._boundary = true_step // self.every_steps
            problem = self._check(true_step)
            if problem is not None:
                true_step = self._recover(true_step, problem)
            self._epoch_start_step = true_step - batch

    def on_epoch_end(self, epoch, logs=None):
        step = self._step_now()
        loss = (logs or {}).get("loss")
        problem = self._check(step)
        if problem is None and loss is not None and not np.isfinite(loss):
            problem = f"the epoch's loss is {loss}"
        if problem is not None:
            step = self._recover(step, problem)
        self._epoch_start_step = step

    # ---------------------------------------------------------------- checks
    def _step_now(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def _check(self, step) -> Optional[str]:
        culprit = self.checkpointer.find_nonfinite()
        if culprit is not None:
            return f"variable `{culprit}` holds NaN or Inf at step {step}"
        for metric in self.model.metrics:
            if metric.name == "loss" and not np.isfinite(float(metric.result())):
                return f"the running loss is non-finite at step {step}"
        return None

    def _recover(self, step: int, problem: str) -> int:
        optimizer = self.model.optimizer
        learning_rate = float(np.asarray(optimizer.learning_rate))
        if self.num_retries >= self.max_retries or self.checkpointer.latest() is None:
            self._give_up(step, problem, learning_rate)
        restored = self.checkpointer.rollback()
        self.num_retries += 1
        lowered = min(learning_rate, float(np.asarray(optimizer.learning_rate))) * self.factor
        try:
            optimizer.learning_rate = lowered
            change = f"learning rate {learning_rate:.3g} -> {lowered:.3g}"
        except TypeError:  # A LearningRateSchedule cannot be set.
            change = "learning rate unchanged (a schedule cannot be lowered)"
        self.model.reset_metrics()  # The running mean still holds the NaN.
        warnings.warn(
            f"NanGuard: {problem}. Rolled back to step {restored}, {change} "
            f"(retry {self.num_retries}/{self.max_retries}).",
            stacklevel=2,
        )
        self._boundary = restored // self.every_steps
        return restored

    def _give_up(self, step: int, problem: str, learning_rate: float):
        model = self.model
        diverged = _first_nonfinite_layer(model)
        finding, largest_input = None, float("nan")
        if self.checkpointer.latest() is not None:
            start = self.checkpointer.rollback()
            if self.batch_at is not None:
                try:
                    model.optimizer.learning_rate = learning_rate  # Replay with the last rate.
                except TypeError:
                    pass
                finding, largest_input = _replay(model, self.batch_at, start, max(step, start + 1))
                self.checkpointer.rollback()  # Leave the model at the last good state.
        if finding is None:
            finding = f"first layer with non-finite weights: `{diverged}`"
            if self.batch_at is None:
                finding += " (pass `batch_at` to NanGuard to name the layer and step)"
        causes = _CAUSES.format(lr=learning_rate, x=largest_input)
        message = (
            f"Training diverged: {problem} after {self.num_retries} rollback(s) "
            f"(max_retries={self.max_retries}); {finding}. {causes}"
        )
        logger.error(message)
        raise TrainingDivergedError(message)


def _first_nonfinite_layer(model) -> Optional[str]:
    for layer in model.layers:
        if any(not np.all(np.isfinite(np.asarray(v))) for v in layer.weights):
            return layer.name
    return None


def _finite(tensors) -> bool:
    return all(bool(tf.reduce_all(tf.math.is_finite(t))) for t in tensors if t.dtype.is_floating)


def _replay(model, batch_at, start: int, end: int):
    """Replays steps `start..end-1`; returns (finding, largest |input|) at the first bad step."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    try:
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        probe = keras.Model(inputs, [layer.output for layer in layers])
    except (AttributeError, ValueError, TypeError):  # A subclassed model: no per-layer outputs.
        probe, layers = model, [model]
    owner = {id(v): layer.name for layer in layers for v in layer.trainable_variables}
    largest_input = float("nan")
    for step in range(start, end):
        batch = batch_at(step) if callable(batch_at) else batch_at
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        inputs = [tf.cast(t, "float32") for t in keras.tree.flatten(x)]
        largest_input = max(float(tf.reduce_max(tf.abs(t))) for t in inputs)
        if not _finite(inputs):
            return f"the input batch of step {step} holds NaN or Inf (clean it)", largest_input
        outputs = probe(x, training=True)
        outputs = [outputs] if probe is model else outputs
        for layer, output in zip(layers, outputs):
            if not _finite(keras.tree.flatten(output)):
                return (
                    f"the output of layer `{layer.name}` became non-finite at step {step} "
                    f"(forward pass, layer by layer)"
                ), largest_input
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
            scaled = model.optimizer.scale_loss(loss)
        if not _finite([loss]):
            return (
                f"the loss became non-finite at step {step} though every layer output is "
                f"finite (check the labels and the loss)"
            ), largest_input
        variables = model.trainable_variables
        gradients = tape.gradient(scaled, variables)
        for variable, gradient in zip(variables, gradients):
            if gradient is not None and not _finite([gradient]):
                layer = owner.get(id(variable), variable.path)
                return (
                    f"the gradient of layer `{layer}` became non-finite at step {step}"
                ), largest_input
        model.optimizer.apply(gradients, variables)
        layer = _first_nonfinite_layer(model)
        if layer is not None:
            return (
                f"the update of step {step} made the weights of layer `{layer}` non-finite "
                f"though its gradient was finite (the step was too large)"
            ), largest_input
    return f"replaying steps {start}..{end - 1} did not reproduce it", largest_input
