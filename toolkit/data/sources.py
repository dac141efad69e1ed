"""Random-access sources: what `toolkit.data.endless` draws its batches from.

A *source* is any object with three members, so new kinds of data (TensorFlow Datasets, growing
shard directories, mixtures of sources) plug in without touching `endless`:

- `num_examples`: the number of examples as a Python `int`, or `None` when it changes over time.
- `element_spec`: a nested `tf.TensorSpec` structure describing ONE example, nested exactly as
  Keras `fit` expects a batch: `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`, where `x` (and
  `y`) may be dicts or lists of arrays for multi-input (multi-output) models.
- `gather(indices)`: given a 1-D `tf.Tensor` of int64 indices in `[0, size)`, returns the batch of
  those examples with the same nesting as `element_spec` and a leading batch dimension. It must
  be traceable TensorFlow (it runs inside a `tf.data` map, in parallel), vectorized (no Python per
  example) and pure: the same indices give the same examples.

Optionally, a source whose size changes during training (a directory of shards that grows every
day) also defines:

- `size_at(step)`: given the optimizer step as an int64 scalar `tf.Tensor`, returns the number of
  examples available to the batch of that step as an int64 scalar `tf.Tensor`. It must be a pure
  function of the step (record what was visible at each rescan), so that a resumed run draws the
  same batches. When present, `endless` samples the batch of step `k` from `[0, size_at(k))`;
  otherwise from `[0, num_examples)`.

`ArraySource` wraps in-memory NumPy arrays (and anything `np.asarray` accepts). Building it
validates the structure (equal numbers of rows, at least one row, numeric or string arrays) and
then the values through `toolkit.data.check.check_values` under its `check` policy: by default
(`"error"`) NaN/Inf in a float array or a negative sample weight raises a one-line `DataError`
naming the array, the row and the fix; `"warn"` warns once per fault and keeps the data; `"off"`
leaves values to the caller (a recipe checks them once, under `data.check`). `as_source` turns
whatever a user passes into a source with the same policy; a source it is given (file-backed,
TFDS, a mixture, an `ArraySource` built with another policy) is returned as it is, unchecked.

Example:

>>> import numpy as np
>>> source = ArraySource((np.arange(6.0).reshape(3, 2), np.array([0, 1, 0])))
>>> source.num_examples
3
>>> x, y = source.gather(tf.constant([2, 0], tf.int64))
>>> x.numpy().tolist(), y.numpy().tolist()
([[4.0, 5.0], [0.0, 1.0]], [0, 0])
"""

from typing import Any, Optional, Protocol, runtime_checkable

import numpy as np
import tensorflow as tf

from toolkit.data.check import _lists_to_tuples, _named_leaves, check_values
from toolkit.errors import DataError

__all__ = ["Source", "ArraySource", "as_source"]

@runtime_checkable
class Source(Protocol):
    """A random-access collection of examples that `endless` can sample (see the module doc).

    Optional member: `size_at(step: tf.Tensor) -> tf.Tensor` for sources that grow over time.
    """

    @property
    def num_examples(self) -> Optional[int]: ...

    @property
    def element_spec(self) -> Any: ...

    def gather(self, indices: tf.Tensor) -> Any: ...


