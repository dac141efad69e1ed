"""What `fit` trains on: an endless pipeline it can position at any step, and finite eval data.

`fit` accepts three kinds of training data and refuses everything it cannot bound:

- a dataset made by `toolkit.data.endless`, or derived from one by per-batch transforms
  (`map`, `prefetch`, `with_options`; `toolkit.data.lineage`): *positioned*. Before each Keras
  `Model.fit` call, `fit` seeks it to that call's first step (`EndlessInfo.seek`); the dataset
  reads its position when Keras starts iterating it, so the user's own pipeline is used as is,
  built once, and the data position is a pure function of the step — resume is exact;
- arrays (`x`, `(x, y)`, `(x, y, sample_weight)`, dicts) or a source: wrapped in `endless`;
- any other endless `tf.data.Dataset` (a plain `.repeat()` pipeline, or an endless one behind
  `shuffle`, `batch`, `filter`, ...): read through one iterator across intervals. Its position is
  not a function of the step, so `fit(run_dir=...)` warns once that a resumed run will not see
  the batches the interrupted one would have (`position_warning`).

Keras `fit` on an endless dataset without `steps_per_epoch` never ends an epoch, and with it,
an epoch that is not a multiple of `steps_per_execution` silently runs over (Keras 3.15 runs
whole executions: 100 steps at `steps_per_execution=64` train 128). `fit` always passes
`steps_per_epoch` and cuts each `Model.fit` call's data with `take`, so the steps are exact.
"""

import numbers
from typing import Any, Callable, Optional

import numpy as np
import tensorflow as tf

from toolkit.data.endless import EndlessInfo, endless
from toolkit.data.lineage import trace
from toolkit.data.sources import Source
from toolkit.errors import DataError

__all__ = ["TrainingData", "training_data", "evaluation_data"]

_FIX = (
    "Pass arrays with `batch_size=...`, a dataset from `toolkit.data.endless`, or an endless "
    "`tf.data.Dataset` (e.g. `dataset.repeat()`)."
)


class TrainingData:
    """Training batches by step: `batches(step, n)` gives the batches of steps `[step, step + n)`.

    A positioned dataset is seeked to `step` and cut to `n` batches. A dataset without a
    position is read through one iterator, created at the first call, so calls continue where
    the previous one stopped (that wrapper costs a little per step, which endless data avoids).

    Args:
        dataset: The training dataset as the user gave it (or as `fit` wrapped arrays).
        info: The `EndlessInfo` that positions `dataset`, or `None`.
        blocker: Why a dataset derived from an endless pipeline has no position (e.g.
            `"shuffle"`), or `None`.
        batch_size: Examples per step when known. Defaults to `None`.
    """

    def __init__(
        self,
        dataset: tf.data.Dataset,
        info: Optional[EndlessInfo],
        blocker: Optional[str] = None,
        batch_size: Optional[int] = None,
    ):
        self.dataset = dataset
        self.info = info
        self.blocker = blocker
        self.batch_size = batch_size
        self._continuing = None

    @property
    def dataset_size(self) -> Optional[int]:
        """Training examples, when the data knows (epoch-equivalents need it)."""
        return self.info.dataset_size if self.info is not None else None

    @property
    def examples_at(self) -> Optional[Callable[[int], int]]:
        """`step -> examples drawn before it`, when the data knows."""
        return self.info.examples_at if self.info is not None else None

    def batches(self, step: int, num_steps: int) -> tf.data.Dataset:
        """Returns exactly `num_steps` batches, those of steps `[step, step + num_steps)`."""
        if self.info is not None:
            self.info.seek(step)
            return self.dataset.take(num_steps)
        if self._continuing is None:
            iterator = iter(self.dataset)
            # No prefetch on top: prefetched batches would be lost between `Model.fit` calls.
            self._continuing = (
                tf.data.Dataset.from_tensors(0).repeat().map(lambda _: iterator.get_next())
            )
        return self._continuing.take(num_steps)

    def spec_batch(self) -> Any:
        """A batch of zeros shaped like the data (unknown dimensions: 1), to build with."""
        return tf.nest.map_structure(
            lambda spec: tf.zeros([d if d is not None else 1 for d in spec.shape], spec.dtype),
            self.dataset.element_spec,
        )

    def batch_at(self, step: int) -> Any:
        """The batch of optimizer step `step` (for `NanGuard`'s diagnosis); positioned only."""
        position = self.info.position
        try:
            return next(iter(self.batches(step, 1)))
        finally:
            self.info.seek(position)

    def position_warning(self) -> Optional[str]:
        """Why a resumed run cannot see the same batches, with the fix; `None` if it can."""
        if self.info is not None:
            return None
        if self.blocker is not None:
            cause = (
                f"it is derived from a `toolkit.data.endless` pipeline through "
                f"`{self.blocker}`, which changes which batch comes at which step"
            )
        else:
            cause = "it is not built by `toolkit.data.endless`, so its position is unknown"
        return (
            f"`fit(run_dir=...)` cannot resume this training data exactly: {cause}. Model, "
            f"optimizer and clock still resume exactly, but a resumed run reads the data from "
            f"its beginning. Build it with `toolkit.data.endless(...)` (its `sampling` and "
            f"`augment` arguments replace `shuffle` and random `map`s) and apply only per-batch "
            f"transforms (`map`, `prefetch`, `with_options`) on top."
        )


def training_data(data: Any, *, batch_size: Optional[int]) -> TrainingData:
    """Returns the `TrainingData` for `fit`'s `data` argument (see the module doc).

    Raises:
        DataError: For data `fit` cannot bound (finite or unknown-length datasets, generators,
            Keras `PyDataset`s), arrays without `batch_size`, or a `batch_size` that contradicts
            an endless dataset's.
    """
    if isinstance(data, tf.data.Dataset):
        lineage = trace(data)
        if lineage.positioned:
            return _from_endless(data, lineage.info, batch_size)
        return _from_foreign(data, batch_size, lineage.blocker if lineage.info else None)
    if _is_in_memory(data):
        if batch_size is None:
            raise DataError(
                f"`fit` got in-memory training data ({type(data).__name__}) but no `batch_size`. "
                f"Received: batch_size=None. Pass e.g. `batch_size=32`."
            )
        dataset = endless(data, batch_size)
        return _from_endless(dataset, trace(dataset).info, batch_size)
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


def _from_endless(
    dataset: tf.data.Dataset, info: EndlessInfo, batch_size: Optional[int]
) -> TrainingData:
    if batch_size is not None and not callable(info.batch_size) and batch_size != info.batch_size:
        raise DataError(
            f"`batch_size` contradicts the endless dataset's. Received: batch_size={batch_size} "
            f"for a dataset built with batch_size={info.batch_size}. Drop `batch_size` (the "
            f"dataset's is used) or rebuild the dataset."
        )
    size = None if callable(info.batch_size) else info.batch_size
    return TrainingData(dataset, info=info, batch_size=size)


def _from_foreign(
    dataset: tf.data.Dataset, batch_size: Optional[int], blocker: Optional[str]
) -> TrainingData:
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
    return TrainingData(dataset, info=None, blocker=blocker, batch_size=batch_size)


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
