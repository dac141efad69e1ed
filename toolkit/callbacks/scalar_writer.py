"""ScalarWriter: TensorBoard scalar events written from Python, without TensorFlow ops.

`tf.summary.scalar` runs TensorFlow ops: eagerly about a millisecond per scalar on a busy
2-core CPU (a dozen scalars per log point cost as much as a dozen training steps of a small
model), and inside a `tf.function` a trace of several hundred milliseconds per run. The values
logged here are already Python floats, so this writes the same records (`tensor` summaries with
the scalar plugin's metadata, exactly what `tf.summary.scalar` writes) straight to an event file
with TensorBoard's own `EventFileWriter`, which writes on a background thread. TensorBoard's
readers (`EventAccumulator`, the Scalars dashboard) cannot tell the difference. The records and
the writer come from TensorBoard's non-public modules, through `toolkit.keras_compat`.
"""

import itertools
import os
import time
from typing import Mapping

from toolkit.keras_compat import make_event, open_event_writer, scalar_summary

__all__ = ["ScalarWriter"]

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
        self._writer = open_event_writer(directory, filename_suffix=suffix)

    def write(self, values: Mapping[str, float], step: int) -> None:
        """Writes every `tag: value` of `values` as one event at `step`, stamped with now."""
        self.write_summary(scalar_summary(values), step)

    def write_summary(self, summary, step: int) -> None:
        """Writes a ready `Summary` protocol buffer (e.g. the HParams plugin's) at `step`."""
        self._writer.add_event(make_event(summary, step, wall_time=time.time()))

    def flush(self) -> None:
        """Writes the queued events to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the event file."""
        self._writer.close()
