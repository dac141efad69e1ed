"""Reads the doctor's data: one batch to probe with, and a sample to check.

The doctor accepts what `model.fit` does for labelled data: a `tf.data.Dataset` of `(x, y)` or
`(x, y, sample_weight)` batches (endless ones included), or a tuple of arrays `(x, y)` /
`(x, y, sample_weight)`, where `x` and `y` may be lists or dicts of arrays (several inputs or
outputs). Everything comes back as NumPy, so the probes can slice it.

Example:

>>> import numpy as np
>>> batch, sample = read_batches((np.arange(20.0).reshape(10, 2), np.arange(10) % 2), 4)
>>> batch.x.shape, batch.y.tolist(), len(sample[0])
((4, 2), [0, 1, 0, 1], 10)
>>> batch.pair().y.tolist()
[0, 1]
"""

import dataclasses
from typing import Any, Optional, Tuple

import numpy as np
import tensorflow as tf

from toolkit.errors import DataError

__all__ = ["Batch", "read_batches"]

# Batches of a dataset concatenated for the data check: enough to see every class of a
# 10-class problem and the range of each feature, few enough to read in well under a second.
DATA_CHECK_BATCHES = 8
_NEEDS = (
    "The doctor needs labelled data as model.fit takes it: a tf.data.Dataset of (x, y) or "
    "(x, y, sample_weight) batches, or a tuple (x, y) of arrays."
)


@dataclasses.dataclass(frozen=True)
class Batch:
    """One batch of NumPy data (structures as `model.fit` takes them).

    Args:
        x: Inputs.
        y: Targets.
        sample_weight: Per-example weights, or `None`.
    """

    x: Any
    y: Any
    sample_weight: Optional[Any] = None

    @property
    def size(self) -> int:
        """Number of examples."""
        return int(len(tf.nest.flatten(self.x)[0]))

    def take(self, rows) -> "Batch":
        """The examples at `rows` (indices or a slice)."""
        pick = lambda array: array[rows]  # noqa: E731
        weight = (None if self.sample_weight is None
                  else tf.nest.map_structure(pick, self.sample_weight))
        return Batch(tf.nest.map_structure(pick, self.x), tf.nest.map_structure(pick, self.y),
                     weight)

    def pair(self) -> "Batch":
        """Two examples, with different targets when the batch has two such."""
        targets = [np.asarray(leaf) for leaf in tf.nest.flatten(self.y)]
        first = np.concatenate([t[:1].reshape(1, -1) for t in targets], axis=1)
        for row in range(1, self.size):
            other = np.concatenate([t[row:row + 1].reshape(1, -1) for t in targets], axis=1)
            if not np.array_equal(first, other):
                return self.take(np.array([0, row]))
        return self.take(slice(0, 2))


def read_batches(data: Any, batch_size: int) -> Tuple[Batch, Any]:
    """Returns one batch of `data` and a larger sample of it for `toolkit.data.check`.

    Args:
        data: A `tf.data.Dataset` of `(x, y[, sample_weight])` batches or a tuple of arrays.
        batch_size: Rows taken from arrays (a dataset's batches keep their size, capped to it).

    Returns:
        `(batch, sample)`: a `Batch` of at least 2 examples, and `(x, y[, w])` arrays to check
        (every row of arrays; `DATA_CHECK_BATCHES` batches of a dataset).

    Raises:
        DataError: If `data` is not labelled data or holds fewer than 2 examples.
    """
    if isinstance(data, tf.data.Dataset):
        elements = [_to_numpy(element) for element in data.take(DATA_CHECK_BATCHES)]
        if not elements:
            raise DataError(f"The dataset given to the doctor is empty. {_NEEDS}")
        sample = tf.nest.map_structure(lambda *parts: np.concatenate(parts), *elements)
        first = elements[0]
    elif isinstance(data, (tuple, list)) and len(data) in (2, 3):
        sample = first = _to_numpy(tuple(data))
    else:
        raise DataError(f"The doctor received a {type(data).__name__}. {_NEEDS}")
    if not isinstance(first, tuple) or len(first) not in (2, 3):
        raise DataError(f"The doctor's data yields {type(first).__name__} elements, not "
                        f"(x, y) pairs. {_NEEDS}")
    batch = Batch(*first).take(slice(0, batch_size))
    if batch.size < 2:
        raise DataError(f"The doctor's data holds {batch.size} example(s) per batch; it needs at "
                        f"least 2 to overfit a pair. Pass larger batches.")
    return batch, sample


def _to_numpy(structure: Any) -> Any:
    if isinstance(structure, list):
        structure = tuple(structure)
    return tf.nest.map_structure(np.asarray, structure)
