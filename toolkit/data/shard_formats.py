"""Reading and writing one shard file: `.npz`, TFRecord and `.csv`.

A shard holds examples `x`, `(x, y)` or `(x, y, sample_weight)` as NumPy arrays:

- `.npz`: arrays named `x`, and optionally `y` and `sample_weight` (`np.savez`).
- `.tfrecord` / `.tfrecords`: one `tf.train.Example` per example with features `x`, `y`,
  `sample_weight` (values flattened; float lists read as float32, int64 lists as int64) and
  `x_shape`, `y_shape` (the example's shape, so the records describe themselves).
- `.csv`: a header row; a column `label` (int64 class) or `y` (float32 target), optionally
  `sample_weight`; every other column is one float32 feature of `x`.

`write_shard` writes atomically and durably (`toolkit.atomic_write`: a hidden temporary name, then a
rename), the way a producer should add shards to a directory that a `ShardDirectory` is reading.

Example:

>>> import numpy as np, os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "day1.tfrecord")
>>> write_shard(path, (np.ones((3, 2, 2), "float32"), np.array([0, 1, 2])))
>>> x, y = read_shard(path)
>>> x.shape, y.tolist()
((3, 2, 2), [0, 1, 2])
"""

import os
from typing import Any

import numpy as np
import tensorflow as tf

from toolkit import atomic_write
from toolkit.errors import DataError

__all__ = ["SHARD_FORMATS", "read_shard", "shard_format", "write_shard"]

SHARD_FORMATS = {".npz": "npz", ".tfrecord": "tfrecord", ".tfrecords": "tfrecord", ".csv": "csv"}
_NAMES = ("x", "y", "sample_weight")


def shard_format(path: str) -> str:
    """Returns `"npz"`, `"tfrecord"` or `"csv"` from the file name, or `""` if none."""
    return SHARD_FORMATS.get(os.path.splitext(path)[1].lower(), "")


def read_shard(path: str) -> Any:
    """Returns the examples of a shard: `x`, `(x, y)` or `(x, y, sample_weight)` arrays.

    Args:
        path: File path ending in `.npz`, `.tfrecord`, `.tfrecords` or `.csv`.

    Raises:
        DataError: If the file has an unknown suffix or does not hold valid shard arrays. A
            truncated file may raise the reader's own error (`OSError`, `ValueError`, ...).

    Example:

    >>> import numpy as np, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "part.npz")
    >>> np.savez(path, x=np.zeros((2, 3)), y=np.array([4, 5]))
    >>> read_shard(path)[1].tolist()
    [4, 5]
    """
    kind = shard_format(path)
    readers = {"npz": _read_npz, "tfrecord": _read_tfrecord, "csv": _read_csv}
    if kind not in readers:
        raise DataError(
            f"Shard {path!r} has an unknown suffix; expected one of {sorted(SHARD_FORMATS)!r}. "
            f"Rename it or convert it."
        )
    arrays = readers[kind](path)
    present = [name for name in _NAMES if name in arrays]
    if present != list(_NAMES[: len(present)]) or not present:
        raise DataError(
            f"Shard {path!r} holds {sorted(arrays)!r}; expected `x`, then optionally `y` and "
            f"`sample_weight`. Write it with `toolkit.data.write_shard`."
        )
    rows = {name: len(arrays[name]) for name in present}
    if len(set(rows.values())) != 1:
        raise DataError(f"Shard {path!r} has arrays of different lengths {rows!r}.")
    if len(present) == 1:
        return arrays["x"]
    return tuple(arrays[name] for name in present)


