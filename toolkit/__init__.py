"""toolkit: Keras 3 training practice turned into defaults and measurements.

Re-exports only; every public name lives in the module named for what it does.
"""

import os as _os

# TensorFlow's C++ start-up chatter is not for users; set before TensorFlow is imported.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from toolkit import errors  # noqa: E402
from toolkit.clock import ClockReading, TrainClock  # noqa: E402

__version__ = "0.1.0"

__all__ = ["errors", "ClockReading", "TrainClock"]
