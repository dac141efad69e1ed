"""trim_events: cut a run's TensorBoard event files back to a restored checkpoint.

A run killed after its last checkpoint has logged points the resumed run logs again. TensorBoard
does not dedupe them: its `EventAccumulator` purges a tag's events at or after a step when it
sees that step out of order, which drops the *wrong* copy when event files are read in order,
and a `SessionLog.START` would purge every tag by step, also the `by_examples/` tags whose steps
are example counts. So on resume every event file of the run is rewritten, atomically, keeping
only the scalars up to the restored step (`by_examples/` tags: up to the examples seen by then);
a half-written last record of a killed writer is dropped too. The resumed run then appends in
order and the curves continue as if the run had never stopped.

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
import struct
import uuid
from typing import Iterator, List

from tensorboard.compat.proto import event_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

__all__ = ["trim_events"]

EXAMPLES_PREFIX = "by_examples/"
_HEADER = struct.Struct("<QI")


def trim_events(log_dir: str, *, step: int, examples: int, skip=("checkpoints",)) -> int:
    """Drops every scalar logged after `step` (or after `examples`, for `by_examples/` tags).

    Args:
        log_dir: The run directory; its event files are found recursively.
        step: The restored optimizer step: events with a larger step go.
        examples: The examples seen at `step`: `by_examples/` values with a larger step go.
        skip: Subdirectory names not searched. Defaults to `("checkpoints",)`.

    Returns:
        The number of values dropped.
    """
    dropped = 0
    for root, dirs, names in os.walk(log_dir):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in sorted(names):
            if "tfevents" in name and not name.startswith("."):
                dropped += _trim_file(os.path.join(root, name), int(step), int(examples))
    return dropped


def _records(path: str) -> Iterator[bytes]:
    """Yields the records of a TFRecord file, stopping at a truncated one (a killed writer)."""
    with open(path, "rb") as file:
        data = file.read()
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, _ = _HEADER.unpack_from(data, offset)
        end = offset + _HEADER.size + length + 4
        if end > len(data):
            return
        yield data[offset + _HEADER.size : end - 4]
        offset = end


def _trim_file(path: str, step: int, examples: int) -> int:
    kept: List[bytes] = []
    dropped, changed = 0, False
    for record in _records(path):
        event = event_pb2.Event.FromString(record)
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
    if not changed and _size_of(kept) == os.path.getsize(path):
        return 0
    temporary = os.path.join(os.path.dirname(path), f".{uuid.uuid4().hex[:8]}.trim.tmp")
    try:
        with open(temporary, "wb") as file:
            writer = RecordWriter(file)
            for record in kept:
                writer.write(record)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return dropped


def _size_of(records: List[bytes]) -> int:
    return sum(_HEADER.size + len(record) + 4 for record in records)
