"""TensorFlow Datasets as sources: in memory, by random access, or streamed.

`tfds_source("mnist", "train")` (or `"tfds:mnist"`, the spelling recipes use) returns a source for
`endless`, chosen by `in_memory`:

- **In memory** (`in_memory=True`, or `"auto"` when the decoded split fits in
  `max_memory_bytes`): the split is decoded once into an `ArraySource`, its values checked under
  `check` (NaN/Inf raise by default). Gathers are in-graph and fast; batch `k` is a pure
  function of `(seed, k)`. MNIST (47 MB) and CIFAR-10 (150 MB) go here.
- **Random access** (`in_memory=False`, or `"auto"` for a larger split) when the dataset was
  prepared in the ArrayRecord format (`tfds build NAME --file_format=array_record`, or
  `builder.download_and_prepare(file_format="array_record")`): a `TfdsSource` reads the drawn
  examples with `tfds.data_source` through `tf.numpy_function`. Batches stay a pure function of
  `(seed, k)`, but each batch costs one Python call holding the GIL, the record reads and the
  per-example decoding of `tfds` (PNG/JPEG images are decoded in Python): expect thousands, not
  millions, of examples per second, so measure it against your model's consumption rate. Its
  values are not checked (that would decode the whole split): run `toolkit.data.check` on it.
- Otherwise (a large split stored as TFRecord, which has no random access), `tfds_source` raises
  and names the fixes; `tfds_stream` streams it instead. A stream is **not** IID: it reads
  passes in file order, each block of `shuffle_buffer_size` examples permuted anew every pass
  (examples of different blocks never swap places within a pass). Its resume is exact but not free: the dataset built at `start_step` reads and drops
  up to one pass of examples to get back to its position, and `endless_info` does not know it, so
  `toolkit.train.fit` cannot rebuild it: build it at the restored step yourself.

Features map to Keras tuples by `keys`, by default the dataset's supervised keys
(`("image", "label")` for MNIST): `(x, y)`. Nothing is downloaded unless `download=True`
(offline by default); dtypes are kept (uint8 images stay uint8: scale them in the model).

Example:

>>> import tensorflow_datasets as tfds
>>> with tfds.testing.mock_data(num_examples=10):
...     source = tfds_source("tfds:mnist", "train")
>>> source.num_examples, source.element_spec[0].shape
(10, TensorShape([28, 28, 1]))
"""

from typing import Any, Optional, Sequence, Union

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from toolkit.data.sources import ArraySource
from toolkit.errors import DataError

__all__ = ["TfdsSource", "tfds_source", "tfds_stream"]

PREFIX = "tfds:"
_LOAD_CHUNK = 4096  # examples decoded per batch while loading a split into memory


