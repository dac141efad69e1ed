"""What `fit` trains on: an endless pipeline it can position at any step, and finite eval data.

`fit` accepts three kinds of training data and refuses everything it cannot bound:

- a dataset made by `toolkit.data.endless`: rebuilt at the first step of each Keras `Model.fit`
  call with `endless_info(data).at_step(step)`, so the data position is a pure function of the
  step (`fit` groups whole intervals into one call, so that is at most three builds per call);
- arrays (`x`, `(x, y)`, `(x, y, sample_weight)`, dicts) or a source: wrapped in `endless`;
- any other `tf.data.Dataset` whose cardinality is infinite: read from its beginning at each
  `fit` call, then on through one iterator across intervals (its position is not a function of
  the step, so a resume cannot rebuild it).

Keras `fit` on an endless dataset without `steps_per_epoch` never ends an epoch, and with it,
an epoch that is not a multiple of `steps_per_execution` silently runs over (Keras 3.15 runs
whole executions: 100 steps at `steps_per_execution=64` train 128). `fit` always passes
`steps_per_epoch` and cuts each `Model.fit` call's data with `take`, so the steps are exact.
"""

import numbers
from typing import Any, Callable, Optional

import numpy as np
import tensorflow as tf

from toolkit.data import endless, endless_info
from toolkit.data.sources import Source
from toolkit.errors import DataError

__all__ = ["TrainingData", "training_data", "evaluation_data"]

_FIX = (
    "Pass arrays with `batch_size=...`, a dataset from `toolkit.data.endless`, or an endless "
    "`tf.data.Dataset` (e.g. `dataset.repeat()`)."
)


class TrainingData:
    """Training batches by step: `batches(step, n)` gives the batches of steps `[step, step + n)`.

    For endless data the pipeline is rebuilt at `step` (a pure function of the step), and a
    pipeline built at a step is reused by any later call starting there, since each Keras `fit`
    iterates a dataset from its beginning. A foreign dataset cannot be positioned: it is read
    through one iterator, created at the first call, so calls continue where the previous one
    stopped (that wrapper costs a little per step, which endless data avoids).

    Args:
        dataset: The endless dataset as the user gave it (or as `fit` wrapped it).
        start_step: The step of `dataset`'s first batch (`None` for a foreign dataset).
        rebuild: `step -> dataset starting at that step`, or `None` for a foreign dataset.
        batch_size: Examples per step when known. Defaults to `None`.
        dataset_size: Number of training examples when known. Defaults to `None`.
        examples_at: `step -> examples drawn before it`, when known. Defaults to `None`.
    """

    def __init__(
        self,
        dataset: tf.data.Dataset,
        start_step: Optional[int],
        rebuild: Optional[Callable[[int], tf.data.Dataset]],
        batch_size: Optional[int] = None,
        dataset_size: Optional[int] = None,
        examples_at: Optional[Callable[[int], int]] = None,
    ):
        self.dataset = dataset
        self.rebuild = rebuild
        self.batch_size = batch_size
        self.dataset_size = dataset_size
        self.examples_at = examples_at
        self._built = {start_step: dataset} if rebuild is not None else {}
        self._continuing = None

    def batches(self, step: int, num_steps: int) -> tf.data.Dataset:
        """Returns exactly `num_steps` batches, those of steps `[step, step + num_steps)`."""
        if self.rebuild is not None:
            if step not in self._built:
                self._built = {step: self.rebuild(step)}
            return self._built[step].take(num_steps)
        if self._continuing is None:
            iterator = iter(self.dataset)
            # No prefetch on top: prefetched batches would be lost between `Model.fit` calls.
            self._continuing = (
                tf.data.Dataset.from_tensors(0).repeat().map(lambda _: iterator.get_next())
            )
        return self._continuing.take(num_steps)


def training_data(data: Any, *, batch_size: Optional[int], seed: int) -> TrainingData:
    """Returns the `TrainingData` for `fit`'s `data` argument (see the module doc).

    Raises:
        DataError: For data `fit` cannot bound (finite or unknown-length datasets, generators,
            Keras `PyDataset`s), arrays without `batch_size`, or a `batch_size` that contradicts
            an endless dataset's.
    """
    if isinstance(data, tf.data.Dataset):
        info = endless_info(data)
        if info is not None:
            return _from_endless(data, batch_size)
        return _from_foreign(data, batch_size)
    if _is_in_memory(data):
        if batch_size is None:
            raise DataError(
                f"`fit` got in-memory training data ({type(data).__name__}) but no `batch_size`. "
                f"Received: batch_size=None. Pass e.g. `batch_size=32`."
            )
        return _from_endless(endless(data, batch_size, seed=seed), batch_size)
    raise DataError(
        f"`fit` cannot bound training data of type {type(data).__name__}: it would not know "
        f"where each interval ends. {_FIX}"
    )


