"""trim_events: cut a run's TensorBoard event files back to a restored checkpoint.

A run killed after its last checkpoint has logged points the resumed run logs again. TensorBoard
does not dedupe them: its `EventAccumulator` purges a tag's events at or after a step when it
sees that step out of order, which drops the *wrong* copy when event files are read in order,
and a `SessionLog.START` would purge every tag by step, also the `by_examples/` tags whose steps
are example counts. So on resume every event file of the run is rewritten, atomically, keeping
only the scalars up to the restored step (`by_examples/` tags: up to the examples seen by then);
a half-written last record of a killed writer is dropped too. The resumed run then appends in
order and the curves continue as if the run had never stopped.

Event files are TFRecord files, read and written with TensorFlow's public API, whose C++
`RecordReader` checks the masked CRC-32C of every record's length and data:
`tf.data.TFRecordDataset` reads the records, `tf.compat.v1.Event` parses them (the documented home
of the `Event` proto; TensorBoard's `tensorboard.compat.proto` copy and its
`tensorboard.summary.writer.record_writer` are internal modules, not its public API), and
`tf.io.TFRecordWriter` writes the kept ones through `toolkit.atomic_write` (fsynced, then renamed).
Damage found while reading:

- A truncated last record (a writer killed mid-write) is dropped silently, everything before it
  kept: the expected result of a kill.
- A record that fails its CRC check (a damaged disk or copy) ends the readable part: the records
  before it are kept, it and everything after it are dropped (the framing after a bad record
  cannot be trusted, and TensorBoard stops reading the file there too), and a warning names the
  file.

Example:

>>> import tempfile
>>> from toolkit.callbacks.scalar_writer import ScalarWriter
>>> log_dir = tempfile.mkdtemp()
>>> writer = ScalarWriter(log_dir)
>>> for step in (10, 20, 30):
...     writer.write({"loss": step / 10}, step)
...     writer.write({"by_examples/loss": step / 10}, step * 8)
>>> writer.close()
>>> trim_events(log_dir, step=20, examples=160)
2
"""

import os
import warnings
from typing import List, Tuple

import tensorflow as tf

from toolkit import atomic_write

__all__ = ["trim_events"]

EXAMPLES_PREFIX = "by_examples/"
# Framing bytes around each record's data: its length (8), the length's CRC (4), the data's CRC (4).
_FRAMING_BYTES = 16
# TensorFlow's `RecordReader` raises `DataLossError` "truncated record at <offset>" when the file
# ends inside a record's data or data CRC, and "corrupted record at <offset>" when a CRC fails.
_TRUNCATED = "truncated record"
_BATCH = 1024


def trim_events(log_dir: str, *, step: int, examples: int, skip=("checkpoints",)) -> int:
    """Drops every scalar logged after `step` (or after `examples`, for `by_examples/` tags).

    Args:
        log_dir: The run directory; its event files are found recursively.
        step: The restored optimizer step: events with a larger step go.
        examples: The examples seen at `step`: `by_examples/` values with a larger step go.
        skip: Subdirectory names not searched. Defaults to `("checkpoints",)`.

    Returns:
        The number of values dropped.

    Warns:
        UserWarning: Once per event file with a record that fails its CRC check, naming the
            file; the records before it are kept (a truncated last record is dropped silently).
    """
    dropped = 0
    for root, dirs, names in os.walk(log_dir):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in sorted(names):
            if "tfevents" in name and not name.startswith("."):
                dropped += _trim_file(os.path.join(root, name), int(step), int(examples))
    return dropped


def _read_records(path: str) -> Tuple[List[bytes], str]:
    """Returns the records that pass their CRC checks, up to the first that does not.

    Returns:
        The records, and what ended them: `""` (the end of the file), `"truncated"` (the file
        ends inside a record) or `"corrupted"` (a record fails its CRC check).
    """
    records: List[bytes] = []
    try:
        # In batches: a Python step per record costs ~50x more on a large event file.
        for batch in tf.data.TFRecordDataset(path).batch(_BATCH).as_numpy_iterator():
            records.extend(batch.tolist())
    except tf.errors.DataLossError:
        # The batch that met the damage is lost as a whole; read its good records one by one.
        try:
            for record in tf.data.TFRecordDataset(path).skip(len(records)).as_numpy_iterator():
                records.append(record)
        except tf.errors.DataLossError as error:
            return records, "truncated" if _TRUNCATED in error.message else "corrupted"
    # A file ending inside a record's 12-byte header ends the reading without an error.
    if _size_of(records) < os.path.getsize(path):
        return records, "truncated"
    return records, ""


def _trim_file(path: str, step: int, examples: int) -> int:
    records, damage = _read_records(path)
    kept: List[bytes] = []
    dropped, changed = 0, False
    for record in records:
        event = tf.compat.v1.Event.FromString(record)
        if not event.HasField("summary"):
            kept.append(record)
            continue
        values = [
            value
            for value in event.summary.value
            if event.step <= (examples if value.tag.startswith(EXAMPLES_PREFIX) else step)
        ]
        if len(values) == len(event.summary.value):
            kept.append(record)
            continue
        changed = True
        dropped += len(event.summary.value) - len(values)
        if values:
            del event.summary.value[:]
            event.summary.value.extend(values)
            kept.append(event.SerializeToString())
    if not changed and not damage:
        return 0
    if damage == "corrupted":
        readable = _size_of(records)
        warnings.warn(
            f"Event file {path!r} is damaged: the record at byte {readable} fails its CRC "
            f"check. Kept the {len(records)} records before it and dropped the "
            f"{os.path.getsize(path) - readable} bytes from there on, which TensorBoard cannot "
            f"read either. If this recurs, check the disk holding the run directory.",
            stacklevel=3,
        )
    with atomic_write.temporary_path(path) as temporary:
        with tf.io.TFRecordWriter(os.fspath(temporary)) as writer:
            for record in kept:
                writer.write(record)
    return dropped


def _size_of(records: List[bytes]) -> int:
    return sum(_FRAMING_BYTES + len(record) for record in records)
