"""Checkpointer: saves and restores everything a run needs to continue exactly."""

import concurrent.futures
import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from toolkit.errors import CheckpointError, ModelError
from toolkit.checkpoint import callback_state
from toolkit.checkpoint import files
from toolkit.checkpoint.files import CheckpointInfo

__all__ = ["Checkpointer", "CheckpointInfo"]

class Checkpointer:
    """Saves and restores model, built optimizer, clock and callback states as one checkpoint.

    A checkpoint holds every variable of the model (`model.variables`: weights, statistics of
    preprocessing layers, random-seed states), every variable of the *built* optimizer (Adam's
    moments, `iterations`, the learning rate, a `LossScaleOptimizer`'s scale; S2.2), the
    `TrainClock` (ticked to the saved step), and the state of every callback that implements `get_state() -> dict` /
    `set_state(dict)` (JSON-able values), plus Keras's `EarlyStopping` and `ReduceLROnPlateau`
    counters. The optimizer is built before saving and before restoring, so its state is never
    skipped.

    Design (why not `tf.train.CheckpointManager`): checkpoints are TensorFlow tensor bundles
    written with `tf.raw_ops.SaveV2` under explicit keys `<group>/<index>/<variable path>`, so
    `tf.train.list_variables` shows readable names (`optimizer/0002/adam/dense_kernel_momentum`)
    and restoring matches variables by position, not by auto-generated layer names, which differ
    when the same model is built twice in one process. Each checkpoint is a directory written
    under a temporary name, with a manifest of sizes and checksums written last, then renamed:
    a crash at any instant leaves the previous checkpoints loadable. Restoring verifies the
    manifest, reads every tensor and checks every shape *before* assigning anything, so a
    mismatch overwrites nothing, and falls back to the previous good checkpoint when the newest
    is damaged. Asynchronous saving snapshots the variables (TensorFlow copies on write, so the
    snapshot costs no copy) and writes them on a background thread; Keras 3 objects cannot be
    saved by TensorFlow's own async checkpointing after the first save.

    Args:
        directory: Directory the `ckpt-<step>` checkpoints go into; created when needed.
        model: The Keras model; its compiled optimizer is saved too.
        clock: The run's `TrainClock`. Defaults to `None`.
        callbacks: Callbacks whose state to save (others are ignored). Defaults to `()`.
        max_to_keep: Number of newest checkpoints kept. Defaults to `3`.
        keep_best: Number of best checkpoints by `monitor` also kept. Defaults to `0`.
        monitor: Metric, passed to `save(metrics=...)`, that ranks checkpoints. Defaults to
            `"val_loss"`.
        mode: `"min"` or `"max"`: whether a lower or higher `monitor` is better. Defaults to
            `"min"`.
        async_save: Write checkpoints on a background thread. Defaults to `False`.

    Example:

    >>> import tempfile, keras, numpy as np
    >>> def build():
    ...     model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    ...     model.compile(optimizer="adam", loss="mse")
    ...     return model
    >>> directory = tempfile.mkdtemp()
    >>> model = build()
    >>> checkpointer = Checkpointer(directory, model=model, keep_best=1)
    >>> checkpointer.restore()  # Nothing saved yet: start at step 0.
    0
    >>> _ = model.fit(np.ones((32, 3)), np.ones(32), batch_size=8, verbose=0)
    >>> path = checkpointer.save(metrics={"val_loss": 0.31})
    >>> fresh = build()  # E.g. in a new process; its optimizer is not even built.
    >>> Checkpointer(directory, model=fresh).restore()
    4
    >>> int(fresh.optimizer.iterations), checkpointer.best().metrics
    (4, {'val_loss': 0.31})
    """

    def __init__(
        self,
        directory: str,
        *,
        model: keras.Model,
        clock=None,
        callbacks: Sequence[Any] = (),
        max_to_keep: int = 3,
        keep_best: int = 0,
        monitor: str = "val_loss",
        mode: str = "min",
        async_save: bool = False,
    ):
        if not isinstance(max_to_keep, int) or max_to_keep < 1:
            raise ValueError(
                f"`max_to_keep` must be an int >= 1 (the newest checkpoint is needed to resume). "
                f"Received: max_to_keep={max_to_keep!r}."
            )
        if not isinstance(keep_best, int) or keep_best < 0:
            raise ValueError(f"`keep_best` must be an int >= 0. Received: keep_best={keep_best!r}.")
        if mode not in ("min", "max"):
            raise ValueError(f'`mode` must be "min" or "max". Received: mode={mode!r}.')
        self.directory = os.fspath(directory)
        self.model = model
        self.clock = clock
        self.callbacks = list(callbacks)
        self.max_to_keep = max_to_keep
        self.keep_best = keep_best
        self.monitor = monitor
        self.mode = mode
        self.async_save = async_save
        self.last_saved_step: Optional[int] = None
        # Set by `Preemption` once its checkpoint is written: the run is stopping, and the
        # state after it (the step Keras still runs, a partial interval) must not replace it.
        self.sealed = False
        self._pending_states: Dict[str, Dict[str, Any]] = {}
        self._executor = None
        self._future = None
        self._finite_check = None

    # ---------------------------------------------------------------- variables
    def _groups(self) -> Dict[str, List[Tuple[str, Any]]]:
        if not self.model.built:
            raise ModelError(
                f"Model `{self.model.name}` is not built, so it has no variables to checkpoint. "
                f"Build it first (give it an `Input`, or call it on a batch)."
            )
        groups = {"model": [(v.path, v) for v in self.model.variables]}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            if not optimizer.built:
                # An unbuilt optimizer has no slots: Keras would silently skip them (S2.2).
                optimizer.build(self.model.trainable_variables)
            groups["optimizer"] = [(v.path, v) for v in optimizer.variables]
        if self.clock is not None:
            clock = self.clock
            groups["clock"] = [
                (name, getattr(clock, name)) for name in ("step", "examples_seen", "wall_seconds")
            ]
        return groups

    def _step(self) -> int:
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            return int(optimizer.iterations.numpy())
        return int(self.clock.step.numpy()) if self.clock is not None else 0

    def find_nonfinite(self) -> Optional[str]:
        """Returns the path of the first model or optimizer variable holding NaN/Inf, or `None`.

        One fused device reduction and one host read; call it every N steps, not every step.
        """
        groups = self._groups()
        variables = [
            (path, v)
            for group in ("model", "optimizer")
            for path, v in groups.get(group, ())
            if tf.as_dtype(v.dtype).is_floating
        ]
        if self._finite_check is None or self._finite_check[0] != len(variables):
            values = [v.value for _, v in variables]

            @tf.function(autograph=False)
            def check():
                return tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in values])

            self._finite_check = (len(variables), check)
        flags = self._finite_check[1]().numpy() if variables else np.ones([0], bool)
        bad = np.flatnonzero(~flags)
        return variables[bad[0]][0] if bad.size else None

    # ---------------------------------------------------------------- saving
    def save(self, metrics: Optional[Dict[str, float]] = None) -> Optional[str]:
        """Writes a checkpoint of the current state and returns its directory.

        A state holding NaN/Inf is never written: a warning names the variable and `None` is
        returned, so the last good checkpoint stays the newest.

        Args:
            metrics: Metrics of this state, e.g. `{"val_loss": 0.3}`; `monitor` ranks the best.
                Defaults to `None`.

        While `sealed` is true (after a preemption checkpoint), nothing is written and `None` is
        returned: that checkpoint stays the one to resume from.

        Raises:
            CheckpointError: The directory cannot be written (read-only, disk full); the
                previous checkpoints are intact.
        """
        if self.sealed:
            return None
        self.wait()
        groups = self._groups()
        step = self._step()
        if self.clock is not None:
            self.clock.tick(step)  # The saved clock is that of the saved step.
        culprit = self.find_nonfinite()
        if culprit is not None:
            warnings.warn(
                f"Not writing a checkpoint at step {step}: variable `{culprit}` holds NaN or Inf. "
                f"The last good checkpoint (step {self.last_saved_step}) stays the newest; "
                f"add `toolkit.callbacks.NanGuard` to roll back automatically.",
                stacklevel=2,
            )
            return None
        tensors = {}
        for group, entries in groups.items():
            for index, (path, variable) in enumerate(entries):
                # A snapshot: later in-place updates copy on write, so this stays this step's.
                tensors[f"{group}/{index:04d}/{path}"] = tf.identity(variable)
        state = {"callbacks": self._callback_states()}
        metrics = {k: float(v) for k, v in (metrics or {}).items() if np.isscalar(v)}
        if not self.async_save:
            path = self._write(step, tensors, state, metrics)
            self.last_saved_step = step
            return path
        self.last_saved_step = step
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, "toolkit-checkpoint")
        self._future = self._executor.submit(self._write, step, tensors, state, metrics)
        return files.checkpoint_path(self.directory, step)

    def _write(self, step, tensors, state, metrics) -> str:
        path = files.write_checkpoint(self.directory, step, tensors, state, metrics)
        self._prune()
        return path

    def wait(self) -> None:
        """Waits for an asynchronous save to finish; raises its error, if any."""
        future, self._future = self._future, None
        if future is not None:
            future.result()

    def close(self) -> None:
        """Waits for pending saves and stops the background writer."""
        try:
            self.wait()
        finally:
            if self._executor is not None:
                self._executor.shutdown()
                self._executor = None

    def _prune(self) -> None:
        infos = files.list_checkpoints(self.directory)
        keep = {info.path for info in infos[-self.max_to_keep :]}
        ranked = [info for info in infos if np.isfinite(info.metrics.get(self.monitor, np.nan))]
        ranked.sort(key=lambda info: info.metrics[self.monitor], reverse=self.mode == "max")
        keep.update(info.path for info in ranked[: self.keep_best])
        for info in infos:
            if info.path not in keep:
                files.remove_checkpoint(info.path)

    # ---------------------------------------------------------------- listing
    def checkpoints(self) -> List[CheckpointInfo]:
        """Lists the complete checkpoints, oldest first (not verified)."""
        return files.list_checkpoints(self.directory)

    def latest(self) -> Optional[CheckpointInfo]:
        """Returns the newest checkpoint, or `None`."""
        infos = self.checkpoints()
        return infos[-1] if infos else None

    def best(self) -> Optional[CheckpointInfo]:
        """Returns the checkpoint with the best `monitor` value, or `None` if none recorded it."""
        ranked = [i for i in self.checkpoints() if np.isfinite(i.metrics.get(self.monitor, np.nan))]
        pick = min if self.mode == "min" else max
        return pick(ranked, key=lambda i: i.metrics[self.monitor]) if ranked else None

    # ---------------------------------------------------------------- restoring
    def restore(self, step: Optional[int] = None) -> int:
        """Restores the newest good checkpoint (or the one of `step`) and returns its step.

        A damaged newest checkpoint is reported with a warning and the previous one is used.

        Args:
            step: Restore exactly this step instead of the newest. Defaults to `None`.

        Returns:
            The restored optimizer step; `0` when the directory holds no checkpoint.

        Raises:
            CheckpointError: No checkpoint is good (each reason is listed), or `step` is missing.
            ModelError: The checkpoint's variables do not match the model's; nothing was changed.
        """
        return self._restore(step, parts=("model", "optimizer", "clock", "callbacks"))

    def rollback(self) -> int:
        """Restores model and optimizer from the newest good checkpoint; returns its step.

        The clock and the callback states keep counting forward (wall time already spent is
        not undone). Used by `NanGuard` after a non-finite step.
        """
        return self._restore(None, parts=("model", "optimizer"))

    def _restore(self, step, parts) -> int:
        self.wait()
        infos = self.checkpoints()
        if step is not None:
            infos = [info for info in infos if info.step == int(step)]
            if not infos:
                raise CheckpointError(
                    f"No checkpoint of step {step} in `{self.directory}`. Available steps: "
                    f"{[info.step for info in self.checkpoints()]}."
                )
        if not infos:
            return 0
        reasons = []
        for info in reversed(infos):
            try:
                manifest = files.verify_checkpoint(info.path)
                tensors, state = files.read_checkpoint(info.path)
            except CheckpointError as error:
                reasons.append(str(error))
                if step is None:
                    warnings.warn(
                        f"Skipping damaged checkpoint: {error} Falling back to the previous one.",
                        stacklevel=3,
                    )
                continue
            self._assign(info.path, tensors, state, parts)
            self.last_saved_step = int(manifest["step"])
            return self.last_saved_step
        raise CheckpointError(
            f"No good checkpoint in `{self.directory}`: {' '.join(reasons)} Delete the directory "
            f"(or start a fresh run) to train from scratch."
        )

    def _assign(self, path, tensors, state, parts) -> None:
        saved: Dict[str, List[Tuple[int, str, np.ndarray]]] = {}
        for key, value in tensors.items():
            group, index, name = key.split("/", 2)
            saved.setdefault(group, []).append((int(index), name, value))
        groups = self._groups()
        pairs = []
        for group in parts:
            if group == "callbacks" or group not in groups:
                continue
            if group not in saved:
                warnings.warn(f"`{path}` holds no {group} state; it starts fresh.", stacklevel=4)
                continue
            pairs += _match(path, group, groups[group], sorted(saved[group]))
        for variable, value in pairs:  # Every shape was checked above: nothing is half-restored.
            variable.assign(value)
        if "callbacks" in parts:
            adapters = self._adapters()
            self._pending_states = {
                key: value for key, value in state.get("callbacks", {}).items() if key in adapters
            }

    # ---------------------------------------------------------------- callback states
    def _callback_states(self) -> Dict[str, Dict[str, Any]]:
        return {key: get() for key, (get, _) in self._adapters().items()}

    def _adapters(self):
        return callback_state.adapters(self.callbacks)

    def apply_callback_states(self) -> None:
        """Gives the callbacks the states read by the last `restore`, once.

        Keras callbacks reset their counters in `on_train_begin`, so the restored states must
        be applied after it and before the first training step. `toolkit.fit` does it right
        after its callbacks' `on_train_begin`; in a plain `model.fit`, the `Checkpoint`
        callback does it at the first batch. Later calls do nothing until the next `restore`.
        """
        adapters = self._adapters()
        pending, self._pending_states = self._pending_states, {}
        for key, value in pending.items():
            adapters[key][1](value)


