"""Reading run directories back: scalars on the four axes of S0.3, and PNG plots of them.

A run directory written by `toolkit.fit(run_dir=...)` or `toolkit train` is a TensorBoard logdir.
`read_run` reads its events with TensorBoard's own reader and places every point on the four axes
of a loss curve (optimizer steps, examples seen, training wall time, epoch-equivalents), across
resumed runs. `write_run_plots` draws the run's loss, metrics and learning rate into `plots/`;
`plot_runs` overlays several runs to compare them. The figures are drawn with matplotlib's Agg
canvas directly, so no GUI backend is needed and pyplot's state is left alone.

Example, end to end:

>>> import tempfile
>>> import keras
>>> import numpy as np
>>> import toolkit
>>> from toolkit import report
>>> x, y = np.random.rand(64, 4).astype("float32"), np.random.randint(0, 3, 64)
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
>>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
...               metrics=["accuracy"])
>>> run_dir = tempfile.mkdtemp()
>>> history = toolkit.fit(model, (x, y), steps=20, batch_size=8, eval_data=(x, y),
...                       eval_every_steps=10, run_dir=run_dir, verbose=0)
>>> run = report.read_run(run_dir)
>>> run.series("loss", "validation").steps.tolist(), run.dataset_size
([10, 20], 64.0)
>>> [path.name for path in report.write_run_plots(run_dir)]
['loss.png', 'metrics.png', 'learning_rate.png']
"""

from toolkit.report.events import RunScalars, Series, read_run
from toolkit.report.plots import plot_runs, write_run_plots

__all__ = ["RunScalars", "Series", "plot_runs", "read_run", "write_run_plots"]
