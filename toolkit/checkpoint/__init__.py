"""What a run's state is, and how it survives a crash: checkpoints, restore, callback state.

A toolkit checkpoint holds the model's variables, the *built* optimizer's (Adam's moments and
step count, S2.2), the run's `TrainClock` and the state of every callback whose future depends on
its past. `Checkpointer` writes them as verified, atomic tensor bundles; `restore` loads the
newest good one into a compiled model. This package imports neither `toolkit.train` nor
`toolkit.callbacks`, so both may use it.

Example:

>>> import tempfile, keras, numpy as np
>>> from toolkit.checkpoint import Checkpointer, restore
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
>>> model.compile(optimizer="adam", loss="mse")
>>> _ = model.fit(np.ones((16, 3)), np.ones(16), batch_size=8, verbose=0)
>>> directory = tempfile.mkdtemp()
>>> _ = Checkpointer(directory, model=model).save()
>>> fresh = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
>>> fresh.compile(optimizer="adam", loss="mse")
>>> restore(fresh, directory)
2
"""

from toolkit.checkpoint.checkpointer import Checkpointer, CheckpointInfo
from toolkit.checkpoint.restore import restore
from toolkit.checkpoint.run_lock import RunLock

__all__ = ["Checkpointer", "CheckpointInfo", "restore", "RunLock"]