def tfds_source(
    name: str,
    split: str = "train",
    *,
    data_dir: Optional[str] = None,
    in_memory: Union[bool, str] = "auto",
    keys: Optional[Sequence[str]] = None,
    max_memory_bytes: int = 2**30,
    download: bool = False,
    check: str = "error",
) -> Any:
    """Returns a source for a TFDS split: in memory (`ArraySource`) or by random access.

    Args:
        name: TFDS name, e.g. `"mnist"`, `"cifar10:3.0.2"` or `"tfds:mnist"`.
        split: Split, e.g. `"train"` or `"train[:90%]"`. Defaults to `"train"`.
        data_dir: Where the prepared data lives. Defaults to `None` (TFDS's default).
        in_memory: `True` (decode the whole split into memory), `False` (random access; needs
            the ArrayRecord format) or `"auto"` (memory when the decoded split is below
            `max_memory_bytes`). Defaults to `"auto"`.
        keys: Feature names for `(x, y)` (or `(x,)`). Defaults to the supervised keys.
        max_memory_bytes: Size limit of the decoded split for `in_memory="auto"`. Defaults to 1 GiB.
        download: Download and prepare the dataset if needed. Defaults to `False`.
        check: What NaN/Inf in a split decoded into memory does, as in `ArraySource`: `"error"`,
            `"warn"` or `"off"`; a random-access split is not checked. Defaults to `"error"`.

    Returns:
        A source for `endless`.

    Raises:
        DataError: If the dataset is not prepared, a feature has a variable shape, `keys` are
            missing, the split is too large for memory without the ArrayRecord format, or (with
            `check="error"`) a split decoded into memory holds NaN/Inf.

    Example:

    >>> import tensorflow_datasets as tfds
    >>> with tfds.testing.mock_data(num_examples=4):
    ...     x, y = tfds_source("mnist", "test", in_memory=True).tensors
    >>> x.dtype.name, y.shape
    ('uint8', TensorShape([4]))
    """
    if in_memory not in (True, False, "auto"):
        raise DataError(f'`in_memory` must be True, False or "auto". Received: {in_memory!r}.')
    builder = _builder(name, data_dir, download)
    keys = _keys(builder, keys)
    specs = _specs(builder, keys)
    if in_memory is not True:
        random_access = builder.info.file_format == tfds.core.FileFormat.ARRAY_RECORD
        size = _num_examples(builder, split) * sum(_bytes(spec) for spec in specs)
        if in_memory is False or (size > max_memory_bytes and random_access):
            if not random_access:
                reason = "in_memory=False asks for random access"
                raise DataError(_not_random_access(name, builder, reason))
            return TfdsSource(_data_source(builder, split), keys, specs)
        if size > max_memory_bytes:
            reason = (f"its decoded split ({size / 2**20:.1f} MiB) exceeds "
                      f"max_memory_bytes={max_memory_bytes}")
            raise DataError(_not_random_access(name, builder, reason))
    return ArraySource(_load_all(builder, split, keys, specs), check=check)


class TfdsSource:
    """Random access to a TFDS split stored as ArrayRecord (see the module doc for its cost).

    Args:
        data_source: A `tfds.data_source(...)` split (any sequence of feature dicts with
            `__len__` and `__getitems__`).
        keys: Feature names giving `(x, y)` or `(x,)`.
        specs: One `tf.TensorSpec` per key (fixed shapes).

    Example:

    >>> import numpy as np
    >>> class Records(list):
    ...     def __getitems__(self, keys): return [self[k] for k in keys]
    >>> records = Records({"image": np.full((2,), i, "uint8"), "label": i} for i in range(5))
    >>> source = TfdsSource(records, ("image", "label"),
    ...                     [tf.TensorSpec((2,), tf.uint8), tf.TensorSpec((), tf.int64)])
    >>> source.gather(tf.constant([3, 1], tf.int64))[1].numpy().tolist()
    [3, 1]
    """

    def __init__(self, data_source: Any, keys: Sequence[str], specs: Sequence[tf.TensorSpec]):
        self._data_source = data_source
        self._keys = tuple(keys)
        self._specs = tuple(specs)
        self._num_examples = len(data_source)

    @property
    def num_examples(self) -> int:
        """Number of examples of the split."""
        return self._num_examples

    @property
    def element_spec(self) -> tuple:
        """`(x spec, y spec)` or `(x spec,)`."""
        return self._specs

    def gather(self, indices: tf.Tensor) -> tuple:
        """Reads the examples at `indices` through one `tf.numpy_function` call."""
        flat = tf.numpy_function(
            self._read, [tf.cast(indices, tf.int64)], [s.dtype for s in self._specs], stateful=False
        )
        return tuple(
            tf.ensure_shape(t, [None] + s.shape.as_list()) for t, s in zip(flat, self._specs)
        )

    def _read(self, indices: np.ndarray) -> list:
        records = self._data_source.__getitems__(indices.tolist())
        arrays = []
        for key, spec in zip(self._keys, self._specs):
            dtype = spec.dtype.as_numpy_dtype
            if records:
                arrays.append(np.stack([np.asarray(record[key]) for record in records]).astype(dtype))
            else:
                arrays.append(np.zeros((0,) + tuple(spec.shape), dtype))
        return arrays

    def __repr__(self) -> str:
        return f"TfdsSource(keys={self._keys!r}, num_examples={self._num_examples})"


