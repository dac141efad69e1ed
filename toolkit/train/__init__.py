"""Training for a budget of optimizer steps, in evaluation intervals.

`fit` runs Keras's own `Model.fit` over an endless pipeline until `optimizer.iterations` reaches
the budget, one Keras epoch per evaluation interval, with fast execution defaults chosen by
budget, TensorBoard logging on four axes when given a `run_dir`, and a progress bar over the
whole budget. The budget is a total: calling `fit` again with a larger one continues.
`toolkit.train.schedules` holds the learning-rate and batch-size schedules, pure functions of
the optimizer step, so they resume exactly.

Example:

>>> import keras, numpy as np
>>> from toolkit.train import fit
>>> x, y = np.random.rand(256, 8).astype("float32"), np.random.randint(0, 3, 256)
>>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
>>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
...               metrics=["accuracy"])
>>> history = fit(model, (x, y), steps=40, batch_size=16, eval_data=(x, y),
...               eval_every_steps=20, verbose=0)
>>> history.steps, sorted(history.history)
([20, 40], ['accuracy', 'loss', 'val_accuracy', 'val_loss'])
"""

from toolkit.callbacks.step_history import StepHistory
from toolkit.train.fit import fit
from toolkit.train.options import Execution, Logging
from toolkit.train.schedules import BatchSizeSchedule, FinalAnneal, learning_rate

__all__ = ["fit", "BatchSizeSchedule", "Execution", "FinalAnneal", "Logging", "StepHistory",
           "learning_rate"]