def write_shard(path: str, data: Any) -> None:
    """Writes `x`, `(x, y)` or `(x, y, sample_weight)` arrays to `path`, atomically.

    The file is written under a hidden temporary name in the same directory, fsynced, then renamed
    into place (`toolkit.atomic_write`), so a reader never sees a half-written shard.

    Args:
        path: Destination ending in `.npz`, `.tfrecord`, `.tfrecords` or `.csv` (CSV: `x` of
            shape `[n, features]` only).
        data: An array `x` or a tuple `(x, y)` / `(x, y, sample_weight)`.

    Example:

    >>> import numpy as np, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "part.csv")
    >>> write_shard(path, (np.eye(2, dtype="float32"), np.array([0, 1])))
    >>> print(open(path).read().splitlines()[0])
    x0,x1,label
    """
    parts = data if isinstance(data, tuple) else (data,)
    arrays = {name: np.asarray(part) for name, part in zip(_NAMES, parts)}
    kind = shard_format(path)
    writers = {"npz": _write_npz, "tfrecord": _write_tfrecord, "csv": _write_csv}
    if kind not in writers:
        raise DataError(
            f"Cannot write shard {path!r}: expected a suffix in {sorted(SHARD_FORMATS)!r}."
        )
    with atomic_write.temporary_path(path) as temporary:
        writers[kind](os.fspath(temporary), arrays)


def _read_npz(path: str) -> dict:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _write_npz(path: str, arrays: dict) -> None:
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def _read_tfrecord(path: str) -> dict:
    records = [record.numpy() for record in tf.data.TFRecordDataset(path)]
    if not records:
        return {"x": np.zeros((0,), np.float32)}
    first = tf.train.Example.FromString(records[0]).features.feature
    spec, shapes = {}, {}
    for name in _NAMES:
        if name not in first:
            continue
        feature = first[name]
        dtype = tf.int64 if feature.WhichOneof("kind") == "int64_list" else tf.float32
        shape = list(first[f"{name}_shape"].int64_list.value) if f"{name}_shape" in first else []
        size = int(np.prod(shape)) if shape else 1
        spec[name] = tf.io.FixedLenFeature([size], dtype)
        shapes[name] = shape
    parsed = tf.io.parse_example(tf.constant(records), spec)
    return {name: parsed[name].numpy().reshape([-1] + shapes[name]) for name in spec}


def _write_tfrecord(path: str, arrays: dict) -> None:
    with tf.io.TFRecordWriter(path) as writer:
        for row in range(len(arrays["x"])):
            feature = {}
            for name, array in arrays.items():
                value = np.asarray(array[row])
                feature[name] = _feature(value.reshape(-1))
                if name != "sample_weight":
                    feature[f"{name}_shape"] = _feature(np.asarray(value.shape, np.int64))
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())


def _feature(values: np.ndarray) -> tf.train.Feature:
    if np.issubdtype(values.dtype, np.integer) or values.dtype == bool:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values.astype(np.int64)))
    return tf.train.Feature(float_list=tf.train.FloatList(value=values.astype(np.float32)))


def _read_csv(path: str) -> dict:
    with open(path) as file:
        header = file.readline().strip().split(",")
    values = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    if values.shape[1] != len(header):
        raise DataError(f"Shard {path!r} has {values.shape[1]} columns but {len(header)} names.")
    columns = {name: values[:, i] for i, name in enumerate(header)}
    arrays = {}
    features = [name for name in header if name not in ("label", "y", "sample_weight")]
    arrays["x"] = values[:, [header.index(name) for name in features]].astype(np.float32)
    if "label" in columns:
        arrays["y"] = columns["label"].astype(np.int64)
    elif "y" in columns:
        arrays["y"] = columns["y"].astype(np.float32)
    if "sample_weight" in columns:
        arrays["sample_weight"] = columns["sample_weight"].astype(np.float32)
    return arrays


def _write_csv(path: str, arrays: dict) -> None:
    x = arrays["x"]
    if x.ndim != 2:
        raise DataError(
            f"A CSV shard holds `x` of shape [n, features]. Received x of shape {x.shape}. "
            f"Write a `.npz` or `.tfrecord` shard instead."
        )
    columns = [x.astype(np.float64)]
    header = [f"x{i}" for i in range(x.shape[1])]
    if "y" in arrays:
        integer = np.issubdtype(arrays["y"].dtype, np.integer)
        header.append("label" if integer else "y")
        columns.append(arrays["y"].reshape(len(x), 1).astype(np.float64))
    if "sample_weight" in arrays:
        header.append("sample_weight")
        columns.append(arrays["sample_weight"].reshape(len(x), 1).astype(np.float64))
    np.savetxt(path, np.concatenate(columns, axis=1), delimiter=",", header=",".join(header),
               comments="", fmt="%.9g")