def _match(path, group, entries, saved) -> List[Tuple[Any, np.ndarray]]:
    fix = (
        "The checkpoint was written by another model or recipe: restore it into the same "
        "architecture, or use a fresh directory (`--fresh`)."
    )
    if len(entries) != len(saved):
        extra = (
            f"first unmatched: `{saved[len(entries)][1]}` in the checkpoint"
            if len(saved) > len(entries)
            else f"first unmatched: `{entries[len(saved)][0]}` in the model"
        )
        raise ModelError(
            f"Checkpoint `{path}` does not match the model: it holds {len(saved)} {group} "
            f"variables, the model {len(entries)} ({extra}). {fix}"
        )
    pairs = []
    for (name, variable), (_, saved_name, value) in zip(entries, saved):
        shape, dtype = tuple(variable.shape), np.dtype(tf.as_dtype(variable.dtype).as_numpy_dtype)
        if tuple(value.shape) != shape or value.dtype != dtype:
            raise ModelError(
                f"Checkpoint `{path}` does not match the model: {group} variable `{name}` has "
                f"shape {shape} ({dtype}) in the model but {tuple(value.shape)} ({value.dtype}) in "
                f"the checkpoint (saved as `{saved_name}`). {fix}"
            )
        pairs.append((variable, value))
    return pairs