def evaluation_data(eval_data: Any, batch_size: Optional[int]) -> Optional[tf.data.Dataset]:
    """Returns `eval_data` as a finite batched `tf.data.Dataset` (or `None`).

    Raises:
        DataError: For an infinite dataset (evaluation would never end) or another type.
    """
    if eval_data is None:
        return None
    if isinstance(eval_data, tf.data.Dataset):
        if int(eval_data.cardinality()) == tf.data.INFINITE_CARDINALITY:
            raise DataError(
                "`eval_data` is an infinite tf.data.Dataset, so evaluation would never end. "
                "Received: a dataset of infinite cardinality. Pass finite data, e.g. "
                "`dataset.take(num_batches)` or `(x_test, y_test)` arrays."
            )
        return eval_data
    if isinstance(eval_data, (tuple, list)) and len(eval_data) in (2, 3):
        dataset = tf.data.Dataset.from_tensor_slices(tuple(eval_data))
        return dataset.batch(batch_size or 32).prefetch(tf.data.AUTOTUNE)
    raise DataError(
        f"`eval_data` must be `(x, y)`, `(x, y, sample_weight)` or a finite tf.data.Dataset. "
        f"Received: {type(eval_data).__name__}"
        f"{f' of length {len(eval_data)}' if isinstance(eval_data, (tuple, list)) else ''}. "
        f"Pass e.g. `eval_data=(x_test, y_test)`."
    )


def _from_endless(dataset: tf.data.Dataset, batch_size: Optional[int]) -> TrainingData:
    info = endless_info(dataset)
    if batch_size is not None and not callable(info.batch_size) and batch_size != info.batch_size:
        raise DataError(
            f"`batch_size` contradicts the endless dataset's. Received: batch_size={batch_size} "
            f"for a dataset built with batch_size={info.batch_size}. Drop `batch_size` (the "
            f"dataset's is used) or rebuild the dataset."
        )
    return TrainingData(
        dataset,
        start_step=info.start_step,
        rebuild=info.at_step,
        batch_size=None if callable(info.batch_size) else info.batch_size,
        dataset_size=info.dataset_size,
        examples_at=info.examples_at,
    )


def _from_foreign(dataset: tf.data.Dataset, batch_size: Optional[int]) -> TrainingData:
    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.UNKNOWN_CARDINALITY:
        raise DataError(
            "`fit` cannot tell whether the training dataset ends (its cardinality is unknown, "
            "e.g. after `filter`). Received: a tf.data.Dataset of unknown cardinality. If it is "
            "endless, apply "
            "`tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY)`; otherwise "
            "call `.repeat()` on it or use `toolkit.data.endless`."
        )
    if cardinality != tf.data.INFINITE_CARDINALITY:
        raise DataError(
            f"`fit` trains for a step budget and needs endless data, but the training dataset "
            f"ends. Received: a tf.data.Dataset of {cardinality} batches. Call `.repeat()` on it "
            f"or build it with `toolkit.data.endless`."
        )
    if batch_size is None:
        batch_size = _static_batch_size(dataset)
    return TrainingData(dataset, start_step=None, rebuild=None, batch_size=batch_size)


def _static_batch_size(dataset: tf.data.Dataset) -> Optional[int]:
    sizes = {spec.shape[0] for spec in tf.nest.flatten(dataset.element_spec) if spec.shape.rank}
    if len(sizes) == 1:
        (size,) = sizes
        return size  # None when the batch dimension is dynamic
    return None


def _is_in_memory(data: Any) -> bool:
    if isinstance(data, Source) and not isinstance(data, tf.data.Dataset):
        return True
    if isinstance(data, (np.ndarray, tf.Tensor, dict)):
        return True
    if isinstance(data, (tuple, list)):
        return len(data) > 0 and all(
            isinstance(item, (np.ndarray, tf.Tensor, dict, list, tuple, numbers.Number))
            or hasattr(item, "__array__")
            for item in data
        )
    return hasattr(data, "__array__")
