"""toolkit: Keras 3 training practice turned into defaults and measurements.

Re-exports only; every public name lives in the module named for what it does. Importing
`toolkit` registers its Keras layers, so `keras.saving.load_model("model.keras")` works after it.

Example:

>>> import keras
>>> import toolkit
>>> data = toolkit.data.load("digits")
>>> model = toolkit.models.mlp((64,), data.num_classes, adapt_data=data.x_train, seed=0)
>>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
...               metrics=["accuracy"])
>>> toolkit.lint(model)
[]
>>> history = toolkit.fit(model, (data.x_train, data.y_train), steps=40, batch_size=32,
...                       eval_data=(data.x_test, data.y_test), verbose=0)
>>> history.steps
[40]
"""

from toolkit import quiet_import as _quiet_import

# TensorFlow's C++ start-up chatter is not for users (TOOLKIT_DEBUG=1 shows it).
_quiet_import.import_tensorflow()

from toolkit import callbacks  # noqa: E402
from toolkit import checkpoint  # noqa: E402
from toolkit import data  # noqa: E402
from toolkit import errors  # noqa: E402
from toolkit import initializers  # noqa: E402
from toolkit import layers  # noqa: E402
from toolkit import models  # noqa: E402
from toolkit import probes  # noqa: E402
from toolkit import report  # noqa: E402
from toolkit import distribute  # noqa: E402
from toolkit import train  # noqa: E402
from toolkit import tune  # noqa: E402
from toolkit.clock import ClockReading, TrainClock  # noqa: E402
from toolkit.lint import Finding, lint  # noqa: E402
from toolkit.checkpoint import restore  # noqa: E402
from toolkit.train import fit  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "callbacks",
    "checkpoint",
    "data",
    "errors",
    "initializers",
    "layers",
    "models",
    "probes",
    "report",
    "distribute",
    "train",
    "tune",
    "ClockReading",
    "TrainClock",
    "Finding",
    "lint",
    "fit",
    "restore",
]