def tfds_stream(
    name: str,
    split: str,
    batch_size: int,
    *,
    seed: int = 0,
    start_step: int = 0,
    shuffle_buffer_size: int = 10_000,
    data_dir: Optional[str] = None,
    keys: Optional[Sequence[str]] = None,
) -> tf.data.Dataset:
    """Streams a TFDS split in endless reshuffled passes, for splits without random access.

    Pass `p` reads the split in file order (TFDS stores examples in a hashed order) and shuffles
    each block of `shuffle_buffer_size` consecutive examples with a permutation keyed by
    `(seed, p, block)`; passes follow each other and batches may straddle two. Built at `start_step`, it yields exactly the
    batches the dataset built at step 0 yields from that step on, after reading and dropping up
    to one pass. Not IID (see the module doc).

    Args:
        name: TFDS name, e.g. `"imagenet2012"` or `"tfds:imagenet2012"`.
        split: Split, e.g. `"train"`.
        batch_size: Examples per batch.
        seed: Integer seed of the shuffles. Defaults to `0`.
        start_step: Step of the first batch. Defaults to `0`.
        shuffle_buffer_size: Examples per shuffled block (held in memory). Defaults to `10_000`.
        data_dir: Where the prepared data lives. Defaults to `None`.
        keys: Feature names for `(x, y)`. Defaults to the supervised keys.

    Returns:
        An infinite `tf.data.Dataset` of `(x, y)` batches.

    Example:

    >>> import tensorflow_datasets as tfds
    >>> with tfds.testing.mock_data(num_examples=10):
    ...     batches = list(tfds_stream("mnist", "train", 4, seed=1).take(5))
    ...     resumed = next(iter(tfds_stream("mnist", "train", 4, seed=1, start_step=3)))
    >>> bool(tf.reduce_all(batches[3][1] == resumed[1]))
    True
    """
    builder = _builder(name, data_dir, False)
    keys = _keys(builder, keys)
    num_examples = _num_examples(builder, split)
    base = builder.as_dataset(split=split, shuffle_files=False)
    base = base.map(lambda features: tuple(features[key] for key in keys))
    offset = start_step * batch_size
    first_pass = offset // num_examples
    seed_key = tf.constant([seed, 0], tf.int64)

    def one_pass(number):
        pass_key = tf.random.experimental.stateless_fold_in(seed_key, number, alg="philox")

        def permute(block_number, block):
            # Stateless keys, not Dataset.shuffle: its seed must be a Python int, not a pass.
            key = tf.random.experimental.stateless_fold_in(pass_key, block_number, alg="philox")
            size = tf.shape(block[0])[0]
            order = tf.argsort(tf.random.stateless_uniform([size], key, alg="philox"))
            return tf.data.Dataset.from_tensor_slices(tuple(tf.gather(t, order) for t in block))

        return base.batch(shuffle_buffer_size).enumerate().flat_map(permute)

    stream = tf.data.Dataset.counter(first_pass).flat_map(one_pass)
    # Resume: drop the part of the first pass that earlier steps consumed (at most one pass).
    stream = stream.skip(offset - first_pass * num_examples)
    return stream.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def _builder(name: str, data_dir: Optional[str], download: bool) -> Any:
    if not isinstance(name, str) or not name:
        raise DataError(f"A TFDS name must be a non-empty string. Received: {name!r}.")
    name = name[len(PREFIX):] if name.startswith(PREFIX) else name
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        if download:
            builder.download_and_prepare()
    except tfds.core.registered.DatasetNotFoundError as error:
        raise DataError(
            f"Unknown TFDS dataset {name!r} ({str(error).splitlines()[0]}). Check the name at "
            f"https://www.tensorflow.org/datasets/catalog."
        ) from error
    return builder


