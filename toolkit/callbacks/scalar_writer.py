"""ScalarWriter: TensorBoard scalar events written from Python, without TensorFlow ops.

`tf.summary.scalar` runs TensorFlow ops: eagerly about a millisecond per scalar on a busy
2-core CPU (a dozen scalars per log point cost as much as a dozen training steps of a small
model), and inside a `tf.function` a trace of several hundred milliseconds per run. The values
logged here are already Python floats, so this writes the same records (`tensor` summaries with
the scalar plugin's metadata, exactly what `tf.summary.scalar` writes) straight to an event file
with TensorBoard's own `EventFileWriter`, which writes on a background thread. TensorBoard's
readers (`EventAccumulator`, the Scalars dashboard) cannot tell the difference.
"""

import itertools
import os
import time
from typing import Mapping

from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
from tensorboard.compat.proto import types_pb2
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.summary.writer.event_file_writer import EventFileWriter

__all__ = ["ScalarWriter"]

_METADATA = scalar_metadata.create_summary_metadata(display_name=None, description=None)
_SCALAR_SHAPE = tensor_shape_pb2.TensorShapeProto()
# Two writers opened in the same second on one host must not share a file name.
_FILE_NUMBERS = itertools.count()


class ScalarWriter:
    """Appends scalar events to one TensorBoard run directory.

    Args:
        directory: The run directory (created if missing).

    Example:

    >>> import tempfile
    >>> writer = ScalarWriter(tempfile.mkdtemp())
    >>> writer.write({"loss": 0.5, "accuracy": 0.75}, step=100)
    >>> writer.close()
    """

    def __init__(self, directory: str):
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        suffix = f".{os.getpid()}.{next(_FILE_NUMBERS)}.toolkit"
        self._writer = EventFileWriter(directory, filename_suffix=suffix)

    def write(self, values: Mapping[str, float], step: int) -> None:
        """Writes every `tag: value` of `values` as one event at `step`, stamped with now."""
        summary = summary_pb2.Summary(
            value=[
                summary_pb2.Summary.Value(tag=tag, tensor=_scalar(value), metadata=_METADATA)
                for tag, value in values.items()
            ]
        )
        self.write_summary(summary, step)

    def write_summary(self, summary: summary_pb2.Summary, step: int) -> None:
        """Writes a ready `Summary` protocol buffer (e.g. the HParams plugin's) at `step`."""
        self._writer.add_event(
            event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary)
        )

    def flush(self) -> None:
        """Writes the queued events to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the event file."""
        self._writer.close()


def _scalar(value: float) -> tensor_pb2.TensorProto:
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=_SCALAR_SHAPE, float_val=[float(value)]
    )