class ArraySource:
    """In-memory examples held as tensors, gathered with one `tf.gather` per array.

    Use it for data that fits in memory: NumPy arrays, `(x, y)` or `(x, y, sample_weight)` tuples,
    and dicts or lists of arrays for multi-input models. The structure is validated here: every
    array must have the same number of rows (at least one) and be numeric or string. The values
    (NaN/Inf, negative sample weights) are validated by `toolkit.data.check.check_values` under
    `check`. Dtypes are kept as given. Lists are read as tuples (tf.data would stack a list into
    one tensor). The arrays are copied into TensorFlow constants, so the TensorFlow graph limit of
    2 GB applies; larger data belongs in a file-backed source.

    Args:
        data: An array, a tuple `(x,)`, `(x, y)` or `(x, y, sample_weight)`, or a dict of arrays
            (read as a multi-input `x`). `x` and `y` may themselves be dicts or lists of arrays.
        check: What NaN/Inf or negative sample weights do: `"error"` raises a `DataError`
            naming the array, the row and the fix; `"warn"` warns once per fault and keeps the
            data (NaN rows will reach training); `"off"` does not look (for data checked
            elsewhere). Defaults to `"error"`.

    Raises:
        DataError: If the arrays are empty, have different numbers of rows or are not numeric or
            string arrays; with `check="error"`, if they hold NaN/Inf or negative weights.
        ValueError: If `check` is not `"error"`, `"warn"` or `"off"`.

    Example:

    >>> import numpy as np
    >>> source = ArraySource({"a": np.zeros((4, 2)), "b": np.ones((4,))})
    >>> source.num_examples, source.element_spec["a"].shape
    (4, TensorShape([2]))
    """

    def __init__(self, data: Any, *, check: str = "error"):
        # tf.data reads a list as one stacked tensor; tuples keep multi-input arrays apart.
        data = _lists_to_tuples(data)
        if isinstance(data, tuple) and not 1 <= len(data) <= 3:
            raise DataError(
                f"A data tuple must be `(x,)`, `(x, y)` or `(x, y, sample_weight)`. "
                f"Received a tuple of {len(data)} items. Pass several inputs as a list or dict "
                f"inside `x`, e.g. `([x1, x2], y)`."
            )
        names = [name for name, _ in _named_leaves(data)]
        arrays = [_as_array(leaf, name) for leaf, name in zip(tf.nest.flatten(data), names)]
        _check_rows(arrays, names)
        check_values(tf.nest.pack_sequence_as(data, arrays), check)
        self._num_examples = len(arrays[0])
        tensors = [tf.constant(array) for array in arrays]
        self._tensors = tf.nest.pack_sequence_as(data, tensors)
        self._element_spec = tf.nest.map_structure(
            lambda t: tf.TensorSpec(t.shape[1:], t.dtype), self._tensors
        )

    @property
    def num_examples(self) -> int:
        """Number of examples (rows)."""
        return self._num_examples

    @property
    def element_spec(self) -> Any:
        """Nested `tf.TensorSpec` of one example."""
        return self._element_spec

    @property
    def tensors(self) -> Any:
        """The whole data as nested tensors (for statistics, checks and `adapt`)."""
        return self._tensors

    def gather(self, indices: tf.Tensor) -> Any:
        """Returns the examples at `indices` (1-D int64 tensor) as one nested batch."""
        return tf.nest.map_structure(lambda t: tf.gather(t, indices), self._tensors)

    def __repr__(self) -> str:
        spec = tf.nest.map_structure(lambda s: (tuple(s.shape), s.dtype.name), self._element_spec)
        return f"ArraySource(num_examples={self._num_examples}, element_spec={spec!r})"


def as_source(data: Any, *, check: str = "error") -> Any:
    """Returns `data` as a source: a source is returned as is, arrays become an `ArraySource`.

    `toolkit.data.endless` and `toolkit.data.mix` call it with the default policy, so NaN in
    in-memory training data stops them with one line unless the caller builds the source itself
    (`ArraySource(data, check="warn")`).

    Args:
        data: A source (an object with `num_examples`, `element_spec` and `gather`), or arrays
            in any form `ArraySource` accepts.
        check: The value-check policy of a new `ArraySource` (`"error"`, `"warn"` or `"off"`);
            a source is returned unchecked. Defaults to `"error"`.

    Returns:
        A source.

    Raises:
        DataError: If `data` is a `tf.data.Dataset` (it has no random access), or arrays that
            `ArraySource` refuses under `check`.

    Example:

    >>> import numpy as np
    >>> as_source(np.zeros((5, 3))).num_examples
    5
    >>> as_source(np.array([[0.0], [np.nan]]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    toolkit.errors.DataError: `x` holds nan at row 1; expected finite numbers. ...
    """
    if isinstance(data, Source):
        return data
    if isinstance(data, tf.data.Dataset):
        raise DataError(
            "`endless` needs random access to the examples, but received a `tf.data.Dataset`. "
            "Pass in-memory arrays or a source (`toolkit.data.ArraySource`), or give the "
            "endless `tf.data.Dataset` directly to `fit` with `steps_per_epoch`."
        )
    return ArraySource(data, check=check)


def _as_array(leaf: Any, name: str) -> np.ndarray:
    if isinstance(leaf, tf.Tensor):
        leaf = leaf.numpy()
    array = np.asarray(leaf)
    if array.dtype == object:
        raise DataError(
            f"`{name}` must be a numeric or string array. Received an array of Python objects "
            f"with shape {array.shape}. Convert it, e.g. `np.asarray({name}, dtype=np.float32)`."
        )
    if array.ndim == 0:
        raise DataError(
            f"`{name}` must have one row per example. Received a scalar {array.item()!r}. "
            f"Pass an array whose first dimension is the number of examples."
        )
    return array


def _check_rows(arrays: list, names: list) -> None:
    rows = len(arrays[0])
    if rows == 0:
        raise DataError(
            f"`{names[0]}` holds no examples (shape {arrays[0].shape}). Expected at least one "
            f"row. Check the loading or filtering step that produced it."
        )
    for array, name in zip(arrays[1:], names[1:]):
        if len(array) != rows:
            raise DataError(
                f"`{name}` has {len(array)} rows but `{names[0]}` has {rows}. Every array "
                f"must have one row per example. Align them (same examples, same order)."
            )