def _keys(builder: Any, keys: Optional[Sequence[str]]) -> tuple:
    features = builder.info.features
    if keys is None:
        keys = builder.info.supervised_keys
        if not keys or not all(isinstance(key, str) for key in keys):
            raise DataError(
                f"TFDS dataset {builder.name!r} has no simple supervised keys "
                f"({keys!r}). Pass keys=(x_feature, y_feature) among {sorted(features.keys())!r}."
            )
    missing = [key for key in keys if key not in features]
    if missing or not 1 <= len(keys) <= 2:
        raise DataError(
            f"`keys` must name one or two features of {builder.name!r} among "
            f"{sorted(features.keys())!r}. Received: keys={tuple(keys)!r}."
        )
    return tuple(keys)


def _specs(builder: Any, keys: tuple) -> list:
    specs = []
    for key in keys:
        feature = builder.info.features[key]
        if any(dim is None for dim in feature.shape):
            raise DataError(
                f"Feature {key!r} of {builder.name!r} has a variable shape {feature.shape}; "
                f"sources need fixed shapes. Resize the examples into a shard directory "
                f"(`toolkit.data.ShardDirectory`), or pick a fixed-size variant of the dataset."
            )
        specs.append(tf.TensorSpec(feature.shape, tf.as_dtype(feature.np_dtype)))
    return specs


def _bytes(spec: tf.TensorSpec) -> int:
    return int(np.prod(spec.shape.as_list(), dtype=np.int64)) * spec.dtype.size


def _num_examples(builder: Any, split: str) -> int:
    try:
        return int(builder.info.splits[split].num_examples)
    except (KeyError, ValueError, TypeError):
        return int(_dataset(builder, split).cardinality().numpy())


def _load_all(builder: Any, split: str, keys: tuple, specs: list) -> tuple:
    if builder.info.file_format == tfds.core.FileFormat.ARRAY_RECORD:
        # ArrayRecord has no `as_dataset`: read it through its random access, chunk by chunk.
        reader = TfdsSource(_data_source(builder, split), keys, specs)
        starts = range(0, reader.num_examples, _LOAD_CHUNK)
        stop = reader.num_examples
        chunks = [reader._read(np.arange(i, min(i + _LOAD_CHUNK, stop))) for i in starts]
    else:
        dataset = _dataset(builder, split).map(lambda features: tuple(features[k] for k in keys))
        chunks = list(dataset.batch(_LOAD_CHUNK).as_numpy_iterator())
    if not chunks:
        raise DataError(f"Split {split!r} of TFDS dataset {builder.name!r} holds no examples.")
    return tuple(np.concatenate([chunk[i] for chunk in chunks]) for i in range(len(keys)))


def _dataset(builder: Any, split: str, **kwargs) -> tf.data.Dataset:
    try:
        return builder.as_dataset(split=split, **kwargs)
    except (AssertionError, FileNotFoundError, ValueError, KeyError) as error:
        raise DataError(
            f"Cannot read split {split!r} of TFDS dataset {builder.name!r} from "
            f"{builder.data_dir!r} ({type(error).__name__}: {str(error).splitlines()[0]}). "
            f"Prepare it once with `tfds build {builder.name}` or pass download=True."
        ) from error


def _data_source(builder: Any, split: str) -> Any:
    try:
        return builder.as_data_source(split=split)
    except (AssertionError, FileNotFoundError, ValueError, KeyError) as error:
        raise DataError(
            f"Cannot open split {split!r} of TFDS dataset {builder.name!r} for random access "
            f"({type(error).__name__}: {str(error).splitlines()[0]}). Prepare it once with "
            f"`tfds build {builder.name} --file_format=array_record`."
        ) from error


def _not_random_access(name: str, builder: Any, reason: str) -> str:
    file_format = getattr(builder.info.file_format, "value", builder.info.file_format)
    return (
        f"TFDS dataset {name!r} is stored as {file_format!r}, which has no random access, and "
        f"{reason}. Prepare it as ArrayRecord "
        f"(`tfds build {builder.name} --file_format=array_record`), raise max_memory_bytes, or "
        f"stream it with `toolkit.data.tfds_stream`."
    )
