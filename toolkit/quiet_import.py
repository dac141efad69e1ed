"""Importing TensorFlow without its C++ start-up lines: users see only the toolkit's output.

On a machine without a GPU, importing TensorFlow prints lines such as "WARNING: All log messages
before absl::InitializeLog() is called are written to STDERR", "Could not find cuda drivers" and
"failed call to cuInit", and building some `tf.data` pipelines prints "NodeDef mentions attribute
use_unbounded_threadpool". None is actionable. `import_tensorflow()` (called when `toolkit` is
imported) sets `TF_CPP_MIN_LOG_LEVEL=3` (C++ logs below FATAL off for the whole process; a value
already in the environment is respected) and, during the import only, points the process's stderr
file descriptor at /dev/null: the start-up lines are printed before TensorFlow's logging reads the
variable. Python errors raised by the import surface after stderr is restored. With
`TOOLKIT_DEBUG=1` in the environment nothing is silenced. Nothing happens if TensorFlow is already
imported.

Example:

>>> import_tensorflow()  # TensorFlow is already imported here: a no-op.
"""

import contextlib
import os
import sys

__all__ = ["DEBUG_ENV", "import_tensorflow"]

DEBUG_ENV = "TOOLKIT_DEBUG"


def import_tensorflow() -> None:
    """Imports TensorFlow and Keras quietly, unless `TOOLKIT_DEBUG` is set (see the module doc)."""
    if "tensorflow" in sys.modules:
        return
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _stderr_to_devnull():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401


@contextlib.contextmanager
def _stderr_to_devnull():
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # No usable stderr (e.g. some IDE consoles).
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
